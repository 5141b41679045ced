"""The PostgreSQL pool: cancellation mid-query, group commit, an unreachable server."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
import trio
import trio.testing

from sidecar.errors import StoreClosedError, StoreError
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from tests.backends import Backend
from tests.conftest import outbox_entry
from tests.postgres import PostgresCluster, new_schema

PASSWORD = "n0t-the-real-Pa55"


def _activity(url: str) -> list[tuple[str, str]]:
    """(state, query) of every other session of the sidecar, seen from a fresh connection."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT state, query FROM pg_stat_activity WHERE application_name = "
            "'shopimind-sidecar' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [(str(state), str(query)) for state, query in rows]


def _wait_for_sleep(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(state == "active" and "pg_sleep" in query for state, query in _activity(url)):
            return
        time.sleep(0.02)
    raise AssertionError("the query never reached the server")


async def test_a_cancelled_query_is_stopped_on_the_server(
    store: PostgresStore, backend: Backend
) -> None:
    started = trio.Event()

    def slow(connection: Any) -> None:
        trio.from_thread.run_sync(started.set)
        connection.execute("SELECT pg_sleep(60)")

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.db.read, slow)
            await started.wait()
            # The server cannot tell us when the query arrives: look until it is running.
            await trio.to_thread.run_sync(_wait_for_sleep, backend.url)
            scope.cancel(reason="test")
    # The caller came back only once the server stopped the query and the connection
    # went back to the pool, idle and usable.
    sessions = await trio.to_thread.run_sync(_activity, backend.url)
    assert sessions
    assert all(state == "idle" for state, _ in sessions), sessions
    assert store.pool_statistics().in_use == 0
    await store.ping()
    assert await store.installations.count() == 0


async def test_a_write_cancelled_while_waiting_never_runs(store: PostgresStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    started, gate = trio.Event(), threading.Event()

    def blocker(connection: Any) -> None:
        trio.from_thread.run_sync(started.set)
        gate.wait(10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.db.write, blocker)  # a batch in flight: the next one waits
        await started.wait()
        with trio.CancelScope() as scope:
            nursery.start_soon(store.outbox.enqueue, outbox_entry("never"))
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
        # The enqueue task is not in the scope: cancel it through the nursery instead.
        nursery.cancel_scope.cancel()
        gate.set()
    assert await store.outbox.pending_count() == 0


async def test_concurrent_writes_are_batched_and_fail_alone(store: PostgresStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    results: dict[int, object] = {}

    async def enqueue(n: int) -> None:
        try:
            claim = await store.outbox.enqueue(outbox_entry(f"k{n}"))
            results[n] = claim.fresh
        except StoreError as exc:
            results[n] = exc

    async def bad() -> None:
        try:
            await store.state.set("ghost", "k", "v")  # no such installation: refused alone
        except StoreError as exc:
            results[-1] = exc

    before = store.db.batches_committed
    async with trio.open_nursery() as nursery:
        for n in range(100):
            nursery.start_soon(enqueue, n)
        nursery.start_soon(bad)
    # The 100 writes shared a few commits instead of paying one each.
    assert store.db.batches_committed - before < 20
    assert isinstance(results.pop(-1), StoreError)
    assert all(value is True for value in results.values())
    pending = await store.outbox.pending("i", limit=1000)
    assert len(pending) == 100
    assert [event.id for event in pending] == sorted(event.id for event in pending)


async def test_pool_statistics(store: PostgresStore) -> None:
    statistics = store.pool_statistics()
    assert statistics.size == store.db.size
    assert (statistics.in_use, statistics.waiting) == (0, 0)


async def test_closed_store_refuses_work(store: PostgresStore) -> None:
    await store.aclose()
    with pytest.raises(StoreClosedError):
        await store.ping()
    await store.aclose()  # idempotent


async def test_an_unreachable_server_is_one_clear_error(cipher: AesGcmCipher) -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://sidecar:{PASSWORD}@127.0.0.1:{port}/shop"
    with pytest.raises(StoreError) as caught:
        await open_postgres_store(url, cipher=cipher, connect_seconds=2)
    message = str(caught.value)
    assert message.startswith("PostgreSQL: cannot connect within 2 s")
    assert PASSWORD not in message
    assert "\n" not in message


async def test_the_store_recovers_when_the_server_restarts(
    postgres_server: PostgresCluster, cipher: AesGcmCipher
) -> None:
    if not postgres_server.owned:
        pytest.skip("SIDECAR_TEST_POSTGRES_URL: the tests cannot restart that server")
    store = await open_postgres_store(postgres_server.url, schema=new_schema(), cipher=cipher)
    try:
        await store.ping()
        await trio.to_thread.run_sync(postgres_server.restart)
        # The pooled connections died with the server: the next operation may fail (a clear
        # StoreError), and the one after works on a new connection, without a restart of ours.
        outcomes = []
        for _ in range(store.db.size + 1):
            try:
                await store.ping()
                outcomes.append("ok")
            except StoreError as exc:
                outcomes.append(str(exc))
        assert outcomes[-1] == "ok"
        assert all(outcome.startswith("PostgreSQL") for outcome in outcomes if outcome != "ok")
        assert await store.installations.count() == 0
    finally:
        await store.aclose()
