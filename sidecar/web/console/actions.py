"""The console's actions: forms posted to the admin service's actions (audited there), then
back to the page they came from with a notice saying what happened.

    POST /admin/ui/installations/{id}/sync           full=1 for a full sync
    POST /admin/ui/installations/{id}/reprovision
    POST /admin/ui/installations/{id}/cursor-reset   entity, source_key (after the
                                                     confirmation page)
    POST /admin/ui/dead-letter/replay                installation, item (one) or none (all)
    POST /admin/ui/dead-letter/purge                 installation, item (one) or none (all)
    POST /admin/ui/reveal/{webhook|outbox|dead_letter}/{id}   the payload unmasked
"""

from __future__ import annotations

from typing import Final

from quart import Blueprint, Response, request, url_for

from sidecar.admin.errors import InvalidRequestError
from sidecar.admin.service import AdminService
from sidecar.payloads import MAX_INT
from sidecar.web.console.access import caller, current_session
from sidecar.web.console.rendering import render, see_other

__all__ = ["install_actions"]

_MAX_FIELD: Final = 200


async def _field(name: str) -> str:
    return str((await request.form).get(name, ""))[:_MAX_FIELD]


async def _item_id() -> int | None:
    raw = await _field("item")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_INT:
        raise InvalidRequestError("item must be an item id")
    return int(raw)


def _back_to(iid: str, notice: str) -> Response:
    current_session().notice = notice
    return see_other(url_for("console.installation", iid=iid))


def install_actions(console: Blueprint, service: AdminService) -> None:
    """Add the actions to the console's blueprint."""

    @console.post("/installations/<iid>/sync")
    async def sync(iid: str) -> Response:
        full = await _field("full") == "1"
        result = await service.sync(iid, full=full, caller=caller())
        kind = "full sync" if full else "sync"
        return _back_to(iid, f"{kind} started: run {result['run_id']} ({result['status']})")

    @console.post("/installations/<iid>/reprovision")
    async def reprovision(iid: str) -> Response:
        result = await service.reprovision(iid, caller=caller())
        errors = result.get("error_count", 0)
        return _back_to(iid, f"reprovisioned ({errors} error(s))")

    @console.post("/installations/<iid>/cursor-reset")
    async def cursor_reset(iid: str) -> Response:
        entity, source_key = await _field("entity"), await _field("source_key")
        await service.reset_cursor(iid, entity, source_key=source_key, caller=caller())
        named = entity + (f" [{source_key}]" if source_key else "")
        return _back_to(iid, f"cursor {named} reset: the next run sends it again")

    @console.post("/dead-letter/replay")
    async def replay() -> Response:
        iid, item = await _field("installation"), await _item_id()
        result = await service.replay(iid, None if item is None else [item], caller=caller())
        current_session().notice = (
            f"replayed: {result.get('accepted', 0)} accepted, "
            f"{result.get('rejected', 0)} rejected, {result.get('failed', 0)} failed"
        )
        return see_other(url_for("console.dead_letter", installation=iid))

    @console.post("/dead-letter/purge")
    async def purge() -> Response:
        iid, item = await _field("installation"), await _item_id()
        result = await service.purge(
            iid, None if item is None else [item], everything=item is None, caller=caller()
        )
        current_session().notice = f"purged: {result.get('removed', 0)} item(s) removed"
        return see_other(url_for("console.dead_letter", installation=iid))

    @console.post(f"/reveal/<kind>/<int(max={MAX_INT}):item_id>")
    async def reveal(kind: str, item_id: int) -> Response:
        result = await service.reveal(kind, item_id, caller=caller())
        return await render(
            "console/item.html",
            title=f"{kind.replace('_', ' ').capitalize()} {item_id} (revealed)",
            item=result["item"],
            kind=kind,
            item_id=item_id,
            revealed=True,
        )
