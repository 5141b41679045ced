"""Exclusive work on an installation across processes: a lease row in the store.

The serve process and a `shopimind-sidecar sync` run from the CLI share one database, so
"one installation never syncs twice at once" cannot be an in-memory lock. Whoever works
on an installation holds its lease, renews it as it makes progress, and releases it when
done. A holder that died is recognised at once (SQLite in WAL mode only works on one
host, so its owner id names a process of this host whose pid is gone); one that hangs
loses its lease when it expires.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import trio

from sidecar.concurrency import commit
from sidecar.errors import LeaseLostError, SidecarError
from sidecar.logs import get_logger
from sidecar.store.interface import Leases

__all__ = [
    "LEASE_TTL_SECONDS",
    "LeaseBusyError",
    "LeaseHandle",
    "LeaseLostError",
    "hold_lease",
    "installation_lease_name",
    "new_owner",
    "owner_is_alive",
    "owner_is_dead",
]

_log = get_logger("leases")

LEASE_TTL_SECONDS: Final = 600.0
"""Long: a live holder renews as it works, and a dead one is recognised at once."""
RENEW_AFTER_SECONDS: Final = 30.0


class LeaseBusyError(SidecarError):
    """Someone else holds the lease (e.g. the installation is already syncing)."""

    def __init__(self, name: str, holder: str | None) -> None:
        self.name = name
        self.holder = holder
        super().__init__(f"{name} is busy (held by {holder or 'another process'})")


def installation_lease_name(installation_id: str) -> str:
    """The lease that keeps one installation from syncing (or provisioning) twice at once."""
    return f"installation:{installation_id}"


def new_owner() -> str:
    """An owner id for one running sidecar (or CLI command): host, pid, and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _host_and_pid(owner: str) -> tuple[str, int] | None:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` is a process of this host that no longer exists."""
    parsed = _host_and_pid(owner)
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    try:
        os.kill(parsed[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def owner_is_alive(owner: str | None) -> bool:
    """The opposite of `owner_is_dead`, with no owner counting as dead (nobody to wait for)."""
    return owner is not None and not owner_is_dead(owner)


class LeaseHandle:
    """A lease we hold; `keep_alive()` at each step of progress renews it when due."""

    def __init__(
        self, leases: Leases, name: str, owner: str, ttl_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._leases = leases
        self.name = name
        self.owner = owner
        self._ttl = ttl_seconds
        self._clock = clock
        self._renewed = clock()

    async def keep_alive(self) -> None:
        """Renew when the last renewal is older than RENEW_AFTER_SECONDS; raise if lost."""
        if self._clock() - self._renewed < RENEW_AFTER_SECONDS:
            return
        if not await self._leases.renew(self.name, self.owner, ttl_seconds=self._ttl):
            raise LeaseLostError(f"lost {self.name}: another process took it over")
        self._renewed = self._clock()


@asynccontextmanager
async def hold_lease(
    leases: Leases,
    name: str,
    owner: str,
    *,
    ttl_seconds: float = LEASE_TTL_SECONDS,
    clock: Callable[[], float] = trio.current_time,
) -> AsyncIterator[LeaseHandle]:
    """Hold `name` for the block, or raise LeaseBusyError at once if someone else does.

    Each hold is its own holder (`owner` plus a random tag): a lease row taken by one
    task of this process is busy for every other task of it too — a sync run, a
    provisioning and an operator's action never share an installation.
    """
    holder = f"{owner}/{secrets.token_hex(4)}"
    if not await leases.acquire(name, holder, ttl_seconds=ttl_seconds, takeover=owner_is_dead):
        current = await leases.get(name)
        raise LeaseBusyError(name, current.owner if current else None)
    try:
        yield LeaseHandle(leases, name, holder, ttl_seconds, clock)
    finally:
        await commit(lambda: leases.release(name, holder), what=f"{name}'s release", log=_log)
