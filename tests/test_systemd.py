"""The notify protocol against a real datagram socket (as systemd listens)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


async def test_ready_status_stopping(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    await notifier.ready("serving on http://127.0.0.1:8080")
    await notifier.status("3 active installations")
    await notifier.stopping()
    messages = [sock.recv(4096).decode() for _ in range(3)]
    assert messages == [
        "READY=1\nSTATUS=serving on http://127.0.0.1:8080",
        "STATUS=3 active installations",
        "STOPPING=1\nSTATUS=stopping: draining in-flight work",
    ]


async def test_abstract_socket() -> None:
    name = f"sidecar-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        await Notifier({"NOTIFY_SOCKET": "@" + name}).ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    finally:
        sock.close()


async def test_watchdog_pings_at_half_the_interval(
    mock_clock: trio.testing.MockClock, listener: tuple[socket.socket, str]
) -> None:
    sock, path = listener
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    assert notifier.watchdog_seconds == 10
    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.run_watchdog)
        await trio.sleep(21)
        nursery.cancel_scope.cancel()
    pings = []
    while True:
        try:
            pings.append(sock.recv(64))
        except BlockingIOError:
            break
    assert pings == [b"WATCHDOG=1"] * 5  # at 0, 5, 10, 15, 20 s


async def test_not_under_systemd_or_watchdog_for_another_pid(tmp_path: Path) -> None:
    quiet = Notifier({})
    assert not quiet.enabled
    await quiet.ready("nobody listens")  # does nothing, raises nothing
    other = Notifier(
        {"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_seconds is None


async def test_a_missing_socket_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    await notifier.ready("x")
    await notifier.status("y")
    assert [r.getMessage() for r in caplog.records].count("cannot notify systemd") == 1


def test_the_frozen_binary_answers_to_its_bootloader_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getppid())}
    assert Notifier(env).watchdog_seconds is None  # not frozen: the parent is not us
    monkeypatch.setattr("sys.frozen", True, raising=False)
    assert Notifier(env).watchdog_seconds == 2
