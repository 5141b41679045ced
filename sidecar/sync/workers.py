"""Sync workers: they drain the queue, at most SYNC_WORKERS syncs at once.

Capacity is a `trio.CapacityLimiter`, shared with syncs asked for by an operator, whose
statistics feed health and metrics. When the scheduler closes the queue (the sidecar is
stopping), each worker finishes the sync it is running and returns; the runtime gives
them DRAIN_TIMEOUT_SECONDS before cancelling, and a cancelled run is recorded as such.
"""

from __future__ import annotations

from typing import Protocol

import trio

from sidecar.concurrency import describe_error
from sidecar.logs import get_logger
from sidecar.sync.engine import SyncNotPossibleError
from sidecar.sync.leases import LeaseBusyError
from sidecar.sync.scheduler import SyncQueue

__all__ = ["Syncer", "run_workers"]

_log = get_logger("workers")


class Syncer(Protocol):
    """What a worker needs of the engine (`SyncEngine` is one)."""

    async def sync(self, installation_id: str, *, full: bool = False) -> object:
        """Sync one installation."""
        ...


async def _work(
    engine: Syncer, queue: SyncQueue, limiter: trio.CapacityLimiter, stop: trio.Event | None
) -> None:
    async with queue.receive.clone() as jobs:
        async for job in jobs:
            queue.started(job.installation_id)
            if stop is not None and stop.is_set():
                queue.done(job.installation_id)  # stopping: no new work, only what is running
                continue
            log = _log.bind(installation_id=job.installation_id)
            try:
                async with limiter:
                    await engine.sync(job.installation_id, full=job.full)
            except LeaseBusyError as exc:
                log.info("already being synced; skipped", holder=exc.holder)
            except SyncNotPossibleError as exc:
                log.info("not synced", reason=str(exc))
            except Exception as exc:  # noqa: BLE001 - the run row already holds the failure
                log.error("sync failed", error=describe_error(exc))
            finally:
                queue.done(job.installation_id)


async def run_workers(
    *,
    engine: Syncer,
    queue: SyncQueue,
    limiter: trio.CapacityLimiter,
    count: int,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `count` workers until the queue is closed and empty; once `stop` is set, jobs
    still queued are dropped (they are due again at the next start)."""
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(_work, engine, queue, limiter, stop)
        task_status.started()
