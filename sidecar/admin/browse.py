"""Reads across every installation, for the console's lists: searching installations,
runs of all shops, one item by its id. Same views, same masking as the other reads."""

from __future__ import annotations

from typing import Final, cast

from sidecar.admin.errors import InvalidRequestError, NotFoundError
from sidecar.admin.paging import Page
from sidecar.admin.reads import AdminReads
from sidecar.admin.replicas import replicas_listing
from sidecar.admin.views import (
    dead_letter_view,
    inbound_view,
    installation_view,
    outbox_view,
    run_view,
    webhook_view,
)
from sidecar.state_keys import PROVISIONING_IDS
from sidecar.store.records import InstallationStatus, OutboxStatus, RunStatus

__all__ = ["INSTALLATION_STATUSES", "OUTBOX_STATUSES", "RUN_STATUSES", "AdminBrowse"]

JsonObject = dict[str, object]

INSTALLATION_STATUSES: Final = ("active", "inactive", "uninstalled")
RUN_STATUSES: Final = ("running", "ok", "partial", "failed", "cancelled")
OUTBOX_STATUSES: Final = ("queued", "delivered", "failed", "dead")
_MAX_SEARCH: Final = 200
_MAX_ID: Final = 2**63 - 1


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidRequestError(f"{name} must be one of {', '.join(allowed)}")
    return value


def _item_id(item_id: int) -> int:
    if not 0 < item_id <= _MAX_ID:
        raise NotFoundError(f"no item {item_id}")
    return item_id


class AdminBrowse(AdminReads):
    """The reads of the admin console's lists and detail pages."""

    async def find_installations(
        self, page: Page, *, text: str = "", status: str | None = None
    ) -> JsonObject:
        """Installations whose id is `text` or whose shop name or domain contains it."""
        wanted = cast(InstallationStatus | None, _choice("status", status, INSTALLATION_STATUSES))
        if len(text) > _MAX_SEARCH:
            raise InvalidRequestError(f"the search text is longer than {_MAX_SEARCH} characters")
        found = await self._store.installations.search(
            text.strip(), status=wanted, limit=page.limit, offset=page.offset
        )
        return page.body([installation_view(installation) for installation in found])

    async def all_runs(self, page: Page, *, status: str | None = None) -> JsonObject:
        """Every installation's sync runs, newest first, optionally of one status."""
        wanted = cast(RunStatus | None, _choice("status", status, RUN_STATUSES))
        runs = await self._store.runs.list(status=wanted, limit=page.limit, offset=page.offset)
        return page.body([run_view(run) for run in runs])

    async def run(self, run_id: int) -> JsonObject:
        """One sync run with its summary."""
        found = await self._store.runs.get(_item_id(run_id))
        if found is None:
            raise NotFoundError(f"no run {run_id}")
        return run_view(found)

    async def all_outbox(
        self, page: Page, *, installation_id: str | None = None, status: str | None = None
    ) -> JsonObject:
        """Outbox events of every installation (or one), newest first, payloads masked."""
        wanted = cast(OutboxStatus | None, _choice("status", status, OUTBOX_STATUSES))
        if installation_id:
            await self._installation(installation_id)
        events = await self._store.outbox.list(
            installation_id=installation_id or None,
            status=wanted,
            limit=page.limit,
            offset=page.offset,
        )
        return page.body([outbox_view(event) for event in events])

    async def outbox_event(self, event_id: int) -> JsonObject:
        """One outbox event, its payload masked."""
        found = await self._store.outbox.get(_item_id(event_id))
        if found is None:
            raise NotFoundError(f"no outbox event {event_id}")
        return outbox_view(found)

    async def all_inbound(self, page: Page, *, installation_id: str | None = None) -> JsonObject:
        """Inbound calls of every installation (or one), newest first."""
        if installation_id:
            await self._installation(installation_id)
        events = await self._store.inbound_events.list(
            installation_id=installation_id or None, limit=page.limit, offset=page.offset
        )
        return page.body([inbound_view(event) for event in events])

    async def webhook(self, entry_id: int) -> JsonObject:
        """One logged webhook, its payload masked."""
        found = await self._store.webhook_log.get(_item_id(entry_id))
        if found is None:
            raise NotFoundError(f"no webhook {entry_id}")
        return webhook_view(found)

    async def all_dead_letter(
        self, page: Page, *, installation_id: str | None = None
    ) -> JsonObject:
        """Dead-lettered items of every installation (or one), newest first, masked; `total`
        is how many match the filter."""
        if installation_id:
            await self._installation(installation_id)
        dead = self._store.dead_letter
        items = await dead.list(
            installation_id=installation_id or None, limit=page.limit, offset=page.offset
        )
        return {
            **page.body([dead_letter_view(item) for item in items]),
            "total": await dead.count(installation_id or None),
        }

    async def dead_letter_item(self, item_id: int) -> JsonObject:
        """One dead-lettered item, masked."""
        found = await self._store.dead_letter.get(_item_id(item_id))
        if found is None:
            raise NotFoundError(f"no dead-lettered item {item_id}")
        return dead_letter_view(found)

    async def cursor_reset_preview(
        self, installation_id: str, entity: str, source_key: str = ""
    ) -> JsonObject:
        """What resetting a cursor would re-send: its entity, source, the ShopiMind
        resource it feeds, how far it got and how many items it sent so far."""
        await self._installation(installation_id)
        steps = [step for step in self._deps.declaration.sync if step.entity == entity]
        if not steps:
            raise InvalidRequestError(f"{entity[:100]!r} is not a declared sync entity")
        cursor = await self._store.cursors.get(installation_id, entity, source_key)
        if cursor is None:
            target = entity + (f"[{source_key}]" if source_key else "")
            raise NotFoundError(f"installation {installation_id!r} has no cursor {target!r}")
        return {
            "entity": entity,
            "source_key": source_key,
            "target": steps[0].target,
            "last_synced_at": cursor.last_synced_at,
            "items": cursor.items,
        }

    async def replicas(self) -> JsonObject:
        """Every replica on this database (this process marked `self`), alive first."""
        return await replicas_listing(self._store, self_id=self._deps.owner)

    async def provisioning_ids(self, installation_id: str) -> JsonObject:
        """The ids of what provisioning created at ShopiMind for the installation (no
        secret: resource ids)."""
        await self._installation(installation_id)
        ids = await self._store.state.get_json(installation_id, PROVISIONING_IDS)
        return {"provisioning_ids": ids if isinstance(ids, dict) else {}}
