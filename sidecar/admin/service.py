"""What an operator can read and do, in one place: the admin API's routes and the
`shopimind-sidecar admin` commands both call this, and only format its answers.

Reads return JSON-ready objects (payloads masked, secrets never). Actions are audited,
whatever their outcome: who (actor, client IP), what, on which installation and target,
and counts — never a secret nor a customer's data. An action that would touch an
installation another task holds (a sync run, a provisioning) is refused `busy`: the
same lease that keeps two syncs apart keeps an operator's action apart from both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol

from sidecar.admin.errors import (
    AdminError,
    BusyError,
    InvalidRequestError,
    NotFoundError,
    NotPossibleError,
    UnknownInstallationError,
)
from sidecar.admin.paging import Page
from sidecar.admin.replay import MAX_REPLAY_ITEMS, replay_items
from sidecar.admin.views import (
    audit_view,
    cursor_view,
    dead_letter_view,
    inbound_view,
    outbox_view,
    overview_view,
    resume_point_view,
    run_view,
    state_key_view,
    webhook_view,
)
from sidecar.bridge import AppBridge
from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.declaration.model import Declaration
from sidecar.lifecycle.merchant_config import load_settings
from sidecar.lifecycle.provisioning import NoAccessTokenError, provision_installation
from sidecar.logs import get_logger
from sidecar.overview import InstallationOverview, installation_overviews
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store.interface import Store
from sidecar.store.records import Installation, OutboxStatus
from sidecar.sync.engine import RunReport, SyncNotPossibleError
from sidecar.sync.leases import (
    LeaseBusyError,
    hold_lease,
    installation_lease_name,
    owner_is_alive,
)

__all__ = ["REVEAL_KINDS", "AdminDeps", "AdminService", "Caller", "SyncStarter"]

JsonObject = dict[str, object]

REVEAL_KINDS: Final = ("webhook", "outbox", "dead_letter")
"""What holds a payload an operator may reveal: a logged webhook, an outbox event, a
dead-lettered item."""

_OUTBOX_STATUSES: Final = ("queued", "delivered", "failed", "dead")
_MAX_IDS: Final = 1000
_MAX_ID: Final = 2**63 - 1

_log = get_logger("admin")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: `actor` (`admin-api`, `cli:<user>`) and where from (the API's client IP)."""

    actor: str
    client_ip: str | None = None


class SyncStarter(Protocol):
    """Starts a sync of an installation: the runtime runs it in its nursery and answers
    once it started; the CLI runs it to the end. Raises LeaseBusyError when it syncs
    already, SyncNotPossibleError when it cannot, an AdminError when there is no room."""

    async def __call__(self, installation_id: str, *, full: bool) -> RunReport: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminDeps:
    """What the admin service works with."""

    store: Store
    declaration: Declaration
    manifest: Mapping[str, object]
    bridge: AppBridge
    shopimind: ShopimindClient
    owner: str
    """This process's lease owner id."""
    start_sync: SyncStarter
    clock: Clock = system_clock
    runtime_status: Callable[[], Mapping[str, object]] = field(default=dict)
    """What only the running process knows (workers in use, the app's health), for the
    overview; nothing for the CLI."""


def _ids(value: object) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InvalidRequestError("ids must be a non-empty list of item ids")
    if len(value) > _MAX_IDS:
        raise InvalidRequestError(f"ids may name at most {_MAX_IDS} items at once")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in value):
        raise InvalidRequestError("ids must be positive integers")
    if any(i > _MAX_ID for i in value):
        raise InvalidRequestError("ids must be item ids (at most 2**63 - 1)")
    return list(dict.fromkeys(value))


class AdminService:
    """The admin API's and the admin CLI's operations."""

    def __init__(self, deps: AdminDeps) -> None:
        self._deps = deps
        self._store = deps.store

    # --- reads ----------------------------------------------------------------------------

    async def _installation(self, installation_id: str) -> Installation:
        if not installation_id or len(installation_id) > 200:
            raise UnknownInstallationError(f"no installation {installation_id[:200]!r}")
        found = await self._store.installations.get(installation_id)
        if found is None:
            raise UnknownInstallationError(f"no installation {installation_id!r}")
        return found

    async def overview(self) -> JsonObject:
        """Counts that tell at a glance whether all is well."""
        store = self._store
        by_status = {
            status: await store.installations.count(status=status)
            for status in ("active", "inactive", "uninstalled")
        }
        last_runs: dict[str, int] = {}
        for run in (await store.runs.latest()).values():
            last_runs[run.status] = last_runs.get(run.status, 0) + 1
        return {
            "integration": self._deps.declaration.slug,
            "installations": by_status,
            "last_runs": last_runs,
            "cursors_in_error": await store.cursors.count_in_error(),
            "outbox": dict(await store.outbox.counts()),
            "outbox_oldest_pending_at": await store.outbox.oldest_pending_at(),
            "dead_letter_items": await store.dead_letter.count(),
            **self._deps.runtime_status(),
        }

    async def integration(self) -> JsonObject:
        """The integration as declared: its manifest, sync steps and inbound actions."""
        declaration = self._deps.declaration
        return {
            "manifest": dict(self._deps.manifest),
            "sync": [
                {
                    "entity": step.entity,
                    "target": step.target,
                    "cursor_scope": step.cursor_scope,
                    "sources": step.sources,
                    "data_source": step.data_source,
                    "enabled_when": step.enabled_when,
                    "batch_size": step.batch_size,
                    "page_limit": step.page_limit,
                }
                for step in declaration.sync
            ],
            "inbound": [
                {"action": action.name, "target": action.target, "mode": action.mode}
                for action in declaration.inbound.values()
            ],
        }

    async def installations(self, page: Page) -> JsonObject:
        """Installations with their status, cursors, windows in progress and last run."""
        store = self._store
        latest = await store.runs.latest()
        items = []
        for installation in await store.installations.list(limit=page.limit, offset=page.offset):
            iid = installation.installation_id
            overview = InstallationOverview(
                installation=installation,
                cursors=tuple(await store.cursors.list(iid)),
                resume_points=tuple(await store.cursors.resume_points(iid)),
                last_run=latest.get(iid),
            )
            items.append(overview_view(overview))
        return page.body(items)

    async def installation(self, installation_id: str) -> JsonObject:
        """One installation with its cursors, windows in progress, last run and counts."""
        await self._installation(installation_id)
        store = self._store
        overview = await installation_overviews(store, installation_id=installation_id)
        if not overview:
            raise UnknownInstallationError(f"no installation {installation_id!r}")
        return {
            **overview_view(overview[0]),
            "outbox": dict(await store.outbox.counts(installation_id)),
            "dead_letter_items": await store.dead_letter.count(installation_id),
            "syncing": await self._syncing(installation_id),
        }

    async def _syncing(self, installation_id: str) -> bool:
        """True while a live task holds the installation (a sync run, a provisioning)."""
        lease = await self._store.leases.get(installation_lease_name(installation_id))
        if lease is None or not owner_is_alive(lease.owner):
            return False
        return lease.expires_at > format_timestamp(self._deps.clock())

    async def cursors(self, installation_id: str) -> JsonObject:
        """The installation's cursors and windows in progress."""
        await self._installation(installation_id)
        cursors = await self._store.cursors.list(installation_id)
        points = await self._store.cursors.resume_points(installation_id)
        return {
            "items": [cursor_view(c) for c in cursors],
            "in_progress": [resume_point_view(p) for p in points],
        }

    async def runs(self, installation_id: str, page: Page) -> JsonObject:
        """The installation's sync runs, newest first."""
        await self._installation(installation_id)
        runs = await self._store.runs.recent(installation_id, page.limit, page.offset)
        return page.body([run_view(run) for run in runs])

    async def webhooks(self, page: Page, installation_id: str | None = None) -> JsonObject:
        """Logged webhooks, newest first (payloads masked)."""
        if installation_id is not None:
            await self._installation(installation_id)
        entries = await self._store.webhook_log.list(
            installation_id=installation_id, limit=page.limit, offset=page.offset
        )
        return page.body([webhook_view(entry) for entry in entries])

    async def inbound(self, installation_id: str, page: Page) -> JsonObject:
        """The installation's inbound calls, newest first."""
        await self._installation(installation_id)
        events = await self._store.inbound_events.list(
            installation_id=installation_id, limit=page.limit, offset=page.offset
        )
        return page.body([inbound_view(event) for event in events])

    async def outbox(
        self, installation_id: str, page: Page, status: str | None = None
    ) -> JsonObject:
        """The installation's outbox events, newest first (payloads masked)."""
        await self._installation(installation_id)
        if status is not None and status not in _OUTBOX_STATUSES:
            raise InvalidRequestError(f"status must be one of {', '.join(_OUTBOX_STATUSES)}")
        wanted: OutboxStatus | None = status  # type: ignore[assignment]
        events = await self._store.outbox.list(
            installation_id=installation_id, status=wanted, limit=page.limit, offset=page.offset
        )
        return page.body([outbox_view(event) for event in events])

    async def state(self, installation_id: str) -> JsonObject:
        """The installation's state keys: names, encrypted or not, when set — no value."""
        await self._installation(installation_id)
        entries = await self._store.state.keys(installation_id)
        return {"items": [state_key_view(entry) for entry in entries]}

    async def dead_letter(self, installation_id: str, page: Page) -> JsonObject:
        """The installation's dead-lettered items, newest first (items masked)."""
        await self._installation(installation_id)
        items = await self._store.dead_letter.list(
            installation_id=installation_id, limit=page.limit, offset=page.offset
        )
        return {
            **page.body([dead_letter_view(item) for item in items]),
            "total": await self._store.dead_letter.count(installation_id),
        }

    async def audit(self, page: Page) -> JsonObject:
        """The audit log, newest first."""
        entries = await self._store.audit.list(limit=page.limit, offset=page.offset)
        return page.body([audit_view(entry) for entry in entries])

    # --- actions --------------------------------------------------------------------------

    async def _audited(
        self,
        caller: Caller,
        action: str,
        installation_id: str | None,
        target: str | None,
        act: Callable[[], Awaitable[JsonObject]],
    ) -> JsonObject:
        """Run `act`, then record the action and its outcome (also when refused)."""
        detail: JsonObject
        try:
            result = await act()
        except AdminError as refused:
            detail = {"outcome": refused.code}
            await self._record(caller, action, installation_id, target, detail)
            raise
        detail = {"outcome": "ok", **{k: v for k, v in result.items() if k in _AUDITED}}
        await self._record(caller, action, installation_id, target, detail)
        return result

    async def _record(
        self,
        caller: Caller,
        action: str,
        installation_id: str | None,
        target: str | None,
        detail: JsonObject,
    ) -> None:
        await self._store.audit.record(
            actor=caller.actor,
            action=action,
            installation_id=installation_id,
            target=target,
            detail=detail,
            client_ip=caller.client_ip,
        )
        _log.info(
            "admin action",
            action=action,
            actor=caller.actor,
            installation_id=installation_id,
            target=target,
            client_ip=caller.client_ip,
            **detail,
        )

    async def _active(self, installation_id: str) -> str:
        """The installation's access token; refused unless it is active and has one."""
        installation = await self._installation(installation_id)
        if installation.status != "active":
            raise NotPossibleError(
                f"installation {installation_id!r} is {installation.status}, not active"
            )
        token = await self._store.state.get(installation_id, ACCESS_TOKEN)
        if not token:
            raise NotPossibleError(f"installation {installation_id!r} has no access token")
        return token

    async def sync(self, installation_id: str, *, full: bool, caller: Caller) -> JsonObject:
        """Start a sync of the installation (a full backfill when `full`)."""

        async def act() -> JsonObject:
            await self._active(installation_id)
            # Said first, even when no worker is free: what the operator waits for is
            # this run. (The lease the run takes is what really keeps them apart.)
            if await self._syncing(installation_id):
                raise BusyError(f"installation {installation_id!r} is already syncing")
            try:
                report = await self._deps.start_sync(installation_id, full=full)
            except LeaseBusyError as exc:
                raise BusyError(f"installation {installation_id!r} is already syncing") from exc
            except SyncNotPossibleError as exc:
                raise NotPossibleError(str(exc)) from exc
            return {
                "run_id": report.run_id,
                "kind": report.kind,
                "status": report.status,
                "items": report.items,
                "errors": list(report.errors),
            }

        return await self._audited(caller, "sync", installation_id, "full" if full else None, act)

    async def reprovision(self, installation_id: str, *, caller: Caller) -> JsonObject:
        """Provision the installation again (find-or-create: nothing is duplicated)."""
        deps = self._deps

        async def act() -> JsonObject:
            await self._active(installation_id)
            settings = await load_settings(self._store.state, installation_id)
            async with self._exclusively(installation_id):
                try:
                    outcome = await provision_installation(
                        store=self._store,
                        declaration=deps.declaration,
                        bridge=deps.bridge,
                        shopimind=deps.shopimind,
                        installation_id=installation_id,
                        settings=settings,
                    )
                except NoAccessTokenError as exc:
                    raise NotPossibleError("the installation has no access token") from exc
            return {
                "provisioned": outcome.provisioned,
                "errors": list(outcome.errors),
                "error_count": len(outcome.errors),
                "warnings": list(outcome.warnings),
            }

        return await self._audited(caller, "reprovision", installation_id, None, act)

    @asynccontextmanager
    async def _exclusively(self, installation_id: str) -> AsyncIterator[None]:
        """Hold the installation's lease for the block; `busy` when another task has it."""
        name = installation_lease_name(installation_id)
        try:
            async with hold_lease(self._store.leases, name, self._deps.owner):
                yield
        except LeaseBusyError as exc:
            raise BusyError(
                f"installation {installation_id!r} is busy (syncing or provisioning)"
            ) from exc

    async def reset_cursor(
        self, installation_id: str, entity: str, *, source_key: str = "", caller: Caller
    ) -> JsonObject:
        """Forget one cursor (and its window in progress): the next run backfills it."""
        target = entity + (f"[{source_key}]" if source_key else "")

        async def act() -> JsonObject:
            await self._installation(installation_id)
            if not any(step.entity == entity for step in self._deps.declaration.sync):
                raise InvalidRequestError(f"{entity[:100]!r} is not a declared sync entity")
            async with self._exclusively(installation_id):
                removed = await self._store.cursors.reset(installation_id, entity, source_key)
            if not removed:
                raise NotFoundError(f"installation {installation_id!r} has no cursor {target!r}")
            return {"reset": True}

        return await self._audited(caller, "cursor.reset", installation_id, target[:200], act)

    async def replay(
        self, installation_id: str, ids: object = None, *, caller: Caller
    ) -> JsonObject:
        """Push dead-lettered items again (the given ids, or up to MAX_REPLAY_ITEMS)."""

        async def act() -> JsonObject:
            token = await self._active(installation_id)
            dead = self._store.dead_letter
            if ids is None:
                items = await dead.list(installation_id=installation_id, limit=MAX_REPLAY_ITEMS)
            else:
                items = []
                for item_id in _ids(ids)[:MAX_REPLAY_ITEMS]:
                    item = await dead.get(item_id)
                    if item is None or item.installation_id != installation_id:
                        raise NotFoundError(
                            f"no dead-lettered item {item_id} for this installation"
                        )
                    items.append(item)
            async with self._exclusively(installation_id):
                report = await replay_items(
                    items,
                    declaration=self._deps.declaration,
                    provisioning_ids=await self._store.state.get_json(
                        installation_id, PROVISIONING_IDS
                    ),
                    api=self._deps.shopimind.api(token, installation_id=installation_id),
                )
                removed = await dead.delete(report.accepted_ids(), installation_id=installation_id)
            return {
                **report.counts(),
                "removed": removed,
                "items": [
                    {"id": item.id, "outcome": item.outcome, "reason": item.reason}
                    for item in report.items
                ],
            }

        return await self._audited(caller, "dead_letter.replay", installation_id, None, act)

    async def purge(
        self, installation_id: str, ids: object = None, *, everything: bool = False, caller: Caller
    ) -> JsonObject:
        """Remove dead-lettered items: the given ids, or all of the installation's."""

        async def act() -> JsonObject:
            await self._installation(installation_id)
            dead = self._store.dead_letter
            if everything == (ids is not None):
                raise InvalidRequestError("name the items to purge (ids) or ask for all of them")
            if everything:
                return {"removed": await dead.clear(installation_id)}
            return {"removed": await dead.delete(_ids(ids), installation_id=installation_id)}

        target = "all" if everything else None
        return await self._audited(caller, "dead_letter.purge", installation_id, target, act)

    async def reveal(self, kind: str, item_id: int, *, caller: Caller) -> JsonObject:
        """One payload unmasked (a logged webhook, an outbox event, a dead-lettered item)."""
        installation_id: str | None = None
        store = self._store

        async def act() -> JsonObject:
            nonlocal installation_id
            if not 0 < item_id <= _MAX_ID:
                raise NotFoundError(f"no {kind[:20]} {item_id}")
            if kind == "webhook":
                entry = await store.webhook_log.get(item_id)
                if entry is not None:
                    installation_id = entry.installation_id
                    return {"item": webhook_view(entry, reveal=True)}
            elif kind == "outbox":
                event = await store.outbox.get(item_id)
                if event is not None:
                    installation_id = event.installation_id
                    return {"item": outbox_view(event, reveal=True)}
            elif kind == "dead_letter":
                item = await store.dead_letter.get(item_id)
                if item is not None:
                    installation_id = item.installation_id
                    return {"item": dead_letter_view(item, reveal=True)}
            else:
                raise InvalidRequestError(f"kind must be one of {', '.join(REVEAL_KINDS)}")
            raise NotFoundError(f"no {kind} {item_id}")

        target = f"{kind[:20]}:{item_id}"
        try:
            result = await act()
        except AdminError as refused:
            await self._record(caller, "payload.reveal", None, target, {"outcome": refused.code})
            raise
        await self._record(caller, "payload.reveal", installation_id, target, {"outcome": "ok"})
        return result


_AUDITED: Final = frozenset(
    {"run_id", "kind", "status", "provisioned", "error_count", "reset", "removed"}
    | {"accepted", "rejected", "failed"}
)
"""Result fields an audit row keeps: ids and counts, never payloads nor messages."""
