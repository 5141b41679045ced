"""A psycopg connection pool, driven from worker threads so the event loop never blocks.

Operations are plain functions `fn(connection) -> result`, each run as one transaction,
exactly as on SQLite (`sidecar.store.sqlite.database`), so a repository of one adapter
reads like the other's.

Writes are group-committed: concurrent write operations are carried to a connection in
batches, each operation inside its own SAVEPOINT (one failing operation rolls back alone)
and one COMMIT for the batch, so concurrent inbound calls share a round trip to commit
instead of paying one each. One batch runs at a time (`WRITE_LANES`), as on SQLite: the
batch, not the lane count, is what makes writes fast, and one lane means this process's
writes never deadlock one another nor commit out of order. A batch that meets a deadlock
or a serialization failure (with another process) is run again.

Reads each take a pooled connection of their own, under a `trio.CapacityLimiter` sized to
the pool, so no thread ever waits inside the pool.

Cancellation: a read cancelled during its query cancels the query on the server, waits for
its thread to roll back, and returns the connection to the pool clean. A write follows
the SQLite store's rule: cancelled while it waits it is withdrawn and never runs; once
carried to a connection it runs to completion (its batch holds other callers' writes), and
the cancellation is delivered at the caller's next checkpoint. Either way no transaction
stays open and no connection is left broken in the pool.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import outcome
import psycopg
import psycopg.errors
import trio
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from sidecar.errors import StoreClosedError, StoreError
from sidecar.postgres_url import redact_text
from sidecar.store.records import PoolStatistics

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_POOL_SIZE",
    "MAX_BATCH",
    "STATEMENT_TIMEOUT_MILLISECONDS",
    "Connection",
    "Database",
    "PoolStatistics",
    "open_database",
]

T = TypeVar("T")

Connection = psycopg.Connection[DictRow]
Operation = Callable[[Connection], T]

DEFAULT_POOL_SIZE = 8
MAX_BATCH = 256
CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MILLISECONDS = 30_000
POOL_WAIT_SECONDS = 10.0
_POOL_SLICE_SECONDS = 0.25
WRITE_LANES = 1
_RETRIES = 3
_CLOSE_TIMEOUT_SECONDS = 30.0
_CANCEL_REPEAT_SECONDS = 0.5
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass(eq=False)
class _Job(Generic[T]):
    fn: Operation[T]
    taken: bool = False
    result: outcome.Outcome[T] | None = None
    done: trio.Event = field(default_factory=trio.Event)


class Database:
    """The pool, its capacity limiter and the group-commit executor of writes."""

    def __init__(self, pool: ConnectionPool[Connection], *, url: str, schema: str) -> None:
        self._pool = pool
        self.url = url
        self.schema = schema
        self.size = pool.max_size
        self.limiter = trio.CapacityLimiter(pool.max_size)
        self.write_lanes = WRITE_LANES
        self._pending: list[_Job[Any]] = []
        self._flushing = 0
        self._flushed = trio.Event()  # set (and replaced) each time a batch finishes
        self._closed = False
        self.batches_committed = 0
        """Write batches committed so far (one COMMIT each, however many operations)."""

    def statistics(self) -> PoolStatistics:
        """How many connections there are, are in use, and how many operations wait."""
        limiter = self.limiter.statistics()
        return PoolStatistics(
            size=self.size,
            in_use=limiter.borrowed_tokens,
            waiting=limiter.tasks_waiting + len(self._pending),
        )

    def store_error(self, exc: BaseException) -> BaseException:
        """Library errors become StoreError (the password masked); the sidecar's pass through."""
        if isinstance(exc, PoolTimeout):
            error = StoreError(
                f"PostgreSQL: no connection within {POOL_WAIT_SECONDS:g} s (server unreachable "
                "or every connection busy)"
            )
        elif isinstance(exc, psycopg.Error):
            error = StoreError(f"PostgreSQL error: {redact_text(str(exc).strip(), self.url)}")
        else:
            return exc
        error.__cause__ = exc
        return error

    # -- reads -----------------------------------------------------------------------------

    async def read(self, fn: Operation[T]) -> T:
        """Run `fn`, one statement (its own transaction), on a pooled connection."""
        return await self._run(fn, commit=False)

    async def run(self, fn: Operation[T]) -> T:
        """Run `fn` in a transaction of its own, committed, outside any batch (migrations,
        copies: long operations that must not hold other callers' writes)."""
        return await self._run(fn, commit=True)

    async def _run(self, fn: Operation[T], *, commit: bool) -> T:
        if self._closed:
            raise StoreClosedError("the store is closed")
        async with self.limiter:
            running = _Running(trio.lowlevel.current_trio_token())
            try:
                return await trio.to_thread.run_sync(
                    self._run_one, fn, commit, running, abandon_on_cancel=True
                )
            except trio.Cancelled:
                # The thread goes on: stop its query on the server, then wait (shielded)
                # for it to roll back and give its connection back before we let go.
                with trio.CancelScope(shield=True):
                    # Repeated: a cancel that reaches the server just before the query does
                    # stops nothing, so cancel again until the thread is done.
                    while await trio.to_thread.run_sync(running.cancel):
                        with trio.move_on_after(_CANCEL_REPEAT_SECONDS):
                            await running.finished.wait()
                        if running.finished.is_set():
                            break
                raise

    def _run_one(self, fn: Operation[T], commit: bool, running: _Running) -> T:
        if not running.start():
            raise StoreError("cancelled before it started")
        try:
            for attempt in range(_RETRIES):
                with self._connection(running) as connection:
                    running.connection = connection
                    # A read runs without BEGIN/ROLLBACK: each of the repositories' reads is
                    # one statement, which PostgreSQL runs as a transaction of its own.
                    connection.autocommit = not commit
                    try:
                        if running.cancelled:
                            raise StoreError("cancelled")
                        result = fn(connection)
                        if commit:
                            connection.commit()
                        else:
                            connection.rollback()
                        return result
                    except _RETRYABLE:
                        _rollback(connection)
                        if attempt == _RETRIES - 1:
                            raise
                    except psycopg.OperationalError as exc:
                        # A connection that died with a server restart: a read is safe to
                        # run again on another (the pool drops the dead one). Not a query
                        # stopped on purpose (a cancel, the statement timeout).
                        _rollback(connection)
                        if (
                            commit
                            or running.cancelled
                            or isinstance(exc, psycopg.errors.QueryCanceled)
                            or attempt == _RETRIES - 1
                        ):
                            raise
                    except BaseException:
                        _rollback(connection)
                        raise
                    finally:
                        running.connection = None
                        if connection.autocommit:
                            with contextlib.suppress(psycopg.Error):
                                connection.autocommit = False
            raise StoreError("unreachable")  # pragma: no cover - the loop returns or raises
        except BaseException as exc:
            raise self.store_error(exc) from exc
        finally:
            running.finish()

    # -- writes ----------------------------------------------------------------------------

    async def write(self, fn: Operation[T]) -> T:
        """Run `fn` in a write transaction, group-committed with concurrent writes."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        job: _Job[T] = _Job(fn)
        self._pending.append(job)
        try:
            while not job.taken:
                if self._flushing >= self.write_lanes:
                    await self._flushed.wait()
                else:
                    await self._flush()
            await job.done.wait()
        except trio.Cancelled:
            if not job.taken:
                self._pending.remove(job)
                raise
            # Another task carried our job to a connection: its fate is sealed, so wait for
            # it and return its result; the cancellation fires at our next checkpoint.
            with trio.CancelScope(shield=True):
                await job.done.wait()
        if job.result is None:  # pragma: no cover - _flush always settles its batch
            raise StoreError("store operation was not run")
        return job.result.unwrap()

    async def _flush(self) -> None:
        self._flushing += 1
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        for job in batch:
            job.taken = True
        try:
            # Shielded: the batch holds other tasks' jobs, so it must reach the thread even
            # if the task carrying it is cancelled. The statement timeout bounds it.
            with trio.CancelScope(shield=True):
                async with self.limiter:
                    await trio.to_thread.run_sync(self._run_batch, batch)
        finally:
            for job in batch:
                if job.result is None:
                    job.result = outcome.Error(StoreError("the store thread failed to start"))
                job.done.set()
            self._flushing -= 1
            finished, self._flushed = self._flushed, trio.Event()
            finished.set()

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        for attempt in range(_RETRIES):
            try:
                with self._connection() as connection:
                    try:
                        self._run_in_transaction(connection, batch)
                        return
                    except BaseException:
                        _rollback(connection)
                        raise
            except _RETRYABLE:
                if attempt < _RETRIES - 1:
                    continue
                error = self.store_error(StoreError("PostgreSQL kept aborting the transaction"))
                for job in batch:
                    job.result = outcome.Error(error)
            except (psycopg.Error, PoolTimeout) as exc:
                # The transaction as a whole failed (server gone, commit refused): nothing of
                # it was committed, so no operation in it succeeded.
                error = self.store_error(exc)
                for job in batch:
                    job.result = outcome.Error(error)
                return

    def _run_in_transaction(self, connection: Connection, batch: list[_Job[Any]]) -> None:
        if len(batch) == 1:
            # Alone: no savepoint round trips. A retryable error retries the whole batch.
            job = batch[0]
            result = outcome.capture(job.fn, connection)
            if isinstance(result, outcome.Error):
                if isinstance(result.error, _RETRYABLE):
                    raise result.error
                _rollback(connection)
                job.result = outcome.Error(self.store_error(result.error))
                return
            connection.commit()
            self.batches_committed += 1
            job.result = result
            return
        results: list[outcome.Outcome[Any]] = []
        for job in batch:
            connection.execute("SAVEPOINT operation")
            result = outcome.capture(job.fn, connection)
            if isinstance(result, outcome.Error):
                if isinstance(result.error, _RETRYABLE):
                    raise result.error
                connection.execute("ROLLBACK TO SAVEPOINT operation")
                result = outcome.Error(self.store_error(result.error))
            connection.execute("RELEASE SAVEPOINT operation")
            results.append(result)
        connection.commit()
        self.batches_committed += 1
        for job, result in zip(batch, results, strict=True):
            job.result = result

    @contextlib.contextmanager
    def _connection(self, running: _Running | None = None) -> Iterator[Connection]:
        """A pooled connection, given back after. While the server is away the pool has
        none to give: wait in short slices, so a cancelled read stops waiting at once."""
        deadline = time.monotonic() + POOL_WAIT_SECONDS
        while True:
            if running is not None and running.cancelled:
                raise StoreError("cancelled while waiting for a connection")
            remaining = deadline - time.monotonic()
            try:
                connection = self._pool.getconn(
                    timeout=max(0.01, min(_POOL_SLICE_SECONDS, remaining))
                )
                break
            except PoolTimeout:
                if remaining <= _POOL_SLICE_SECONDS:
                    raise
        try:
            yield connection
        finally:
            self._pool.putconn(connection)

    async def aclose(self) -> None:
        """Run what is already queued, then close the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT_SECONDS):
            while self._flushing:
                await self._flushed.wait()
            while self._pending:
                await self._flush()
            self._flushing = self.write_lanes  # nothing may start a batch on a closing pool
            await trio.to_thread.run_sync(self._pool.close)


def _rollback(connection: Connection) -> None:
    """Roll back; a connection already lost is left to the pool, which discards it."""
    with contextlib.suppress(psycopg.OperationalError):
        connection.rollback()


class _Running:
    """The connection a read runs on, so the cancelled caller can stop its query."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.connection: Connection | None = None
        self.cancelled = False
        self.started = False
        self.done = False
        self.finished = trio.Event()
        self._token = token
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Called by the thread first; False when the caller was cancelled already (then
        the thread must not touch a connection)."""
        with self._lock:
            self.started = not self.cancelled
            return self.started

    def cancel(self) -> bool:
        """Stop the query (in a thread: it talks to the server); True when the caller must
        wait for `finished`, False when the thread has finished or will never start."""
        with self._lock:
            self.cancelled = True
            if self.done or not self.started:
                return False
            connection = self.connection
        if connection is not None:
            # The server stops the query; the thread sees QueryCanceled, rolls back and
            # returns the connection. cancel_safe never raises for a gone server.
            connection.cancel_safe(timeout=CONNECT_TIMEOUT_SECONDS)
        return True

    def finish(self) -> None:
        """Called by the thread as it ends: wakes a cancelled caller waiting for it."""
        with self._lock:
            self.done = True
            waited = self.cancelled
        if waited:
            # Not trio.from_thread: that refuses to run for a cancelled (abandoned) caller.
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self.finished.set)


def _options(schema: str) -> str:
    return (
        f"-c search_path={schema} -c statement_timeout={STATEMENT_TIMEOUT_MILLISECONDS} "
        "-c idle_in_transaction_session_timeout=60000 -c TimeZone=UTC"
    )


async def open_database(
    url: str, *, schema: str, pool_size: int = DEFAULT_POOL_SIZE, wait_seconds: float = 10.0
) -> Database:
    """Open a pool on `url` whose connections use `schema`; fail when no connection can
    be made within `wait_seconds`."""
    pool: ConnectionPool[Connection] = ConnectionPool(
        url,
        min_size=1,
        max_size=pool_size,
        open=False,
        timeout=POOL_WAIT_SECONDS,
        num_workers=1,  # the pool's own connector thread
        kwargs={
            "autocommit": False,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": _options(schema),
            "application_name": "shopimind-sidecar",
        },
        connection_class=psycopg.Connection[DictRow],
        name="shopimind-sidecar",
    )
    db = Database(pool, url=url, schema=schema)

    def start() -> None:
        # One direct connection first: a server that is down or refuses us fails at once,
        # with its own reason, instead of after the pool's retries.
        probe = psycopg.connect(url, connect_timeout=max(1, round(wait_seconds)))
        probe.close()
        pool.open(wait=False)

    try:
        await trio.to_thread.run_sync(start)
    except (psycopg.Error, PoolTimeout) as exc:
        raise StoreError(
            f"PostgreSQL: cannot connect within {wait_seconds:g} s "
            f"({redact_text(_cause(exc), url)})"
        ) from exc
    return db


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
