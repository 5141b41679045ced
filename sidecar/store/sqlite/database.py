"""One SQLite connection, driven from worker threads so the event loop never blocks.

Operations are plain functions `fn(connection) -> result`, each run as one transaction.
Concurrent operations are batched into a single SQLite transaction (group commit): when
no batch is in flight, a caller carries everyone queued to the store thread; callers
arriving meanwhile wait for that batch to finish. Then the caller that carried it takes
the next one to the thread at once, before returning (once), so the store writes a batch
while the event loop sends the previous one's answers: with few clients at once (16
inbound calls in flight) that overlap is ~15% more calls per second than taking turns.
Each operation runs inside its own SAVEPOINT, so one failing operation rolls back alone,
and one commit makes the whole batch durable: under load that is the difference between
~750 and several thousand durable writes per second (DESIGN.md). Callers whose operation
was carried by another wake when their batch finishes, all at once, rather than taking
turns on a lock.

Cancellation: an operation cancelled while it waits is withdrawn and never runs. Once it
has reached the store thread it runs to completion and its caller still gets its result;
the cancellation is delivered at the caller's next checkpoint, as with
`trio.to_thread.run_sync`. So a caller never wonders whether a write happened.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import outcome
import trio

from sidecar.errors import NotADatabaseError, StoreClosedError, StoreError
from sidecar.sqlite_file import database_path_problem, is_sqlite_file

__all__ = ["BUSY_TIMEOUT_MILLISECONDS", "MAX_BATCH", "Database", "open_database"]

T = TypeVar("T")

BUSY_TIMEOUT_MILLISECONDS = 5000
MAX_BATCH = 256
MINIMUM_SQLITE = (3, 37, 0)  # STRICT tables
_CLOSE_TIMEOUT_SECONDS = 30.0

Operation = Callable[[sqlite3.Connection], T]


@dataclass(eq=False)
class _Job(Generic[T]):
    fn: Operation[T]
    write: bool
    taken: bool = False
    result: outcome.Outcome[T] | None = None
    done: trio.Event = field(default_factory=trio.Event)


def _store_error(exc: BaseException) -> BaseException:
    """Library errors become StoreError; the sidecar's own errors pass through."""
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"SQLite error: {exc}")
        error.__cause__ = exc
        return error
    return exc


class Database:
    """The store's connection and its group-commit executor."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path
        self._pending: list[_Job[Any]] = []
        self._flushing = False
        self._flushed = trio.Event()  # set (and replaced) each time a batch finishes
        self._closed = False
        self._changes = 0  # bumped on the event loop's side only (changed())
        self._outside_changes = 0  # bumped in the store thread only (PRAGMA data_version)
        self._data_version: int | None = None

    @property
    def generation(self) -> tuple[int, int]:
        """Moves whenever installations or their state may have changed: written by this
        process (`changed()`, once the write is committed) or by another one (seen through
        PRAGMA data_version as the next batch begins). What a cache of them compares."""
        return (self._changes, self._outside_changes)

    def changed(self) -> None:
        """Installations or their state were written: caches of them are stale."""
        self._changes += 1

    async def read(self, fn: Operation[T]) -> T:
        """Run `fn` in a transaction that does not take the write lock."""
        return await self._submit(fn, write=False)

    async def write(self, fn: Operation[T]) -> T:
        """Run `fn` in a write transaction (BEGIN IMMEDIATE), committed before returning."""
        return await self._submit(fn, write=True)

    async def _submit(self, fn: Operation[T], *, write: bool) -> T:
        if self._closed:
            raise StoreClosedError("the store is closed")
        job: _Job[T] = _Job(fn, write)
        self._pending.append(job)
        try:
            while not job.taken:
                if self._flushing:
                    await self._flushed.wait()
                else:
                    await self._flush()
                    if self._pending and not self._flushing and not self._closed:
                        # Ours is settled; carry the batch that piled up meanwhile at once,
                        # so the store writes it while the loop sends this batch's answers
                        # (once: our caller waits one batch longer, never more). Its
                        # callers get whatever happens to it; ours succeeded already.
                        with contextlib.suppress(Exception):
                            await self._flush()
            await job.done.wait()
        except trio.Cancelled:
            if not job.taken:
                self._pending.remove(job)
                raise
            # Another task carried our job to the store thread: its fate is sealed, so wait
            # for it and return its result; the cancellation fires at our next checkpoint.
            with trio.CancelScope(shield=True):
                await job.done.wait()
        if job.result is None:  # pragma: no cover - _flush always settles its batch
            raise StoreError("store operation was not run")
        return job.result.unwrap()

    async def _flush(self) -> None:
        self._flushing = True
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        for job in batch:
            job.taken = True
        try:
            # Shielded: the batch holds other tasks' jobs, so it must reach the thread even
            # if the task carrying it is cancelled; the thread itself cannot be interrupted.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._run_batch, batch)
        finally:
            for job in batch:
                if job.result is None:
                    job.result = outcome.Error(StoreError("the store thread failed to start"))
                job.done.set()
            self._flushing = False
            finished, self._flushed = self._flushed, trio.Event()
            finished.set()

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        connection = self._connection
        try:
            self._run_in_transaction(batch)
        except sqlite3.Error as exc:
            # The transaction as a whole failed (lock timeout, disk full, I/O error):
            # nothing of it was committed, so no operation in it succeeded.
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            error = _store_error(exc)
            for job in batch:
                job.result = outcome.Error(error)

    def _run_in_transaction(self, batch: list[_Job[Any]]) -> None:
        connection = self._connection
        connection.execute(
            "BEGIN IMMEDIATE" if any(job.write for job in batch) else "BEGIN DEFERRED"
        )
        # Another connection (a CLI command, another process) committed since our last
        # batch: what we cached of installations may be stale.
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._outside_changes += 1
        for job in batch:
            connection.execute("SAVEPOINT operation")
            result = outcome.capture(job.fn, connection)
            if isinstance(result, outcome.Error):
                if not connection.in_transaction:
                    # Some errors (SQLITE_FULL, SQLITE_IOERR…) roll back everything.
                    raise sqlite3.OperationalError(f"transaction aborted: {result.error}")
                connection.execute("ROLLBACK TO operation")
                result = outcome.Error(_store_error(result.error))
            connection.execute("RELEASE operation")
            job.result = result
        connection.execute("COMMIT")

    async def aclose(self) -> None:
        """Run what is already queued, then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT_SECONDS):
            while self._flushing:
                await self._flushed.wait()
            while self._pending:
                await self._flush()
            self._flushing = True  # nothing may start a batch on a closing connection
            await trio.to_thread.run_sync(self._connection.close)


def _connect(path: Path) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
        raise StoreError(
            f"SQLite {sqlite3.sqlite_version} is too old; the store needs "
            f"{'.'.join(map(str, MINIMUM_SQLITE))} or newer (use the shopimind-sidecar binary, "
            "which bundles its own)"
        )
    if path.is_file():
        try:
            sqlite = is_sqlite_file(path)
        except OSError as exc:
            raise StoreError(f"DATABASE_PATH: cannot read {path} ({exc.strerror})") from exc
        if not sqlite:
            raise NotADatabaseError(
                f"DATABASE_PATH: {path} is not an SQLite database; it was left untouched"
            )
    problem = database_path_problem(path)
    if problem is not None:
        raise StoreError(f"DATABASE_PATH: {problem}")
    if not path.exists():
        # The file holds encrypted secrets and customer data: readable by its owner only.
        # SQLite gives the -wal and -shm files the database file's permissions.
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        # busy_timeout first: switching to WAL may itself wait for another process's lock.
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MILLISECONDS}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"{path}: SQLite refused WAL mode (got {mode!r}); put the database on a local "
                "disk, not a network share"
            )
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
    except BaseException as exc:
        connection.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise NotADatabaseError(f"{path} is not a usable SQLite database: {exc}") from exc
        raise
    connection.row_factory = sqlite3.Row
    return connection


async def open_database(path: Path) -> Database:
    """Open (creating when absent) the SQLite file at `path` in WAL mode."""
    connection = await trio.to_thread.run_sync(_connect, path)
    return Database(connection, path)
