"""The connection and its group-commit executor: pragmas, batching, failures, cancellation."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.errors import NotADatabaseError, StoreClosedError, StoreError
from sidecar.store.sqlite import MIGRATIONS, SqliteStore, open_sqlite_store
from sidecar.store.sqlite.database import Database, open_database


async def test_pragmas(store: SqliteStore) -> None:
    def pragmas(connection: sqlite3.Connection) -> tuple[object, ...]:
        return tuple(
            connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        )

    assert await store.db.read(pragmas) == ("wal", 1, 1, 5000)


async def test_database_file_is_private(store: SqliteStore) -> None:
    assert store.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "content", [b"hello, I am a text file", b"\x00" * 4096, b"SQLite format 2\x00" + b"\x00" * 100]
)
async def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(
    tmp_path: Path, cipher, content: bytes
) -> None:
    path = tmp_path / "impostor.sqlite"
    path.write_bytes(content)
    with pytest.raises(NotADatabaseError, match="not an SQLite database"):
        await open_sqlite_store(path, cipher=cipher)
    assert await trio.Path(path).read_bytes() == content
    assert [p.name for p in await trio.Path(tmp_path).iterdir()] == ["impostor.sqlite"]


async def test_an_empty_file_is_adopted(tmp_path: Path, cipher) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    store = await open_sqlite_store(path, cipher=cipher)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.aclose()


async def test_missing_folder_is_a_store_error(tmp_path: Path, cipher) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await open_sqlite_store(tmp_path / "no" / "db.sqlite", cipher=cipher)


async def _table(tmp_path: Path) -> Database:
    db = await open_database(tmp_path / "t.sqlite")
    await db.write(lambda c: c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)"))
    return db


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    db = await _table(tmp_path)
    batches: list[int] = []
    original = db._run_batch

    def counting(batch):
        batches.append(len(batch))
        original(batch)

    db._run_batch = counting  # type: ignore[method-assign]

    async def insert(i: int) -> None:
        await db.write(lambda c: c.execute("INSERT INTO t VALUES (?, ?)", (f"k{i}", i)))

    async with trio.open_nursery() as nursery:
        for i in range(300):
            nursery.start_soon(insert, i)
    assert sum(batches) == 300
    assert len(batches) < 300  # batched: fewer transactions than writes
    assert max(batches) <= 256
    assert await db.read(lambda c: c.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 300
    await db.aclose()


async def test_a_failing_operation_rolls_back_alone(tmp_path: Path) -> None:
    db = await _table(tmp_path)
    results: dict[str, object] = {}

    async def attempt(name: str, fn) -> None:
        try:
            results[name] = await db.write(fn)
        except Exception as exc:  # noqa: BLE001 - the test records what each caller saw
            results[name] = exc

    def half_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t VALUES ('partial', 1)")
        raise ValueError("application error halfway")

    await db.write(lambda c: c.execute("INSERT INTO t VALUES ('seed', 0)"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            attempt, "a", lambda c: c.execute("INSERT INTO t VALUES ('a', 1)").rowcount
        )
        nursery.start_soon(attempt, "bad", half_then_fail)
        nursery.start_soon(attempt, "dup", lambda c: c.execute("INSERT INTO t VALUES ('seed', 2)"))
        nursery.start_soon(
            attempt, "b", lambda c: c.execute("INSERT INTO t VALUES ('b', 1)").rowcount
        )
    assert results["a"] == 1
    assert results["b"] == 1
    assert isinstance(results["bad"], ValueError)  # the sidecar's caller sees its own error
    assert isinstance(results["dup"], StoreError)  # a library error, translated
    assert isinstance(results["dup"].__cause__, sqlite3.IntegrityError)
    keys = await db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY k")])
    assert keys == ["a", "b", "seed"]
    await db.aclose()


async def test_an_aborted_transaction_fails_every_operation_in_it(tmp_path: Path) -> None:
    db = await _table(tmp_path)
    seen: list[object] = []

    def abort_everything(connection: sqlite3.Connection) -> None:
        connection.execute("ROLLBACK")  # what SQLite does by itself on SQLITE_FULL or I/O errors
        raise sqlite3.OperationalError("database or disk is full")

    async def attempt(fn) -> None:
        try:
            seen.append(await db.write(fn))
        except StoreError as exc:
            seen.append(exc)

    in_thread = threading.Event()

    def first(connection: sqlite3.Connection) -> int:
        # Held in the store thread until the others are queued: they then go as one batch.
        in_thread.wait(10)
        return connection.execute("INSERT INTO t VALUES ('x', 1)").rowcount

    async with trio.open_nursery() as nursery:
        nursery.start_soon(attempt, first)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):
            nursery.start_soon(
                attempt, lambda c: c.execute("INSERT INTO t VALUES ('y', 1)").rowcount
            )
        nursery.start_soon(attempt, abort_everything)
        await trio.testing.wait_all_tasks_blocked()
        in_thread.set()
    # The first write went alone; the batch with the aborting operation failed as a whole,
    # and nobody was told "done" for a write that was rolled back.
    assert [result for result in seen if not isinstance(result, StoreError)] == [1]
    assert sum(isinstance(result, StoreError) for result in seen) == 4
    keys = await db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t")])
    assert keys == ["x"]
    await db.aclose()


async def test_a_cancelled_waiting_operation_never_runs(tmp_path: Path) -> None:
    db = await _table(tmp_path)
    release = trio.Event()
    started = trio.Event()

    def slow(connection: sqlite3.Connection) -> None:
        trio.from_thread.run_sync(started.set)
        trio.from_thread.run(release.wait)
        connection.execute("INSERT INTO t VALUES ('slow', 1)")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.write, slow)
        await started.wait()
        with trio.move_on_after(0.05) as scope:
            await db.write(lambda c: c.execute("INSERT INTO t VALUES ('never', 1)"))
        assert scope.cancelled_caught
        release.set()
    keys = await db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t")])
    assert keys == ["slow"]
    await db.aclose()


def _blocking(started: trio.Event, release: trio.Event, key: str):
    def operation(connection: sqlite3.Connection) -> None:
        trio.from_thread.run_sync(started.set)
        trio.from_thread.run(release.wait)
        connection.execute("INSERT INTO t VALUES (?, 1)", (key,))

    return operation


async def test_an_operation_carried_by_another_task_completes_despite_cancellation(
    tmp_path: Path,
) -> None:
    db = await _table(tmp_path)
    first_started, first_release = trio.Event(), trio.Event()
    carrier_started, carrier_release = trio.Event(), trio.Event()
    outcome: list[object] = []
    scope = trio.CancelScope()

    async def follower() -> None:
        with scope:
            outcome.append(
                await db.write(lambda c: c.execute("INSERT INTO t VALUES ('f', 1)").rowcount)
            )
            await trio.lowlevel.checkpoint()  # the cancellation lands here, after the result
            outcome.append("not reached")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.write, _blocking(first_started, first_release, "first"))
        await first_started.wait()
        # The carrier queues first, the follower second: both wait for the lock.
        nursery.start_soon(db.write, _blocking(carrier_started, carrier_release, "carrier"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        first_release.set()
        # The carrier takes the lock and runs [carrier, follower] in the store thread,
        # while the follower still waits for the lock.
        await carrier_started.wait()
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == []  # the follower waits for its job, it does not abandon it
        carrier_release.set()
    assert outcome == [1]
    assert scope.cancelled_caught
    keys = await db.read(lambda c: sorted(r[0] for r in c.execute("SELECT k FROM t")))
    assert keys == ["carrier", "f", "first"]
    await db.aclose()


async def test_the_carrier_takes_the_next_batch_to_the_thread_before_it_returns(
    tmp_path: Path,
) -> None:
    """The store writes the batch that piled up while the loop answers the previous one:
    the task that carried a batch takes the next at once, and returns once it is done."""
    db = await _table(tmp_path)
    first_started, first_release = trio.Event(), trio.Event()
    next_started, next_release = trio.Event(), trio.Event()
    answered: list[str] = []

    async def write(key: str, operation: Callable[[sqlite3.Connection], None]) -> None:
        await db.write(operation)
        answered.append(key)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write, "first", _blocking(first_started, first_release, "first"))
        await first_started.wait()
        nursery.start_soon(write, "next", _blocking(next_started, next_release, "next"))
        nursery.start_soon(write, "third", lambda c: c.execute("INSERT INTO t VALUES ('3', 1)"))
        await trio.testing.wait_all_tasks_blocked()
        first_release.set()
        try:
            await next_started.wait()  # [next, third] went to the thread once [first] ended
            await trio.testing.wait_all_tasks_blocked()
            assert answered == []  # ...carried by the first caller, which returns after it
        finally:
            next_release.set()
    assert sorted(answered) == ["first", "next", "third"]
    keys = await db.read(lambda c: sorted(r[0] for r in c.execute("SELECT k FROM t")))
    assert keys == ["3", "first", "next"]
    await db.aclose()


async def test_a_carrier_cancelled_while_carrying_the_next_batch_still_delivers_it(
    tmp_path: Path,
) -> None:
    """Cancelling the caller that carries the next batch withdraws nothing: its own write
    is committed and reported, the batch it carries runs, and its callers get results."""
    db = await _table(tmp_path)
    first_started, first_release = trio.Event(), trio.Event()
    next_started, next_release = trio.Event(), trio.Event()
    results: dict[str, object] = {}
    scope = trio.CancelScope()

    async def first() -> None:
        with scope:
            await db.write(_blocking(first_started, first_release, "first"))
            results["first"] = "written"
            await trio.lowlevel.checkpoint()  # the cancellation lands here
            results["first"] = "not reached"

    async def follower() -> None:
        await db.write(_blocking(next_started, next_release, "next"))
        results["next"] = "written"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await first_started.wait()
        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        first_release.set()
        try:
            await next_started.wait()  # carried by `first`, which is cancelled now
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert results == {}  # the carrier waits for the batch it carries
        finally:
            next_release.set()
    assert results == {"first": "written", "next": "written"}
    assert scope.cancelled_caught
    keys = await db.read(lambda c: sorted(r[0] for r in c.execute("SELECT k FROM t")))
    assert keys == ["first", "next"]
    await db.aclose()


async def test_closed_store_refuses_work(tmp_path: Path, cipher) -> None:
    store = await open_sqlite_store(tmp_path / "s.sqlite", cipher=cipher)
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(StoreClosedError):
        await store.ping()


async def test_close_runs_what_is_already_queued(tmp_path: Path) -> None:
    db = await _table(tmp_path)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(
                db.write, lambda c, i=i: c.execute("INSERT INTO t VALUES (?, ?)", (str(i), i))
            )
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(db.aclose)
    with sqlite3.connect(tmp_path / "t.sqlite") as check:
        assert check.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 20
