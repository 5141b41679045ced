"""The systemd notify protocol, in a few lines on a datagram socket (no dependency).

With `Type=notify`, systemd passes `NOTIFY_SOCKET` and waits for `READY=1` before it
considers the service started; `STATUS=` lines show in `systemctl status`; `STOPPING=1`
says a stop is under way. With `WatchdogSec=`, it also passes `WATCHDOG_USEC` and kills
the service unless `WATCHDOG=1` arrives in time: sent here at half that interval by a task
of the event loop, so a loop that stops running stops the pings. Without `NOTIFY_SOCKET`
(not run by systemd) every call does nothing.

The one-file binary runs Python in a child of its bootloader: the unit says
`NotifyAccess=all` (the notifications come from the child) and `KillMode=mixed` (SIGTERM
goes to the bootloader alone, which forwards it: the sidecar sees one signal and drains).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from typing import Final

import trio

from sidecar.logs import get_logger

__all__ = ["Notifier"]

_log = get_logger("systemd")
_MAX_STATUS: Final = 200


def _our_pids() -> tuple[str, ...]:
    """The pids systemd may know us by. The one-file binary runs Python in a child of its
    bootloader, and systemd's main pid (WATCHDOG_PID) is the bootloader's."""
    if getattr(sys, "frozen", False):
        return (str(os.getpid()), str(os.getppid()))
    return (str(os.getpid()),)


class Notifier:
    """Talks to systemd when it started us; does nothing otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace.
        self._address = ("\0" + raw[1:]) if raw.startswith("@") else raw or None
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        for_us = not watchdog_pid or watchdog_pid in _our_pids()
        self.watchdog_seconds = (
            int(watchdog_usec) / 1_000_000
            if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and for_us
            else None
        )
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when systemd is listening."""
        return self._address is not None

    async def _send(self, *lines: str) -> None:
        if self._address is None:
            return
        message = "\n".join(lines).encode("utf-8")
        try:
            with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                await sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failed:  # once: a missing socket must not flood the log
                _log.warning("cannot notify systemd", error=exc.strerror or str(exc))
            self._failed = True

    async def ready(self, status: str) -> None:
        """The service is up: store migrated, listeners bound."""
        await self._send("READY=1", f"STATUS={status[:_MAX_STATUS]}")

    async def status(self, status: str) -> None:
        """A line for `systemctl status`."""
        await self._send(f"STATUS={status[:_MAX_STATUS]}")

    async def stopping(self, status: str = "stopping: draining in-flight work") -> None:
        """A graceful stop has begun."""
        await self._send("STOPPING=1", f"STATUS={status[:_MAX_STATUS]}")

    async def run_watchdog(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Ping the watchdog at half its interval, forever (returns at once without one)."""
        task_status.started()
        if self.watchdog_seconds is None or not self.enabled:
            return
        while True:
            await self._send("WATCHDOG=1")
            await trio.sleep(self.watchdog_seconds / 2)
