"""What an operator can read: JSON-ready objects, payloads masked, secrets never."""

from __future__ import annotations

from typing import Final

from sidecar.admin.deps import RUNTIME_STATUS_KEYS, AdminDeps
from sidecar.admin.errors import (
    InvalidRequestError,
    UnknownInstallationError,
)
from sidecar.admin.paging import Page
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
from sidecar.clock import format_timestamp
from sidecar.overview import installation_overviews
from sidecar.store.records import Installation, OutboxStatus
from sidecar.sync.leases import installation_lease_name

__all__ = ["AdminReads"]

JsonObject = dict[str, object]

_OUTBOX_STATUSES: Final = ("queued", "delivered", "failed", "dead")


class AdminReads:
    """The admin API's and the admin CLI's reads."""

    def __init__(self, deps: AdminDeps) -> None:
        self._deps = deps
        self._store = deps.store

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
        last_runs = await store.runs.latest_statuses()
        return {
            "integration": self._deps.declaration.slug,
            "installations": by_status,
            "last_runs": last_runs,
            "cursors_in_error": await store.cursors.count_in_error(),
            "outbox": dict(await store.outbox.counts()),
            "outbox_oldest_pending_at": await store.outbox.oldest_pending_at(),
            "dead_letter_items": await store.dead_letter.count(),
            **dict.fromkeys(RUNTIME_STATUS_KEYS),
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
        overviews = await installation_overviews(self._store, limit=page.limit, offset=page.offset)
        return page.body([overview_view(overview) for overview in overviews])

    async def installation(self, installation_id: str) -> JsonObject:
        """One installation with its cursors, windows in progress, last run and counts."""
        store = self._store
        found = await installation_overviews(store, installation_id=installation_id)
        if not found:
            raise UnknownInstallationError(f"no installation {installation_id[:200]!r}")
        return {
            **overview_view(found[0]),
            "outbox": dict(await store.outbox.counts(installation_id)),
            "dead_letter_items": await store.dead_letter.count(installation_id),
            "syncing": await self._syncing(installation_id),
        }

    async def _syncing(self, installation_id: str) -> bool:
        """True while a task of any replica holds the installation (a sync run, a
        provisioning, an action): its lease is unexpired by the store's clock. A holder
        that died stops counting when its lease expires; a released lease at once."""
        lease = await self._store.leases.get(installation_lease_name(installation_id))
        return lease is not None and lease.expires_at > format_timestamp(self._deps.clock())

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

    async def audit(
        self, page: Page, *, action: str | None = None, installation_id: str | None = None
    ) -> JsonObject:
        """The audit log, newest first, optionally of one action and/or installation."""
        if action is not None and len(action) > 100:
            raise InvalidRequestError("action is longer than 100 characters")
        entries = await self._store.audit.list(
            action=action,
            installation_id=installation_id,
            limit=page.limit,
            offset=page.offset,
        )
        return page.body([audit_view(entry) for entry in entries])
