"""One sync of one installation: every enabled step, every source, under the installation's
lease, recorded as one run row that is always closed (unless the lease was lost: then the
next holder closes it).

Several replicas share one database: the run holds `installation:{id}` (renewed in the
background by `hold_lease`) and passes its fence to every write about its work — run row,
resume points, cursors, dead-letter, state — so a holder that stalled past its lease and
was taken over writes nothing more (`LeaseLostError`). Right after taking the lease, the
installation's runs still `running` are closed: whoever ran them died or stalled.

A full run (the backfill after an activation, or one asked for) first writes its plan: a
resume point with the full window for every cursor. Only then is the request consumed, so
a crash anywhere leaves either the request or the plan, and the work resumes where it
stopped instead of starting over or being forgotten.

The run row says what happened, honestly: the run that continues a backfill cut short by a
crash is recorded `full` and `resumed` (its cursors still go by their resume points), and a
run whose every cursor waited out its backoff is `skipped`, not `ok` with nothing done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import trio

from sidecar.bridge import AppBridge
from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.concurrency import commit, describe_error, is_cancellation
from sidecar.declaration.model import Declaration, SyncStep
from sidecar.errors import SidecarError
from sidecar.lifecycle.merchant_config import load_settings
from sidecar.lifecycle.provisioning import NoAccessTokenError, provision_installation
from sidecar.logs import BoundLogger, get_logger
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.shopimind.client import ShopimindClient
from sidecar.shopimind.resources import DEFAULT_PUSH_CONCURRENCY
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS, PROVISIONING_REQUEST, SYNC_REQUEST
from sidecar.store.interface import Store
from sidecar.store.records import Fence, ResumePoint, RunKind
from sidecar.sync.cursor_sync import Progress, RunScope, sync_cursor
from sidecar.sync.fencing import lost_lease
from sidecar.sync.leases import LEASE_TTL_SECONDS, LeaseHandle, hold_lease, installation_lease_name
from sidecar.sync.run_report import RunReport
from sidecar.sync.targets import (
    ProvisionedIds,
    StepSetupError,
    item_rules,
    push_target,
    step_sources,
)

__all__ = [
    "NoLongerDueError",
    "RunReport",
    "StillDue",
    "SyncDeps",
    "SyncEngine",
    "SyncNotPossibleError",
]

_log = get_logger("sync")


class SyncNotPossibleError(SidecarError):
    """The installation cannot be synced now (unknown, not active, no access token)."""


class NoLongerDueError(SidecarError):
    """A scheduled run found, once it held the lease, that the installation is not due any
    more: another replica synced it since the scheduler looked. Nothing was recorded."""


StillDue = Callable[[], Awaitable[bool]]
"""Asked under the lease before a scheduled run starts: is the installation still due?"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDeps:
    """What the engine works with."""

    store: Store
    declaration: Declaration
    bridge: AppBridge
    shopimind: ShopimindClient
    owner: str
    backfill_days: int = 365
    overlap_seconds: int = 0
    clock: Clock = system_clock
    metrics: Metrics = NO_METRICS
    push_concurrency: int = DEFAULT_PUSH_CONCURRENCY
    """Chunks of a page pushed at once, per run (PUSH_CONCURRENCY)."""
    lease_ttl_seconds: float = LEASE_TTL_SECONDS
    """How long the installation's lease lasts unless renewed (LEASE_TTL_SECONDS)."""


async def _continues_a_backfill(store: Store, installation_id: str) -> bool:
    """Whether a full window of the installation is still in progress (a crash cut it)."""
    points = await store.cursors.resume_points(installation_id)
    return any(point.run_kind == "full" for point in points)


def _enabled(step: SyncStep, settings: Mapping[str, object]) -> bool:
    return step.enabled_when is None or bool(settings.get(step.enabled_when))


class SyncEngine:
    """Runs syncs; safe to share between tasks (each run holds its installation's lease)."""

    def __init__(self, deps: SyncDeps) -> None:
        self._deps = deps

    async def sync(
        self,
        installation_id: str,
        *,
        full: bool = False,
        progress: Progress | None = None,
        still_due: StillDue | None = None,
        task_status: trio.TaskStatus[RunReport] = trio.TASK_STATUS_IGNORED,
    ) -> RunReport:
        """Sync `installation_id` once (a full backfill when `full` or when one is pending).

        Raises SyncNotPossibleError, or LeaseBusyError when it is already being synced, or
        LeaseLostError when the lease was lost mid-run (the run stopped; what it wrote
        after the takeover was refused). `still_due` (a scheduled run): asked once the
        lease is held; when False, NoLongerDueError and no run row. With `nursery.start`,
        the run is reported started (its report still `running`) once it holds the lease
        and its run row exists: the caller learns at once whether it could start, and the
        run goes on in the nursery.
        """
        deps = self._deps
        store = deps.store
        installation = await store.installations.get(installation_id)
        if installation is None:
            raise SyncNotPossibleError(f"no installation {installation_id!r}")
        if installation.status != "active":
            raise SyncNotPossibleError(
                f"installation {installation_id!r} is {installation.status}, not active"
            )
        token = await store.state.get(installation_id, ACCESS_TOKEN)
        if not token:
            raise SyncNotPossibleError(f"installation {installation_id!r} has no access token")
        async with hold_lease(
            store.leases,
            installation_lease_name(installation_id),
            deps.owner,
            ttl_seconds=deps.lease_ttl_seconds,
            metrics=deps.metrics,
        ) as lease:
            try:
                report = await self._sync_held(
                    installation_id, lease, token, full, progress, still_due, task_status
                )
            except BaseException as error:
                # Inside the hold, a LeaseLostError comes from a fenced write (the lease was
                # taken over): it wrote nothing. Raised alone, not in an exception group.
                lost = lost_lease(error)
                if lost is None:
                    raise
                deps.metrics.lease_fenced_write()
                raise lost from None
        return report

    async def _sync_held(
        self,
        installation_id: str,
        lease: LeaseHandle,
        token: str,
        full: bool,
        progress: Progress | None,
        still_due: StillDue | None,
        task_status: trio.TaskStatus[RunReport],
    ) -> RunReport:
        """The run, once the installation's lease is held."""
        deps = self._deps
        store = deps.store
        fence = lease.fence
        await self._close_left_running(installation_id, lease)
        if still_due is not None and not await still_due():
            raise NoLongerDueError(
                f"installation {installation_id!r} was synced meanwhile; no longer due"
            )
        pending = await store.state.get_json(installation_id, SYNC_REQUEST)
        full = full or (isinstance(pending, dict) and pending.get("full") is True)
        kind: RunKind = "full" if full else "incremental"
        resumed = not full and await _continues_a_backfill(store, installation_id)
        run_id = await store.runs.start(
            installation_id, "full" if resumed else kind, owner=deps.owner, fence=fence
        )
        report = RunReport(
            run_id=run_id,
            installation_id=installation_id,
            kind="full" if resumed else kind,
            resumed=resumed,
        )
        log = _log.bind(installation_id=installation_id, run_id=run_id)
        log.info("sync started", kind=report.kind, resumed=resumed, epoch=fence.epoch)
        started = trio.current_time()
        try:
            task_status.started(report)
            scope = RunScope(
                store=store,
                bridge=deps.bridge,
                installation_id=installation_id,
                run_id=run_id,
                kind=kind,
                settings=await load_settings(store.state, installation_id),
                fence=fence,
                clock=deps.clock,
                backfill_days=deps.backfill_days,
                overlap_seconds=deps.overlap_seconds,
                log=log,
                progress=progress,
                metrics=deps.metrics,
            )
            await self._run_steps(scope, report, token, pending is not None)
            report.status = report.closing_status()
        except BaseException as error:
            if lost_lease(error) is not None:
                report.status = "interrupted"  # not recorded: the next holder closes it
            elif is_cancellation(error):
                report.status = "cancelled"
            else:
                report.status = "failed"
                report.errors.append(f"run failed: {describe_error(error)}")
                log.error("sync failed", error=describe_error(error))
            raise
        finally:
            await self._close(report, fence, log, seconds=trio.current_time() - started)
        return report

    async def _close_left_running(self, installation_id: str, lease: LeaseHandle) -> None:
        """Close the installation's runs still `running`: their holder died or stalled (we
        hold its lease now), so they will never be closed otherwise."""
        if lease.taken_from is None:
            reason = "interrupted: the process running it stopped"
        else:
            reason = (
                "interrupted: the process running it stopped (its lease was taken over from "
                f"{lease.taken_from})"
            )
        closed = await self._deps.store.runs.close_running(
            installation_id, reason, fence=lease.fence
        )
        if closed:
            _log.warning(
                "closed runs left running by an earlier holder",
                installation_id=installation_id,
                runs=closed,
                taken_from=lease.taken_from,
            )

    async def _close(
        self, report: RunReport, fence: Fence, log: BoundLogger, *, seconds: float
    ) -> None:
        """Close the run row (shielded); a lost lease leaves it to the next holder."""
        deps = self._deps
        try:
            if report.status != "interrupted":
                await commit(
                    lambda: deps.store.runs.finish(
                        report.run_id, report.status, report.summary(), fence=fence
                    ),
                    what="run close",
                    log=log,
                )
        finally:
            deps.metrics.sync_run(kind=report.kind, status=report.status, seconds=seconds)
            log.info(
                "sync finished",
                status=report.status,
                items=report.items,
                errors=len(report.errors),
            )

    async def _provision_if_asked(self, scope: RunScope, report: RunReport) -> None:
        """Run provisioning a lifecycle event asked for while the installation was syncing."""
        deps = self._deps
        iid = scope.installation_id
        if await deps.store.state.take(iid, PROVISIONING_REQUEST, fence=scope.fence) is None:
            return
        try:
            outcome = await provision_installation(
                store=deps.store,
                declaration=deps.declaration,
                bridge=deps.bridge,
                shopimind=deps.shopimind,
                installation_id=iid,
                settings=scope.settings,
                fence=scope.fence,
            )
        except NoAccessTokenError:
            return
        report.provisioning_errors.extend(outcome.errors)
        scope.log.info("provisioned before syncing", errors=len(outcome.errors))

    async def _run_steps(
        self, scope: RunScope, report: RunReport, token: str, request_pending: bool
    ) -> None:
        deps = self._deps
        iid = scope.installation_id
        await self._provision_if_asked(scope, report)
        ids = ProvisionedIds.from_state(await deps.store.state.get_json(iid, PROVISIONING_IDS))
        api = deps.shopimind.api(token, installation_id=iid)
        plan: list[tuple[SyncStep, tuple[str, ...]]] = []
        for step in deps.declaration.sync:
            if not _enabled(step, scope.settings):
                continue
            try:
                plan.append(
                    (
                        step,
                        await step_sources(
                            step,
                            bridge=deps.bridge,
                            installation_id=iid,
                            settings=scope.settings,
                            ids=ids,
                        ),
                    )
                )
            except StepSetupError as exc:
                report.errors.append(str(exc))
                scope.log.warning("sync step cannot run", entity=step.entity, error=str(exc))
        if scope.kind == "full":
            await self._write_full_plan(scope, plan)
        if request_pending:
            await deps.store.state.take(iid, SYNC_REQUEST, fence=scope.fence)
        for step, sources in plan:
            for source_key in sources:
                try:
                    target = push_target(
                        step,
                        source_key,
                        ids,
                        api,
                        rules=item_rules(deps.declaration, step),
                        concurrency=deps.push_concurrency,
                    )
                except StepSetupError as exc:
                    report.errors.append(f"{step.entity}: {exc}")
                    await deps.store.cursors.record_failure(
                        iid, step.entity, source_key, error=str(exc), items=0, fence=scope.fence
                    )
                    continue
                cursor_report = await sync_cursor(scope, step, source_key, target)
                report.cursors.append(cursor_report)
                report.errors.extend(f"{step.entity}: {error}" for error in cursor_report.errors)

    async def _write_full_plan(
        self, scope: RunScope, plan: list[tuple[SyncStep, tuple[str, ...]]]
    ) -> None:
        """Give every cursor of a full run a resume point holding the full window.

        A window already in progress from an earlier full run is kept (it is continued);
        one from an incremental run is replaced, as the full window contains it.
        """
        cursors = self._deps.store.cursors
        now = scope.clock()
        since = format_timestamp(now - timedelta(days=scope.backfill_days))
        until = format_timestamp(now)
        for step, sources in plan:
            for source_key in sources:
                existing = await cursors.resume_point(
                    scope.installation_id, step.entity, source_key
                )
                if existing is not None and existing.run_kind == "full":
                    continue
                await cursors.save_resume_point(
                    ResumePoint(
                        installation_id=scope.installation_id,
                        entity=step.entity,
                        source_key=source_key,
                        run_kind="full",
                        window_since=since,
                        window_until=until,
                        next_token=None,
                    ),
                    fence=scope.fence,
                )
