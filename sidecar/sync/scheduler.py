"""Deciding what to sync and when: a bounded queue and the scheduler that feeds it.

The scheduler never syncs anything itself (DESIGN.md). Every tick — each minute, or at
once when woken by a sync request — it reads which installations are due (`sync.due`)
and lines them up longest overdue first; then it feeds them to the queue one by one,
waiting whenever the queue is full (back-pressure: a job is never dropped for want of
room, it is handed over as soon as a worker frees a place). The queue stays small, so
the order is decided as late as possible, and an installation is queued or running at
most once. What is due but not yet started is the scheduler's lag (`lag()`), shown by
`/metrics` and the admin overview.

Every replica's scheduler sweeps the same database: a due installation goes to whichever
replica's worker wins its lease, and that worker asks `still_due` under the lease, so an
installation another replica just synced is not synced again. At start and at each sweep,
runs left `running` with nobody holding their installation's lease (their replica died)
are closed (`close_abandoned`): by the lease, not by a process id, meaningless across hosts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import trio

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.state_keys import SYNC_REQUEST
from sidecar.store.interface import Store
from sidecar.sync.due import DueInstallation, SyncLag, due_at, sync_lag
from sidecar.sync.leases import installation_lease_name
from sidecar.sync.requests import DurableSyncRequests

__all__ = ["TICK_SECONDS", "SyncJob", "SyncQueue", "SyncScheduler", "WakingSyncRequests"]

TICK_SECONDS: Final = 60.0
_PAGE: Final = 500
ABANDONED_REASON: Final = "interrupted: the process running it stopped"
"""Why a run left `running` with its installation's lease not held is closed."""

_log = get_logger("scheduler")


@dataclass(frozen=True, slots=True)
class SyncJob:
    """One installation to sync."""

    installation_id: str
    full: bool = False
    due_at: datetime | None = None
    """Since when it is due (for the lag); None for a job that is not scheduled."""


class SyncQueue:
    """A bounded queue of sync jobs in which an installation appears at most once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._send, self.receive = trio.open_memory_channel[SyncJob](capacity)
        self._busy: set[str] = set()
        self._queued: dict[str, datetime | None] = {}
        self._moves = 0
        self._moved_at: dict[str, int] = {}

    def offer(self, job: SyncJob) -> bool:
        """Queue `job` unless its installation is already queued or running, or the queue is
        full. True when queued."""
        if job.installation_id in self._busy:
            return False
        try:
            self._send.send_nowait(job)
        except (trio.WouldBlock, trio.ClosedResourceError):
            return False
        self._claim(job)
        return True

    async def put(self, job: SyncJob) -> bool:
        """Queue `job`, waiting while the queue is full; False when its installation is
        already queued or running, or the queue is closed."""
        iid = job.installation_id
        if iid in self._busy:
            return False
        # Claimed before waiting, so nothing else queues it meanwhile; a cancelled send
        # delivers nothing (trio's guarantee), so the claim is simply undone.
        self._claim(job)
        try:
            await self._send.send(job)
        except trio.ClosedResourceError:
            self.done(iid)
            return False
        except BaseException:
            self.done(iid)
            raise
        return True

    def _claim(self, job: SyncJob) -> None:
        self._busy.add(job.installation_id)
        self._queued[job.installation_id] = job.due_at
        self._moved(job.installation_id)

    def _moved(self, installation_id: str) -> None:
        self._moves += 1
        self._moved_at[installation_id] = self._moves

    def mark(self) -> int:
        """A mark that grows whenever a job is queued or done (see `busy_since`)."""
        return self._moves

    def busy_since(self, installation_id: str, mark: int) -> bool:
        """True when the installation is busy, or was queued or done after `mark()` returned
        `mark`: a reading of the store begun at the mark may predate its run."""
        return installation_id in self._busy or self._moved_at.get(installation_id, 0) > mark

    def started(self, installation_id: str) -> None:
        """A worker took the installation's job off the queue."""
        self._queued.pop(installation_id, None)

    def done(self, installation_id: str) -> None:
        """A worker finished with this installation: it may be queued again."""
        if installation_id in self._busy:
            self._busy.discard(installation_id)
            self._moved(installation_id)
        self._queued.pop(installation_id, None)

    def is_busy(self, installation_id: str) -> bool:
        """True while the installation is queued or being synced by this process."""
        return installation_id in self._busy

    def depth(self) -> int:
        """How many jobs wait in the queue for a worker (at most its capacity)."""
        return self._send.statistics().current_buffer_used

    def waiting_since(self) -> list[datetime]:
        """Since when each scheduled job in the queue has been due."""
        return [when for when in self._queued.values() if when is not None]

    def close(self) -> None:
        """No more jobs: workers stop once the queue is empty."""
        self._send.close()


class WakingSyncRequests:
    """Sync requests that are recorded durably, then wake the scheduler to act at once."""

    def __init__(self, durable: DurableSyncRequests, scheduler: SyncScheduler) -> None:
        self._durable = durable
        self._scheduler = scheduler

    async def request(self, installation_id: str, *, full: bool) -> None:
        """Record the request, then wake the scheduler."""
        await self._durable.request(installation_id, full=full)
        self._scheduler.wake()


class SyncScheduler:
    """Feeds due installations to the queue, longest overdue first, as workers free up."""

    def __init__(
        self,
        *,
        store: Store,
        queue: SyncQueue,
        interval_minutes: int,
        clock: Clock = system_clock,
        tick_seconds: float = TICK_SECONDS,
        paused: Callable[[], bool] = lambda: False,
        watch_seconds: float | None = None,
    ) -> None:
        """`paused` is asked before each job is queued: while True, nothing is queued (e.g.
        the vendor app fails its health probe, `AppHealth.paused`, which wakes the scheduler
        when it recovers); what was due stays due and its lag grows.

        `watch_seconds` (a third of the lease TTL): between two ticks, look that often, with
        two small reads, for a backfill or a request nobody holds (its replica died), and
        read what is due at once when there is one, so a takeover waits for the dead
        holder's lease to expire, not for the next tick."""
        self._store = store
        self._paused = paused
        self._queue = queue
        self._interval = timedelta(minutes=interval_minutes) if interval_minutes > 0 else None
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._watch_seconds = watch_seconds
        self._wakeup = trio.Event()
        self._waiting: deque[DueInstallation] = deque()
        self._read = trio.Event()
        self._requested_since: dict[str, datetime] = {}

    def wake(self) -> None:
        """Read what is due now instead of at the next tick."""
        self._wakeup.set()

    def lag(self) -> SyncLag:
        """Installations due and not started yet (queued, or waiting for room)."""
        waiting = [entry.due_at for entry in self._waiting]
        return sync_lag([*waiting, *self._queue.waiting_since()], self._clock())

    async def run(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Feed the queue until `stop` is set, then close it so workers drain and end."""
        await self._close_abandoned()
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when, stop, nursery.cancel_scope)
                # Reading what is due and feeding it are two tasks: the workers are fed
                # from the last reading while the next one is being made.
                nursery.start_soon(self._feed)
                await self._read_every_tick()
        finally:
            self._waiting.clear()
            self._queue.close()

    async def _close_abandoned(self) -> None:
        """Close the runs left `running` whose installation's lease nobody holds."""
        try:
            closed = await self._store.runs.close_abandoned(ABANDONED_REASON)
        except StoreError as exc:
            _log.error("cannot close abandoned runs; will try again", error=str(exc))
            return
        if closed:
            _log.warning("closed runs left open by a process that stopped", runs=closed)

    async def _read_every_tick(self) -> None:
        first = True
        while True:
            # A fresh event before reading, so a wake-up during the read is not lost.
            self._wakeup = trio.Event()
            if not first:
                await self._close_abandoned()
            first = False
            due = await self.due()
            self._waiting = deque(due)
            self._read.set()
            if due:
                _log.info("installations due", count=len(due))
            await self._until_next_read()

    async def _until_next_read(self) -> None:
        """Until the next tick, a wake-up, or (watching) abandoned work to take over."""
        with trio.move_on_after(self._tick_seconds):
            if self._watch_seconds is None:
                await self._wakeup.wait()
                return
            while True:
                with trio.move_on_after(self._watch_seconds):
                    await self._wakeup.wait()
                    return
                if await self._abandoned():
                    return

    async def _abandoned(self) -> bool:
        """Whether a resume point or a sync request waits for an installation that neither
        this process nor anyone holding its lease (by the database's clock) works on."""
        store = self._store
        try:
            waiting = set(await store.state.holders(SYNC_REQUEST))
            waiting |= {point.installation_id for point in await store.cursors.resume_points()}
            waiting = {iid for iid in waiting if not self._queue.is_busy(iid)}
            if not waiting:
                return False
            held = {lease.name for lease in await store.leases.held()}
        except StoreError as exc:
            _log.error("cannot look for abandoned work; will try again", error=str(exc))
            return False
        return any(installation_lease_name(iid) not in held for iid in waiting)

    async def _feed(self) -> None:
        """Hand the waiting installations to the queue in order, each as room frees up."""
        while True:
            if not self._waiting or self._paused():
                if self._waiting:
                    _log.debug("scheduled syncs paused: the app is unhealthy")
                self._read = trio.Event()
                await self._read.wait()
                continue
            entry = self._waiting.popleft()
            await self._queue.put(SyncJob(entry.installation_id, due_at=entry.due_at))

    async def tick(self) -> int:
        """Offer every due installation to the queue now, without waiting for room; return
        how many were queued (the rest stay due)."""
        if self._paused():
            return 0
        queued = 0
        for entry in await self.due():
            job = SyncJob(entry.installation_id, due_at=entry.due_at)
            if self._queue.offer(job):
                queued += 1
        return queued

    async def still_due(self, installation_id: str) -> bool:
        """Whether `installation_id` is due now, read afresh (asked under its lease, before a
        scheduled run: another replica may have synced it since `due` read it)."""
        store = self._store
        installation = await store.installations.get(installation_id)
        if installation is None:
            return False
        now = self._clock()
        requested = await store.state.get_json(installation_id, SYNC_REQUEST) is not None
        saved = [
            point.updated_at or format_timestamp(now)
            for point in await store.cursors.resume_points(installation_id)
        ]
        last = (await store.runs.latest([installation_id])).get(installation_id)
        when = due_at(
            installation,
            last_started_at=None if last is None else last.started_at,
            requested_at=now if requested else None,
            resume_saved_at=min(saved, default=None),
            interval=self._interval,
        )
        return when is not None and when <= now

    async def due(self) -> list[DueInstallation]:
        """The active installations that are due now and not queued or running, longest
        overdue first."""
        store = self._store
        mark = self._queue.mark()
        requested = await store.state.holders(SYNC_REQUEST)
        now = self._clock()
        resuming: dict[str, str] = {}
        for point in await store.cursors.resume_points():
            saved = point.updated_at or format_timestamp(now)
            resuming[point.installation_id] = min(resuming.get(point.installation_id, saved), saved)
        # A request's time is when it was first seen: a restart only makes it younger.
        self._requested_since = {iid: self._requested_since.get(iid, now) for iid in requested}
        due: list[DueInstallation] = []
        offset = 0
        while True:
            batch = await store.installations.list(status="active", limit=_PAGE, offset=offset)
            # Page by page: each read holds the store's connection only briefly.
            latest = await store.runs.latest([each.installation_id for each in batch])
            for installation in batch:
                iid = installation.installation_id
                last = latest.get(iid)
                when = due_at(
                    installation,
                    last_started_at=None if last is None else last.started_at,
                    requested_at=self._requested_since.get(iid),
                    resume_saved_at=resuming.get(iid),
                    interval=self._interval,
                )
                if when is not None and when <= now:
                    due.append(DueInstallation(when, iid))
            if len(batch) < _PAGE:
                break
            offset += _PAGE
        # Filtered once every read is done, with no wait before the caller uses the list: an
        # installation queued meanwhile (from the previous list) is not listed again.
        return sorted(
            entry for entry in due if not self._queue.busy_since(entry.installation_id, mark)
        )


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
