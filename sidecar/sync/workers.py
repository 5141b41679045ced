"""Sync workers: they drain the queue, at most SYNC_WORKERS syncs at once.

Capacity is a `trio.CapacityLimiter`, shared with syncs asked for by an operator, whose
statistics feed health and metrics. When the scheduler closes the queue (the sidecar is
stopping), each worker finishes the sync it is running and returns; the runtime gives
them DRAIN_TIMEOUT_SECONDS before cancelling, and a cancelled run is recorded as such.

Several replicas run workers on one database: an installation another replica holds is
skipped quietly (LeaseBusyError), one synced meanwhile by another is not synced again
(`still_due`, asked under the lease), and a run whose lease was taken over ends that
installation's work with a warning — never the worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

import trio

from sidecar.concurrency import describe_error
from sidecar.logs import get_logger
from sidecar.sync.engine import NoLongerDueError, StillDue, SyncNotPossibleError
from sidecar.sync.fencing import lost_lease
from sidecar.sync.leases import LeaseBusyError
from sidecar.sync.scheduler import SyncJob, SyncQueue

__all__ = ["Syncer", "run_workers"]

_log = get_logger("workers")


class Syncer(Protocol):
    """What a worker needs of the engine (`SyncEngine` is one)."""

    async def sync(
        self, installation_id: str, *, full: bool = False, still_due: StillDue | None = None
    ) -> object:
        """Sync one installation (when `still_due` says it still is, once it holds it)."""
        ...


IsDue = Callable[[str], Awaitable[bool]]
"""Whether an installation is still due (`SyncScheduler.still_due`)."""


async def _work(
    engine: Syncer,
    queue: SyncQueue,
    limiter: trio.CapacityLimiter,
    stop: trio.Event | None,
    is_due: IsDue | None,
) -> None:
    async with queue.receive.clone() as jobs:
        async for first in jobs:
            queue.started(first.installation_id)
            if stop is not None and stop.is_set():
                queue.done(first.installation_id)  # stopping: no new work, only what is running
                continue
            async with limiter:
                # One job after another while more are queued and no one else waits for a
                # worker (an operator's sync): a worker is only ever counted free (health,
                # overview, metrics) when there is nothing for it to do.
                job: SyncJob | None = first
                while job is not None:
                    await _sync_one(engine, queue, job, is_due)
                    job = _next_ready(jobs, queue, limiter, stop)


def _next_ready(
    jobs: trio.MemoryReceiveChannel[SyncJob],
    queue: SyncQueue,
    limiter: trio.CapacityLimiter,
    stop: trio.Event | None,
) -> SyncJob | None:
    """The next queued job, when one is waiting and the worker may keep its place."""
    if limiter.statistics().tasks_waiting or (stop is not None and stop.is_set()):
        return None
    try:
        job = jobs.receive_nowait()
    except (trio.WouldBlock, trio.EndOfChannel):
        return None
    queue.started(job.installation_id)
    return job


async def _sync_one(engine: Syncer, queue: SyncQueue, job: SyncJob, is_due: IsDue | None) -> None:
    """Run one job (its worker holds a place of the limiter); every outcome is logged, none
    ends the worker."""
    log = _log.bind(installation_id=job.installation_id)
    # A scheduled job may have been done by another replica since it was read.
    still_due = None
    if is_due is not None and job.due_at is not None:
        still_due = partial(is_due, job.installation_id)
    try:
        await engine.sync(job.installation_id, full=job.full, still_due=still_due)
    except LeaseBusyError as exc:
        log.debug("already being synced (another task or replica); skipped", holder=exc.holder)
    except NoLongerDueError:
        log.debug("synced meanwhile by another replica; skipped")
    except SyncNotPossibleError as exc:
        log.info("not synced", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - the run row already holds the failure
        lost = lost_lease(exc)
        if lost is None:
            log.error("sync failed", error=describe_error(exc))
        else:
            log.warning(
                "lease lost mid-run; this installation's work stopped",
                lease=lost.name,
                epoch=lost.epoch,
            )
    finally:
        queue.done(job.installation_id)


async def run_workers(
    *,
    engine: Syncer,
    queue: SyncQueue,
    limiter: trio.CapacityLimiter,
    count: int,
    stop: trio.Event | None = None,
    still_due: IsDue | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `count` workers until the queue is closed and empty; once `stop` is set, jobs
    still queued are dropped (they are due again at the next start). `still_due` is asked,
    under the installation's lease, before each scheduled job runs."""
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(_work, engine, queue, limiter, stop, still_due)
        task_status.started()
