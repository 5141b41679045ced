"""What an operator can read and do, in one place: the admin API's routes and the
`shopimind-sidecar admin` commands both call this, and only format its answers.

Reads return JSON-ready objects (payloads masked, secrets never). Actions are audited,
whatever their outcome: who (actor, client IP), what, on which installation and target,
and counts — never a secret nor a customer's data. An action that would touch an
installation another task holds (a sync run, a provisioning) is refused `busy`: the
same lease that keeps two syncs apart keeps an operator's action apart from both, and
the action's writes carry its fence (nothing is written once another replica took it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from sidecar.admin.browse import AdminBrowse
from sidecar.admin.deps import AdminDeps, Caller, SyncStarter
from sidecar.admin.errors import (
    AdminError,
    BusyError,
    InvalidRequestError,
    NotFoundError,
    NotPossibleError,
)
from sidecar.admin.replay import MAX_REPLAY_ITEMS, replay_items
from sidecar.admin.views import (
    dead_letter_view,
    outbox_view,
    webhook_view,
)
from sidecar.lifecycle.merchant_config import load_settings
from sidecar.lifecycle.provisioning import NoAccessTokenError, provision_installation
from sidecar.logs import get_logger
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.sync.engine import SyncNotPossibleError
from sidecar.sync.leases import (
    LeaseBusyError,
    LeaseHandle,
    hold_lease,
    installation_lease_name,
)

__all__ = ["REVEAL_KINDS", "AdminDeps", "AdminService", "Caller", "SyncStarter"]

JsonObject = dict[str, object]

REVEAL_KINDS: Final = ("webhook", "outbox", "dead_letter")
"""What holds a payload an operator may reveal: a logged webhook, an outbox event, a
dead-lettered item."""

_MAX_IDS: Final = 1000
_MAX_ID: Final = 2**63 - 1

_log = get_logger("admin")


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


class AdminService(AdminBrowse):
    """The admin API's and the admin CLI's operations: the reads, and the actions."""

    async def record_access(
        self, caller: Caller, action: str, *, outcome: str, target: str | None = None
    ) -> None:
        """Audit a sign-in, a sign-out or a refused request (never the token presented)."""
        await self._record(
            caller, action, None, None if target is None else target[:200], {"outcome": outcome}
        )

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
            async with self._exclusively(installation_id) as lease:
                try:
                    outcome = await provision_installation(
                        store=self._store,
                        declaration=deps.declaration,
                        bridge=deps.bridge,
                        shopimind=deps.shopimind,
                        installation_id=installation_id,
                        settings=settings,
                        fence=lease.fence,
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
    async def _exclusively(self, installation_id: str) -> AsyncIterator[LeaseHandle]:
        """Hold the installation's lease for the block; `busy` when another task has it."""
        name = installation_lease_name(installation_id)
        try:
            async with hold_lease(
                self._store.leases,
                name,
                self._deps.owner,
                ttl_seconds=self._deps.lease_ttl_seconds,
                metrics=self._deps.metrics,
            ) as lease:
                yield lease
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
            async with self._exclusively(installation_id) as lease:
                removed = await self._store.cursors.reset(
                    installation_id, entity, source_key, fence=lease.fence
                )
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
        target = f"{kind[:20]}:{item_id}"
        try:
            installation_id, item = await self._unmasked(kind, item_id)
        except AdminError as refused:
            await self._record(caller, "payload.reveal", None, target, {"outcome": refused.code})
            raise
        await self._record(caller, "payload.reveal", installation_id, target, {"outcome": "ok"})
        return {"item": item}

    async def _unmasked(self, kind: str, item_id: int) -> tuple[str | None, JsonObject]:
        """The installation a payload belongs to, and the payload's view, unmasked."""
        if kind not in REVEAL_KINDS:
            raise InvalidRequestError(f"kind must be one of {', '.join(REVEAL_KINDS)}")
        store = self._store
        if 0 < item_id <= _MAX_ID:
            if kind == "webhook" and (entry := await store.webhook_log.get(item_id)):
                return entry.installation_id, webhook_view(entry, reveal=True)
            if kind == "outbox" and (event := await store.outbox.get(item_id)):
                return event.installation_id, outbox_view(event, reveal=True)
            if kind == "dead_letter" and (item := await store.dead_letter.get(item_id)):
                return item.installation_id, dead_letter_view(item, reveal=True)
        raise NotFoundError(f"no {kind} {item_id}")


_AUDITED: Final = frozenset(
    {"run_id", "kind", "status", "provisioned", "error_count", "reset", "removed"}
    | {"accepted", "rejected", "failed"}
)
"""Result fields an audit row keeps: ids and counts, never payloads nor messages."""
