"""`shopimind-sidecar admin …`: every read and action of the admin API, for an operator on
the box, on the local store — the same service, the same answers (JSON on stdout), the
same audit rows (actor `cli:<user>`). A sync runs to its end here, with a progress line.

    admin overview | integration | audit | webhooks [ID]
    admin installations | installation ID | cursors ID | runs ID | inbound ID
    admin outbox ID [--status S] | state ID | dead-letter ID
    admin sync ID [--full] | reprovision ID | reset-cursor ID ENTITY [--source-key K]
    admin replay ID [--ids 1,2] | purge ID (--ids 1,2 | --all) | reveal KIND ITEM_ID
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from sidecar.admin.errors import InvalidRequestError
from sidecar.admin.paging import Page
from sidecar.admin.service import REVEAL_KINDS, AdminDeps, AdminService, Caller
from sidecar.admin.syncs import ForegroundSyncs
from sidecar.declaration import build_manifest
from sidecar.sync.cursor_sync import Progress
from sidecar.wiring import Parts

__all__ = ["add_admin_commands", "run_admin_command"]

JsonObject = dict[str, object]
Operation = Callable[[AdminService, argparse.Namespace, Caller], Awaitable[JsonObject]]


def _page(args: argparse.Namespace) -> Page:
    return Page.parse(args.limit, args.offset)


def _ids(text: str | None) -> list[int] | None:
    """`--ids 3,4,9` as a list (None when not given); a non-number is refused."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidRequestError(
            f"--ids must be item ids separated by commas; got {text!r}"
        ) from None


def add_admin_commands(admin: argparse.ArgumentParser) -> None:
    """Add the admin actions under `admin` (each sets `admin_op`)."""
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, op: Operation, *, listing: bool = False) -> None:
        parser = actions.add_parser(name, help=help_text)
        parser.set_defaults(admin_op=op)
        arguments[name] = parser
        if listing:
            parser.add_argument("--limit", help="rows to show (1-500, default 50)")
            parser.add_argument("--offset", help="rows to skip (default 0)")

    arguments: dict[str, argparse.ArgumentParser] = {}
    action("overview", "counts that tell whether all is well", lambda s, a, c: s.overview())
    action(
        "integration",
        "the integration as declared (manifest, sync steps, inbound actions)",
        lambda s, a, c: s.integration(),
    )
    action("audit", "the audit log, newest first", lambda s, a, c: s.audit(_page(a)), listing=True)
    action(
        "webhooks",
        "logged webhooks, newest first (payloads masked)",
        lambda s, a, c: s.webhooks(_page(a), a.installation_id),
        listing=True,
    )
    arguments["webhooks"].add_argument("installation_id", nargs="?", help="only this one's")
    action(
        "installations",
        "installations with their cursors and last run",
        lambda s, a, c: s.installations(_page(a)),
        listing=True,
    )
    for name, help_text, listing, op in (
        ("installation", "one installation in full", False, _installation),
        ("cursors", "an installation's cursors and windows in progress", False, _cursors),
        ("runs", "an installation's sync runs, newest first", True, _runs),
        ("inbound", "an installation's inbound calls, newest first", True, _inbound),
        ("outbox", "an installation's outbox events (payloads masked)", True, _outbox),
        ("state", "an installation's state keys (never their values)", False, _state),
        ("dead-letter", "an installation's dead-lettered items (masked)", True, _dead_letter),
        ("sync", "sync an installation now (to the end, with progress)", False, _sync),
        ("reprovision", "provision an installation again", False, _reprovision),
        ("reset-cursor", "forget one cursor: the next run backfills it", False, _reset),
        ("replay", "push dead-lettered items again", False, _replay),
        ("purge", "remove dead-lettered items", False, _purge),
    ):
        action(name, help_text, op, listing=listing)
        arguments[name].add_argument("installation_id", help="the installation")
    arguments["outbox"].add_argument("--status", help="queued, delivered, failed or dead")
    arguments["sync"].add_argument("--full", action="store_true", help="a full backfill")
    arguments["reset-cursor"].add_argument("entity", help="the sync entity, e.g. customers")
    arguments["reset-cursor"].add_argument("--source-key", default="", help="for per-source steps")
    arguments["replay"].add_argument("--ids", help="item ids, e.g. 3,4,9 (default: up to 500)")
    arguments["purge"].add_argument("--ids", help="item ids, e.g. 3,4,9")
    arguments["purge"].add_argument("--all", action="store_true", help="every item of it")
    action("reveal", "show one payload unmasked (audited)", _reveal)
    arguments["reveal"].add_argument("kind", choices=REVEAL_KINDS, help="where the payload is")
    arguments["reveal"].add_argument("item_id", type=int, help="its id")


async def _installation(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.installation(a.installation_id)


async def _cursors(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.cursors(a.installation_id)


async def _runs(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.runs(a.installation_id, _page(a))


async def _inbound(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.inbound(a.installation_id, _page(a))


async def _outbox(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.outbox(a.installation_id, _page(a), a.status)


async def _state(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.state(a.installation_id)


async def _dead_letter(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.dead_letter(a.installation_id, _page(a))


async def _sync(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.sync(a.installation_id, full=a.full, caller=c)


async def _reprovision(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.reprovision(a.installation_id, caller=c)


async def _reset(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.reset_cursor(a.installation_id, a.entity, source_key=a.source_key, caller=c)


async def _replay(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.replay(a.installation_id, _ids(a.ids), caller=c)


async def _purge(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.purge(a.installation_id, _ids(a.ids), everything=a.all, caller=c)


async def _reveal(s: AdminService, a: argparse.Namespace, c: Caller) -> JsonObject:
    return await s.reveal(a.kind, a.item_id, caller=c)


async def run_admin_command(
    parts: Parts, args: argparse.Namespace, *, actor: str, progress: Progress | None = None
) -> JsonObject:
    """Run the parsed `admin` action on the local store; its answer, or an AdminError."""
    service = AdminService(
        AdminDeps(
            store=parts.store,
            declaration=parts.declaration,
            manifest=build_manifest(parts.declaration),
            bridge=parts.bridge,
            shopimind=parts.shopimind,
            owner=parts.owner,
            start_sync=ForegroundSyncs(parts.sync_engine(), progress),
            clock=parts.clock,
            lease_ttl_seconds=parts.settings.lease_ttl_seconds,
        )
    )
    op: Operation = args.admin_op
    return await op(service, args, Caller(actor=actor))
