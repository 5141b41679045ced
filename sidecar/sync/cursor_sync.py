"""Syncing one cursor: one window of one step (and source), page by page.

    fetch page 1 ─▶ push page 1 ─▶ save resume point ─▶ … ─▶ last page pushed ─▶ move cursor
         └ fetch page 2 while page 1 is pushed (memory: two pages at most)

Progress is recorded only after a page was pushed and acknowledged, each record one
transaction run through `commit` (shielded, with a deadline). Wherever a cancellation
lands, the cursor is either where it was or at the end of a window whose every page was
pushed; the resume point never names a page that was not acknowledged.

Every record carries the run's fence (the installation's lease at its epoch): once another
replica took the installation over, the next record raises `LeaseLostError`, writes
nothing, and the cursor stops there — raised alone, not wrapped in an exception group.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

import trio

from sidecar.bridge import AppBridge, SyncPage
from sidecar.clock import Clock, format_timestamp
from sidecar.concurrency import commit
from sidecar.declaration.model import SyncStep
from sidecar.errors import BridgeError
from sidecar.logs import BoundLogger
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.outbound import scheduled_retry_after
from sidecar.store.interface import Store
from sidecar.store.records import Fence, RejectedItemInput, ResumePoint, RunKind
from sidecar.sync.cursor_rules import (
    ESCALATE_AFTER_FAILURES,
    WindowOutcome,
    decide,
    should_skip,
)
from sidecar.sync.fencing import lost_lease
from sidecar.sync.targets import PushTarget
from sidecar.sync.windows import Window, resumed_window, window_for

__all__ = ["DEAD_LETTER_PER_RUN", "CursorReport", "DeadLetterBudget", "RunScope", "sync_cursor"]

DEAD_LETTER_PER_RUN: Final = 500
_MAX_ERROR_LENGTH: Final = 2000

Progress = Callable[["CursorReport"], Awaitable[None] | None]


@dataclass(slots=True)
class DeadLetterBudget:
    """At most DEAD_LETTER_PER_RUN rejected items of a run are kept (PROTOCOL §8)."""

    remaining: int = DEAD_LETTER_PER_RUN

    def take(self, items: tuple[RejectedItemInput, ...]) -> tuple[RejectedItemInput, ...]:
        """The share of `items` still within the budget."""
        kept = items[: max(0, self.remaining)]
        self.remaining -= len(kept)
        return kept


@dataclass(frozen=True, slots=True, kw_only=True)
class RunScope:
    """What every cursor of one run shares."""

    store: Store
    bridge: AppBridge
    installation_id: str
    run_id: int
    kind: RunKind
    settings: Mapping[str, object]
    fence: Fence
    """The installation's lease as the run holds it: every record of the run checks it."""
    clock: Clock
    backfill_days: int
    overlap_seconds: int
    log: BoundLogger
    dead_letter: DeadLetterBudget = field(default_factory=DeadLetterBudget)
    progress: Progress | None = None
    metrics: Metrics = NO_METRICS


@dataclass(slots=True, kw_only=True)
class CursorReport:
    """What happened to one cursor in a run (its summary goes into the run row)."""

    entity: str
    source_key: str
    window: str = ""
    resumed: bool = False
    skipped: bool = False
    pages: int = 0
    items: int = 0
    sent: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    advanced: bool = False
    errors: list[str] = field(default_factory=list)
    retry_after_seconds: float | None = None
    """The `Retry-After` of the push (ShopiMind) or the page (the app) that failed: the
    cursor waits that long."""

    def summary(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "entity": self.entity,
            "source_key": self.source_key,
            "window": self.window,
            "resumed": self.resumed,
            "skipped": self.skipped,
            "pages": self.pages,
            "items": self.items,
            "sent": self.sent,
            "rejected": self.rejected,
            "dead_lettered": self.dead_lettered,
            "advanced": self.advanced,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class _FetchFailed:
    message: str
    refused_token: bool
    """The app refused the page token we resumed with (4xx on the first page)."""
    retry_after_seconds: float | None = None
    """The app's `Retry-After` (e.g. with a 429 or a 503)."""


async def _send(
    channel: trio.MemorySendChannel[SyncPage | _FetchFailed], value: SyncPage | _FetchFailed
) -> bool:
    """Hand a page to the pusher; False when the pusher has stopped listening."""
    try:
        await channel.send(value)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True


async def _fetch_pages(
    scope: RunScope,
    step: SyncStep,
    source_key: str,
    window: Window,
    token: str | None,
    pages_before: int,
    send: trio.MemorySendChannel[SyncPage | _FetchFailed],
) -> None:
    """Fetch pages ahead of the pusher; failures travel down the channel as values."""
    async with send:
        fetched = pages_before
        resumed_token = token
        while True:
            if fetched >= step.max_pages:
                await _send(
                    send,
                    _FetchFailed(
                        f"{step.entity}: more than max_pages ({step.max_pages}) pages: the app "
                        "keeps answering with a next token",
                        refused_token=False,
                    ),
                )
                return
            try:
                page = await scope.bridge.sync_page(
                    step.entity,
                    installation_id=scope.installation_id,
                    settings=scope.settings,
                    source_key=source_key,
                    since=window.since,
                    until=window.until,
                    cursor=token,
                    limit=step.page_limit,
                )
            except BridgeError as exc:
                refused = (
                    token is not None
                    and token == resumed_token
                    and exc.status is not None
                    and 400 <= exc.status < 500
                )
                await _send(
                    send,
                    _FetchFailed(
                        str(exc),
                        refused_token=refused,
                        retry_after_seconds=exc.retry_after_seconds,
                    ),
                )
                return
            fetched += 1
            if not await _send(send, page) or page.next is None:
                return
            token = page.next


async def sync_cursor(
    scope: RunScope, step: SyncStep, source_key: str, target: PushTarget
) -> CursorReport:
    """Sync one window of `step` for `source_key`, applying the golden rule at its end."""
    store = scope.store
    iid = scope.installation_id
    report = CursorReport(entity=step.entity, source_key=source_key)
    log = scope.log.bind(entity=step.entity, source_key=source_key)
    full = scope.kind == "full"
    cursor = await store.cursors.get(iid, step.entity, source_key)
    now = scope.clock()
    if should_skip(cursor, full=full, now=now):
        report.skipped = True
        log.info("cursor in backoff after failures; skipped this run")
        return report
    point = await store.cursors.resume_point(iid, step.entity, source_key)
    if point is not None:
        window = resumed_window(point)
        token = point.next_token
        report.resumed = token is not None
        report.pages, report.items = point.pages, point.items
        report.sent, report.rejected = point.sent, point.rejected
        kind = point.run_kind
    else:
        window = window_for(
            cursor,
            full=full,
            now=now,
            backfill_days=scope.backfill_days,
            overlap_seconds=scope.overlap_seconds,
        )
        token = None
        kind = scope.kind
    report.window = window.describe()
    complete = False
    refused_token = False
    send, receive = trio.open_memory_channel[SyncPage | _FetchFailed](0)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                _fetch_pages, scope, step, source_key, window, token, report.pages, send
            )
            try:
                async for fetched in receive:
                    if isinstance(fetched, _FetchFailed):
                        report.errors.append(fetched.message)
                        refused_token = fetched.refused_token
                        report.retry_after_seconds = fetched.retry_after_seconds
                        break
                    page_key = f"{iid}|{scope.run_id}|{step.entity}|{source_key}|{report.pages}"
                    pushing = trio.current_time()
                    result = await target.push(fetched.items, key=page_key)
                    scope.metrics.push(
                        entity=step.entity,
                        sent=result.sent,
                        rejected=result.rejected,
                        seconds=trio.current_time() - pushing,
                    )
                    report.sent += result.sent
                    report.rejected += result.rejected
                    kept = scope.dead_letter.take(result.rejected_items)
                    if kept:
                        await store.dead_letter.add(
                            iid,
                            run_id=scope.run_id,
                            entity=step.entity,
                            source_key=source_key,
                            target=target.describe(),
                            items=kept,
                            fence=scope.fence,
                        )
                        report.dead_lettered += len(kept)
                    if result.rejected:
                        log.warning("ShopiMind rejected items", rejected=result.rejected)
                    if result.transport_failed:
                        report.errors.extend(result.errors or ("a push failed in transport",))
                        report.retry_after_seconds = result.retry_after_seconds
                        break
                    report.pages += 1
                    report.items += len(fetched.items)
                    if scope.progress is not None:
                        notified = scope.progress(report)
                        if notified is not None:
                            await notified
                    if fetched.next is None:
                        complete = True
                        break
                    progress = ResumePoint(
                        installation_id=iid,
                        entity=step.entity,
                        source_key=source_key,
                        run_kind=kind,
                        window_since=format_timestamp(window.since),
                        window_until=format_timestamp(window.until),
                        next_token=fetched.next,
                        pages=report.pages,
                        items=report.items,
                        sent=report.sent,
                        rejected=report.rejected,
                    )
                    await commit(
                        functools.partial(
                            store.cursors.save_resume_point, progress, fence=scope.fence
                        ),
                        what="resume point",
                        log=log,
                    )
            finally:
                # Stop fetching ahead before closing the channel, so the fetcher ends
                # cancelled rather than with a broken channel.
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # A fenced record refused (the lease was taken over): end with that error alone.
        lost = lost_lease(group)
        if lost is None:
            raise
        raise lost from None
    receive.close()
    await _settle(scope, step, source_key, window, report, complete, refused_token, log)
    return report


async def _settle(
    scope: RunScope,
    step: SyncStep,
    source_key: str,
    window: Window,
    report: CursorReport,
    complete: bool,
    refused_token: bool,
    log: BoundLogger,
) -> None:
    """Move the cursor or hold it, as the golden rule decides, in one shielded commit."""
    cursors = scope.store.cursors
    iid = scope.installation_id
    decision = decide(
        WindowOutcome(
            complete=complete,
            sent=report.sent,
            rejected=report.rejected,
            errors=tuple(report.errors),
        ),
        step.tolerate_rejects,
    )
    if decision.advance:
        until = format_timestamp(window.until)
        await commit(
            lambda: cursors.record_success(
                iid,
                step.entity,
                source_key,
                synced_at=until,
                items=report.items,
                fence=scope.fence,
            ),
            what="cursor",
            log=log,
        )
        report.advanced = True
        log.info("window synced", items=report.items, pages=report.pages, until=until)
        return
    report.errors = list(decision.errors)
    wait = scheduled_retry_after(report.retry_after_seconds)
    retry_at = None if wait is None else format_timestamp(scope.clock() + timedelta(seconds=wait))
    failures = await commit(
        lambda: cursors.record_failure(
            iid,
            step.entity,
            source_key,
            error="; ".join(decision.errors)[:_MAX_ERROR_LENGTH],
            items=report.items,
            keep_resume_point=not (decision.replay_window or refused_token),
            retry_at=retry_at,
            fence=scope.fence,
        ),
        what="cursor failure",
        log=log,
    )
    if failures is not None and failures >= ESCALATE_AFTER_FAILURES:
        log.error(
            "cursor keeps failing; data for it is not reaching ShopiMind",
            consecutive_failures=failures,
            errors=report.errors,
        )
    else:
        log.warning(
            "window not synced; cursor held",
            consecutive_failures=failures,
            errors=report.errors,
            retry_at=retry_at,
        )
