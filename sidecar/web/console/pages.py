"""The console's pages: each reads through the admin service and renders a template.

/admin/ui                      overview (refreshes itself)
/admin/ui/installations        search, filter by status, paging
/admin/ui/installations/{id}   state keys, provisioning ids, cursors, runs, inbound
                               calls, dead-letter; sync, reprovision, reset a cursor
/admin/ui/runs[/{id}]          /admin/ui/outbox[/{id}]     /admin/ui/inbound
/admin/ui/webhooks[/{id}]      /admin/ui/dead-letter[/{id}]  /admin/ui/audit
/admin/ui/replicas             every replica on the database (refreshes itself)
"""

from __future__ import annotations

from typing import Final

from quart import Blueprint, Response, request

from sidecar.admin.browse import INSTALLATION_STATUSES, OUTBOX_STATUSES, RUN_STATUSES
from sidecar.admin.errors import AdminError
from sidecar.admin.paging import Page
from sidecar.admin.replay import MAX_REPLAY_ITEMS
from sidecar.admin.service import AdminService
from sidecar.payloads import MAX_INT
from sidecar.web.console.rendering import render

__all__ = ["PAGE_SIZE", "REFRESH_SECONDS", "install_pages"]

PAGE_SIZE: Final = 25
REFRESH_SECONDS: Final = 5
_DETAIL_ROWS: Final = 10


def _page() -> Page:
    return Page.parse(PAGE_SIZE, request.args.get("offset"))


def _arg(name: str) -> str:
    return request.args.get(name, "")[:200]


def _paging(page: Page, listing: dict[str, object]) -> dict[str, object]:
    """Offsets of the previous and next pages (None when there is none)."""
    count = listing.get("count", 0)
    more = isinstance(count, int) and count >= page.limit
    return {
        "previous": max(0, page.offset - page.limit) if page.offset > 0 else None,
        "next": page.offset + page.limit if more else None,
    }


def install_pages(console: Blueprint, service: AdminService) -> None:
    """Add the read-only pages to the console's blueprint."""

    @console.errorhandler(AdminError)
    async def _refused(error: AdminError) -> Response:
        return await render(
            "console/error.html", error.status, title="Not possible", message=str(error)
        )

    @console.get("")
    async def overview() -> Response:
        return await render(
            "console/overview.html",
            title="Overview",
            overview=await service.overview(),
            refresh=REFRESH_SECONDS,
        )

    @console.get("/installations")
    async def installations() -> Response:
        page = _page()
        text, status = _arg("q"), _arg("status")
        listing = await service.find_installations(page, text=text, status=status or None)
        return await render(
            "console/installations.html",
            title="Installations",
            listing=listing,
            paging=_paging(page, listing),
            q=text,
            status=status,
            statuses=INSTALLATION_STATUSES,
        )

    @console.get("/installations/<iid>")
    async def installation(iid: str) -> Response:
        first = Page(limit=_DETAIL_ROWS)
        found = await service.installation(iid)
        return await render(
            "console/installation.html",
            title=f"Installation {iid}",
            iid=iid,
            installation=found,
            state=await service.state(iid),
            provisioning=await service.provisioning_ids(iid),
            cursors=await service.cursors(iid),
            runs=await service.runs(iid, first),
            inbound=await service.inbound(iid, first),
            dead_letter=await service.dead_letter(iid, first),
            refresh=REFRESH_SECONDS if found.get("syncing") else None,
        )

    @console.get("/installations/<iid>/cursor-reset")
    async def cursor_reset_confirm(iid: str) -> Response:
        preview = await service.cursor_reset_preview(iid, _arg("entity"), _arg("source_key"))
        return await render(
            "console/cursor_reset.html", title="Reset a cursor", iid=iid, preview=preview
        )

    @console.get("/runs")
    async def runs() -> Response:
        page, status = _page(), _arg("status")
        listing = await service.all_runs(page, status=status or None)
        return await render(
            "console/runs.html",
            title="Sync runs",
            listing=listing,
            paging=_paging(page, listing),
            status=status,
            statuses=RUN_STATUSES,
        )

    @console.get(f"/runs/<int(max={MAX_INT}):run_id>")
    async def run(run_id: int) -> Response:
        found = await service.run(run_id)
        return await render(
            "console/item.html", title=f"Run {run_id}", item=found, kind=None, item_id=run_id
        )

    @console.get("/outbox")
    async def outbox() -> Response:
        page, iid, status = _page(), _arg("installation"), _arg("status")
        listing = await service.all_outbox(page, installation_id=iid or None, status=status or None)
        return await render(
            "console/outbox.html",
            title="Outbox",
            listing=listing,
            paging=_paging(page, listing),
            installation=iid,
            status=status,
            statuses=OUTBOX_STATUSES,
        )

    @console.get(f"/outbox/<int(max={MAX_INT}):event_id>")
    async def outbox_event(event_id: int) -> Response:
        found = await service.outbox_event(event_id)
        return await render(
            "console/item.html",
            title=f"Outbox event {event_id}",
            item=found,
            kind="outbox",
            item_id=event_id,
        )

    @console.get("/inbound")
    async def inbound() -> Response:
        page, iid = _page(), _arg("installation")
        listing = await service.all_inbound(page, installation_id=iid or None)
        return await render(
            "console/inbound.html",
            title="Inbound calls",
            listing=listing,
            paging=_paging(page, listing),
            installation=iid,
        )

    @console.get("/webhooks")
    async def webhooks() -> Response:
        page, iid = _page(), _arg("installation")
        listing = await service.webhooks(page, installation_id=iid or None)
        return await render(
            "console/webhooks.html",
            title="Webhooks",
            listing=listing,
            paging=_paging(page, listing),
            installation=iid,
        )

    @console.get(f"/webhooks/<int(max={MAX_INT}):entry_id>")
    async def webhook(entry_id: int) -> Response:
        found = await service.webhook(entry_id)
        return await render(
            "console/item.html",
            title=f"Webhook {entry_id}",
            item=found,
            kind="webhook",
            item_id=entry_id,
        )

    @console.get("/dead-letter")
    async def dead_letter() -> Response:
        page, iid = _page(), _arg("installation")
        listing = await service.all_dead_letter(page, installation_id=iid or None)
        return await render(
            "console/dead_letter.html",
            title="Dead-letter",
            listing=listing,
            paging=_paging(page, listing),
            installation=iid,
        )

    @console.get("/dead-letter/confirm")
    async def dead_letter_confirm() -> Response:
        iid, action = _arg("installation"), _arg("action")
        if action not in ("replay", "purge"):
            action = "replay"
        listing = await service.dead_letter(iid, Page(limit=1))
        total = listing["total"]
        count = min(int(total), MAX_REPLAY_ITEMS) if action == "replay" else total  # type: ignore[call-overload]
        return await render(
            "console/dead_letter_confirm.html",
            title=f"Confirm: {action} dead-lettered items",
            iid=iid,
            action=action,
            total=total,
            count=count,
        )

    @console.get(f"/dead-letter/<int(max={MAX_INT}):item_id>")
    async def dead_letter_item(item_id: int) -> Response:
        found = await service.dead_letter_item(item_id)
        return await render(
            "console/item.html",
            title=f"Dead-lettered item {item_id}",
            item=found,
            kind="dead_letter",
            item_id=item_id,
        )

    @console.get("/replicas")
    async def replicas() -> Response:
        return await render(
            "console/replicas.html",
            title="Replicas",
            listing=await service.replicas(),
            refresh=REFRESH_SECONDS,
        )

    @console.get("/audit")
    async def audit() -> Response:
        page, action, iid = _page(), _arg("action"), _arg("installation")
        listing = await service.audit(page, action=action or None, installation_id=iid or None)
        return await render(
            "console/audit.html",
            title="Audit log",
            listing=listing,
            paging=_paging(page, listing),
            action=action,
            installation=iid,
        )
