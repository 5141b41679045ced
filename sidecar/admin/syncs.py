"""How an operator's sync runs: in the runtime's nursery (the admin API answers as soon as
it started), or to its end (the CLI). Both are `SyncStarter`s of the admin service."""

from __future__ import annotations

from typing import Protocol

import trio

from sidecar.admin.errors import UnavailableError
from sidecar.concurrency import describe_error
from sidecar.logs import get_logger
from sidecar.sync.cursor_sync import Progress
from sidecar.sync.engine import RunReport
from sidecar.sync.fencing import lost_lease

__all__ = ["BackgroundSyncs", "ForegroundSyncs", "StartableSyncs"]

_log = get_logger("admin")


class StartableSyncs(Protocol):
    """What an operator's sync needs of the engine (`SyncEngine` is one): a run that
    reports itself started, with its report, once it holds the installation."""

    async def sync(
        self,
        installation_id: str,
        *,
        full: bool = False,
        progress: Progress | None = None,
        task_status: trio.TaskStatus[RunReport] = trio.TASK_STATUS_IGNORED,
    ) -> RunReport: ...


class BackgroundSyncs:
    """Runs operator syncs in the runtime's draining nursery, on the workers' capacity.

    An operator's sync takes one of the SYNC_WORKERS slots like a scheduled one; when all
    are busy it is refused (`unavailable`, retry) rather than left waiting behind them.
    Until `attach` and after `close`, nothing starts.
    """

    def __init__(self, engine: StartableSyncs, limiter: trio.CapacityLimiter) -> None:
        self._engine = engine
        self._limiter = limiter
        self._nursery: trio.Nursery | None = None

    def attach(self, nursery: trio.Nursery) -> None:
        """Run syncs in `nursery` from now on (drained and cancelled with it on stop)."""
        self._nursery = nursery

    def close(self) -> None:
        """Start nothing more (the sidecar is stopping)."""
        self._nursery = None

    async def __call__(self, installation_id: str, *, full: bool) -> RunReport:
        """Start the sync; return its report once it runs (status `running`)."""
        if self._nursery is None:
            raise UnavailableError("the sidecar is starting or stopping; try again shortly")
        report: RunReport = await self._nursery.start(self._run, installation_id, full)
        return report

    async def _run(
        self,
        installation_id: str,
        full: bool,
        *,
        task_status: trio.TaskStatus[RunReport] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            self._limiter.acquire_nowait()
        except trio.WouldBlock:
            raise UnavailableError(
                "every sync worker is busy; try again when one is free"
            ) from None
        status = _Watched(task_status)
        try:
            await self._engine.sync(installation_id, full=full, task_status=status)
        except Exception as exc:
            if not status.reported:
                raise  # the caller learns why it could not start (busy, not possible…)
            # It started: its run row holds the failure, and the nursery must go on.
            lost = lost_lease(exc)
            if lost is not None:
                _log.warning(
                    "lease lost mid-run; the operator's sync stopped",
                    installation_id=installation_id,
                    lease=lost.name,
                    epoch=lost.epoch,
                )
            else:
                _log.error(
                    "operator sync failed",
                    installation_id=installation_id,
                    error=describe_error(exc),
                )
        finally:
            self._limiter.release()


class _Watched:
    """Passes the run's report on to the caller, and remembers that it did."""

    def __init__(self, status: trio.TaskStatus[RunReport]) -> None:
        self._status = status
        self.reported = False

    def started(self, value: RunReport | None = None) -> None:
        if value is None:
            raise TypeError("a sync run reports itself started with its report")
        self.reported = True
        self._status.started(value)


class ForegroundSyncs:
    """Runs an operator's sync to its end (the CLI), with an optional progress callback."""

    def __init__(self, engine: StartableSyncs, progress: Progress | None = None) -> None:
        self._engine = engine
        self._progress = progress

    async def __call__(self, installation_id: str, *, full: bool) -> RunReport:
        """Sync now and return the closed run's report."""
        return await self._engine.sync(installation_id, full=full, progress=self._progress)
