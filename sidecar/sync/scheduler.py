"""Deciding what to sync and when: a bounded queue and the scheduler that fills it.

The scheduler never syncs anything itself (DESIGN.md): on each tick — every minute, or at
once when woken by a sync request — it offers the installations that are due to the
queue, which workers drain. Due means: a sync was requested (e.g. the backfill after an
activation), a window was interrupted and waits to be resumed, or the last run started
more than SYNC_INTERVAL_MINUTES ago. An installation is queued or running at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import trio

from sidecar.clock import Clock, parse_timestamp, system_clock
from sidecar.logs import get_logger
from sidecar.state_keys import SYNC_REQUEST
from sidecar.store.interface import Store
from sidecar.sync.leases import owner_is_alive
from sidecar.sync.requests import DurableSyncRequests

__all__ = ["TICK_SECONDS", "SyncJob", "SyncQueue", "SyncScheduler", "WakingSyncRequests"]

TICK_SECONDS: Final = 60.0
_PAGE: Final = 500

_log = get_logger("scheduler")


@dataclass(frozen=True, slots=True)
class SyncJob:
    """One installation to sync."""

    installation_id: str
    full: bool = False


class SyncQueue:
    """A bounded queue of sync jobs in which an installation appears at most once."""

    def __init__(self, capacity: int) -> None:
        self._send, self.receive = trio.open_memory_channel[SyncJob](capacity)
        self._busy: set[str] = set()

    def offer(self, job: SyncJob) -> bool:
        """Queue `job` unless its installation is already queued or running, or the queue is
        full (it will be offered again at the next tick). True when queued."""
        if job.installation_id in self._busy:
            return False
        try:
            self._send.send_nowait(job)
        except (trio.WouldBlock, trio.ClosedResourceError):
            return False
        self._busy.add(job.installation_id)
        return True

    def done(self, installation_id: str) -> None:
        """A worker finished with this installation: it may be queued again."""
        self._busy.discard(installation_id)

    def is_busy(self, installation_id: str) -> bool:
        """True while the installation is queued or being synced by this process."""
        return installation_id in self._busy

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
    """Offers due installations to the queue, every tick and whenever woken."""

    def __init__(
        self,
        *,
        store: Store,
        queue: SyncQueue,
        interval_minutes: int,
        clock: Clock = system_clock,
        tick_seconds: float = TICK_SECONDS,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        """`paused` is asked at each tick: while True, nothing is queued (e.g. the vendor
        app fails its health probe, `AppHealth.paused`); what was due stays due."""
        self._store = store
        self._paused = paused
        self._queue = queue
        self._interval = timedelta(minutes=interval_minutes) if interval_minutes > 0 else None
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._wakeup = trio.Event()

    def wake(self) -> None:
        """Run a tick now instead of at the next minute."""
        self._wakeup.set()

    async def run(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Tick until `stop` is set, then close the queue so workers drain and end."""
        closed = await self._store.runs.close_orphans(
            owner_is_alive, "interrupted: the process running it stopped"
        )
        if closed:
            _log.warning("closed runs left open by a process that died", runs=closed)
        task_status.started()
        try:
            while not stop.is_set():
                await self.tick()
                with trio.move_on_after(self._tick_seconds):
                    async with trio.open_nursery() as waiting:
                        waiting.start_soon(_set_when, stop, waiting.cancel_scope)
                        await self._wakeup.wait()
                        waiting.cancel_scope.cancel()
                self._wakeup = trio.Event()
        finally:
            self._queue.close()

    async def tick(self) -> int:
        """Offer every due installation to the queue; return how many were queued."""
        if self._paused():
            _log.debug("scheduled syncs paused: the app is unhealthy")
            return 0
        store = self._store
        requested = set(await store.state.holders(SYNC_REQUEST))
        resuming = {point.installation_id for point in await store.cursors.resume_points()}
        latest = await store.runs.latest()
        now = self._clock()
        queued = 0
        offset = 0
        while True:
            batch = await store.installations.list(status="active", limit=_PAGE, offset=offset)
            for installation in batch:
                iid = installation.installation_id
                last = latest.get(iid)
                due = (
                    iid in requested
                    or iid in resuming
                    or (
                        self._interval is not None
                        and (
                            last is None or parse_timestamp(last.started_at) + self._interval <= now
                        )
                    )
                )
                if due and self._queue.offer(SyncJob(iid)):
                    queued += 1
            if len(batch) < _PAGE:
                break
            offset += _PAGE
        if queued:
            _log.info("sync jobs queued", count=queued)
        return queued


async def _set_when(stop: trio.Event, scope: trio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
