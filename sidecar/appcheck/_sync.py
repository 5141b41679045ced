"""Checks of the sync routes: `/sources/{entity}` and `/sync/{entity}` (pages, items,
ids, windows, tokens), for every step `integration.toml` declares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from sidecar.appcheck._items import identity_of, shown_identity, updated_at_of
from sidecar.appcheck._pages import Walk, fetch_page, walk_window
from sidecar.appcheck._session import Session
from sidecar.appcheck.report import Check
from sidecar.clock import format_timestamp
from sidecar.config import DEFAULT_BACKFILL_DAYS
from sidecar.declaration import SyncStep
from sidecar.errors import BridgeError
from sidecar.shopimind.item_shapes import ITEM_SHAPES, ItemShape, custom_data_shape, item_problems

__all__ = ["SyncLimits", "check_step"]

_REPLAY_LIMIT: Final = 2
"""Items per page when checking a token replay: small, so that even a few items page."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncLimits:
    """How far app-check walks each window."""

    page_limit: int = 100
    """Items asked per page (or the step's page_limit when smaller)."""
    max_pages: int = 50
    """Pages walked per window before app-check stops looking (not an error)."""
    backfill_days: int = DEFAULT_BACKFILL_DAYS


def _shape(session: Session, step: SyncStep) -> ItemShape | None:
    name = step.custom_data_name
    if name is None:
        return ITEM_SHAPES.get(step.target)
    for spec in session.declaration.provisioning.plan.custom_data:
        if spec.name == name:
            fields = {f.name: (f.type, f.required) for f in spec.fields}
            return custom_data_shape(name, fields=fields, unique_keys=spec.unique_keys)
    return None  # a definition only the app's dynamic plan declares


def _where(walk: Walk, index: int) -> str:
    return f"item {index + 1} (page {walk.item_pages[index]})"


def _outside(walk: Walk, since: datetime, until: datetime) -> list[str]:
    problems: list[str] = []
    for index, item in enumerate(walk.items):
        moment = updated_at_of(item)
        if isinstance(moment, str):
            problems.append(f"{_where(walk, index)}: {moment}")
        elif moment is not None and not since < moment <= until:
            problems.append(
                f"{_where(walk, index)}: `updated_at` {format_timestamp(moment)} is outside the "
                f"window asked, since {format_timestamp(since)} (excluded) until "
                f"{format_timestamp(until)} (included)"
            )
    return problems


class _StepChecker:
    def __init__(
        self, session: Session, step: SyncStep, source_key: str, limits: SyncLimits
    ) -> None:
        self.session = session
        self.step = step
        self.source_key = source_key
        self.limits = limits
        self.shape = _shape(session, step)
        self.label = f"/sync/{step.entity}" + (f" [{source_key}]" if source_key else "")
        self.limit = min(step.page_limit, limits.page_limit)

    async def walk(self, since: datetime, until: datetime) -> Walk:
        return await walk_window(
            self.session,
            self.step.entity,
            source_key=self.source_key,
            since=since,
            until=until,
            limit=self.limit,
            max_pages=self.limits.max_pages,
            step_max_pages=self.step.max_pages,
        )

    async def run(self) -> list[Check]:
        label = self.label
        self.session.progress(f"{label}: walking the backfill window")
        until = datetime.now(UTC)
        since = until - timedelta(days=self.limits.backfill_days)
        walk = await self.walk(since, until)
        if walk.error is not None:
            return [
                Check.failed(f"{label}: pages are well formed", [walk.error], walk.request),
                Check.skipped(f"{label}: items", "no page to check"),
            ]
        note = f"{walk.pages} page{'s' if walk.pages != 1 else ''}, {len(walk.items)} items" + (
            f"; stopped after {walk.pages} pages (--max-pages)" if walk.truncated else ""
        )
        checks = [Check.passed(f"{label}: pages are well formed", note)]
        if walk.endless is not None:
            checks.append(
                Check.failed(f"{label}: the pagination ends", [walk.endless], walk.request)
            )
        else:
            checks.append(Check.passed(f"{label}: the pagination ends"))
        checks.append(self.fields(walk))
        checks.append(self.unique(walk))
        checks.append(await self.window(walk, since, until))
        checks.append(await self.replay(since, until))
        return checks

    async def unsigned(self) -> Check:
        """The last page request again, without its signature: it must be refused."""
        name = f"/sync/{self.step.entity}: an unsigned call is refused with 401"
        session = self.session
        last = session.log.last
        if last is None:
            return Check.skipped(name, "no page was asked")
        shown = session.log.shown(signing="unsigned")
        try:
            response = await session.http.post(
                str(last.url), content=last.content, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return Check.failed(name, [f"no answer ({type(exc).__name__})"], shown)
        if response.status_code == 401:
            return Check.passed(name)
        return Check.failed(
            name,
            [
                f"the app answered {response.status_code} to an unsigned call, the contract "
                "wants 401: every route must check x-sidecar-signature"
            ],
            shown,
        )

    def fields(self, walk: Walk) -> Check:
        shape = self.shape
        name = f"{self.label}: items carry what `{self.step.target}` requires"
        if shape is None:
            return Check.skipped(name, "a definition declared by the app: its fields are unknown")
        problems = [
            f"{_where(walk, index)}: {problem}"
            for index, item in enumerate(walk.items)
            for problem in item_problems(item, shape)
        ]
        if problems:
            return Check.failed(name, problems)
        return Check.passed(name)

    def unique(self, walk: Walk) -> Check:
        shape = self.shape
        name = f"{self.label}: ids are unique in the window"
        if shape is None or not shape.identity:
            return Check.skipped(name, "the target names no identifying fields")
        first: dict[tuple[object, ...], int] = {}
        problems: list[str] = []
        for index, item in enumerate(walk.items):
            identity = identity_of(item, shape)
            if identity is None:
                continue
            if identity in first:
                problems.append(
                    f"{_where(walk, index)} repeats {shown_identity(shape, identity)} of "
                    f"{_where(walk, first[identity])}"
                )
            else:
                first[identity] = index
        if problems:
            return Check.failed(name, problems)
        return Check.passed(name, " + ".join(shape.identity))

    async def window(self, walk: Walk, since: datetime, until: datetime) -> Check:
        name = f"{self.label}: items respect since/until"
        problems = _outside(walk, since, until)
        moments = sorted(
            {
                moment
                for item in walk.items
                if isinstance(moment := updated_at_of(item), datetime) and since < moment <= until
            }
        )
        if not any(isinstance(updated_at_of(item), datetime) for item in walk.items):
            if problems:
                return Check.failed(name, problems)
            return Check.skipped(name, "no item carries an `updated_at`")
        if len(moments) >= 3 and walk.complete:
            # A narrower window inside the data: what it answers must be exactly the items
            # of the full walk updated inside it.
            narrow_since, narrow_until = moments[len(moments) // 3], moments[2 * len(moments) // 3]
            narrow = await self.walk(narrow_since, narrow_until)
            if narrow.error is not None:
                problems.append(f"in a narrower window: {narrow.error}")
                return Check.failed(name, problems, narrow.request)
            problems += [
                f"in a narrower window, {p}" for p in _outside(narrow, narrow_since, narrow_until)
            ]
            problems += self.missing(walk, narrow, narrow_since, narrow_until)
        if problems:
            return Check.failed(name, problems)
        return Check.passed(name)

    def missing(self, walk: Walk, narrow: Walk, since: datetime, until: datetime) -> list[str]:
        shape = self.shape
        if shape is None or not narrow.complete:
            return []
        returned = {identity_of(item, shape) for item in narrow.items}
        problems: list[str] = []
        for index, item in enumerate(walk.items):
            moment = updated_at_of(item)
            identity = identity_of(item, shape)
            inside = isinstance(moment, datetime) and since < moment <= until
            if inside and identity is not None and identity not in returned:
                problems.append(
                    f"{_where(walk, index)} ({shown_identity(shape, identity)}) is updated "
                    f"inside the window {format_timestamp(since)} → "
                    f"{format_timestamp(until)} but was not returned for it"
                )
        return problems

    async def replay(self, since: datetime, until: datetime) -> Check:
        name = f"{self.label}: replaying a `next` token gives the same page"
        session = self.session

        async def page(cursor: str | None) -> tuple[tuple[dict[str, object], ...], str | None]:
            answer = await fetch_page(
                session,
                self.step.entity,
                source_key=self.source_key,
                since=since,
                until=until,
                cursor=cursor,
                limit=_REPLAY_LIMIT,
            )
            return answer.items, answer.next

        try:
            _, token = await page(None)
            if token is None:
                return Check.skipped(name, f"at most {_REPLAY_LIMIT} items: no token to replay")
            first = await page(token)
            second = await page(token)
        except BridgeError as exc:
            return Check.failed(name, [str(exc)], session.log.shown())
        if first != second:
            return Check.failed(
                name,
                [
                    f"the same token answered {len(first[0])} items, then {len(second[0])} "
                    "different ones: a token must name a fixed position (a retry replays it)"
                ],
                session.log.shown(),
            )
        return Check.passed(name)


async def _source_keys(session: Session, step: SyncStep) -> tuple[list[str], Check | None]:
    if step.cursor_scope != "per-source":
        return [""], None
    if step.sources == "data_sources":
        plan = session.declaration.provisioning.plan
        return [source.key for source in plan.data_sources], None
    name = f"/sources/{step.entity} lists valid source keys"
    session.progress(name)
    try:
        keys = await session.bridge.sources(
            step.entity, installation_id=session.installation_id, settings=session.settings
        )
    except BridgeError as exc:
        return [], Check.failed(name, [str(exc)], session.log.shown())
    return list(keys), Check.passed(name, f"{len(keys)} sources")


async def check_step(session: Session, step: SyncStep, limits: SyncLimits) -> list[Check]:
    """Every check of one sync step (for each of its sources)."""
    keys, listing = await _source_keys(session, step)
    checks = [listing] if listing is not None else []
    for index, key in enumerate(keys):
        checker = _StepChecker(session, step, key, limits)
        checks += await checker.run()
        if index == 0:
            checks.append(await checker.unsigned())
    return checks
