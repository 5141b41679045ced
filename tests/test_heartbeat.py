"""The replica heartbeat task (sidecar.heartbeat) on a real SQLite store, in virtual time:
registered before it reports started, a heartbeat every interval, stopped at the end of
the drain or on cancellation (shielded, bounded), store errors logged and retried."""

from __future__ import annotations

import builtins
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar import __version__
from sidecar.errors import StoreError
from sidecar.heartbeat import heartbeat_interval_seconds, registration, run_heartbeat
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.records import Replica, ReplicaRegistration
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.store.conftest import execute

_START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _trio_wall_clock() -> datetime:
    """The store's clock follows trio's (virtual) time."""
    return _START + timedelta(seconds=trio.current_time())


@pytest.fixture
async def store(tmp_path: Path, cipher: AesGcmCipher) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "s.sqlite", cipher=cipher, clock=_trio_wall_clock)
    try:
        yield opened
    finally:
        await opened.aclose()


class _Flaky:
    """The real replicas table, failing with StoreError while `failing`, or hanging."""

    def __init__(self, store: SqliteStore) -> None:
        self._real = store.replicas
        self.failing = False
        self.hang_on_stop = False
        self.calls: builtins.list[str] = []

    async def _gate(self, name: str) -> None:
        self.calls.append(name)
        if self.failing:
            raise StoreError("database is locked")

    async def register(self, replica: ReplicaRegistration) -> None:
        await self._gate("register")
        await self._real.register(replica)

    async def heartbeat(self, replica_id: str) -> bool:
        await self._gate("heartbeat")
        return await self._real.heartbeat(replica_id)

    async def stopped(self, replica_id: str) -> None:
        await self._gate("stopped")
        if self.hang_on_stop:
            await trio.sleep_forever()
        await self._real.stopped(replica_id)

    async def list(self) -> builtins.list[Replica]:
        return await self._real.list()


def test_a_heartbeat_every_third_of_the_ttl() -> None:
    assert heartbeat_interval_seconds(30.0) == 10.0
    made = registration("web-1", ttl_seconds=30.0)
    assert (made.id, made.alive_seconds) == ("web-1", 30.0)
    assert (made.pid, made.version) == (os.getpid(), __version__)
    assert made.host == socket.gethostname()


async def test_registered_beating_then_stopped_when_the_drain_ends(
    mock_clock: trio.testing.MockClock, store: SqliteStore
) -> None:
    drained = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_heartbeat(
                store.replicas,
                registration("web-1", ttl_seconds=30),
                interval_seconds=10,
                until=drained,
                task_status=task_status,
            )
        )
        [started] = await store.replicas.list()  # registered before it reports started
        assert (started.id, started.alive) == ("web-1", True)
        await trio.sleep(35)
        [beating] = await store.replicas.list()
        assert beating.heartbeat_at == "2026-11-26T09:00:30.000Z"  # beats at 10, 20, 30 s
        assert beating.alive
        drained.set()
    [stopped] = await store.replicas.list()
    assert not stopped.alive
    assert stopped.stopped_at is not None


async def test_store_errors_are_logged_retried_and_never_fatal(
    mock_clock: trio.testing.MockClock, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _Flaky(store)
    flaky.failing = True
    drained = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_heartbeat(
                flaky,
                registration("web-1", ttl_seconds=30),
                interval_seconds=10,
                until=drained,
                task_status=task_status,
            )
        )
        assert await store.replicas.list() == []  # started all the same
        await trio.sleep(25)  # two more failed tries
        assert flaky.calls == ["register"] * 3
        flaky.failing = False
        await trio.sleep(10)  # registered at the next tick
        assert [r.id for r in await store.replicas.list()] == ["web-1"]
        await execute(store, "DELETE FROM replicas")  # its row is gone (a purge, a hand)
        await trio.sleep(10)  # the heartbeat finds nothing: registered again
        assert [r.id for r in await store.replicas.list()] == ["web-1"]
        assert flaky.calls[3:] == ["register", "heartbeat", "register"]
        drained.set()
    failures = [r for r in caplog.records if "heartbeat failed" in r.getMessage()]
    assert len(failures) == 3


async def test_cancelled_it_still_marks_itself_stopped_within_a_bound(
    mock_clock: trio.testing.MockClock, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _Flaky(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_heartbeat(
                flaky,
                registration("web-1", ttl_seconds=30),
                interval_seconds=10,
                until=trio.Event(),
                task_status=task_status,
            )
        )
        nursery.cancel_scope.cancel()  # a forced stop
    [stopped] = await store.replicas.list()
    assert stopped.stopped_at is not None  # shielded from the cancellation

    flaky.hang_on_stop = True  # a store that never answers cannot hold the stop
    await store.replicas.register(registration("web-2", ttl_seconds=30))
    with trio.fail_after(60):  # returns (after its 5 s bound) instead of hanging
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_heartbeat(
                    flaky,
                    registration("web-2", ttl_seconds=30),
                    interval_seconds=10,
                    until=trio.Event(),
                    stop_timeout_seconds=5,
                    task_status=task_status,
                )
            )
            nursery.cancel_scope.cancel()
    assert {r.id: r.stopped_at for r in await store.replicas.list()}["web-2"] is None
    late = [r for r in caplog.records if "could not mark the replica stopped in time" in r.msg]
    assert len(late) == 1
