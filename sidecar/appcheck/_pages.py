"""Walking one `/sync/{entity}` window page by page, as the sync engine does, and keeping
what app-check needs to judge it: the items (numbered across the walk), how the walk
ended, and the request that showed a problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sidecar.appcheck._session import Session
from sidecar.appcheck.report import ShownRequest
from sidecar.bridge import SyncPage
from sidecar.errors import BridgeError

__all__ = ["Walk", "fetch_page", "walk_window"]


@dataclass(slots=True, kw_only=True)
class Walk:
    """The pages of one window, or why the walk stopped."""

    items: list[dict[str, object]] = field(default_factory=list)
    item_pages: list[int] = field(default_factory=list)
    """The page number of each item."""
    pages: int = 0
    complete: bool = False
    """The last page said `next: null`."""
    error: str | None = None
    """An answer broke the contract (the bridge's message)."""
    endless: str | None = None
    """Why the pagination looks like it never ends."""
    truncated: bool = False
    """Stopped at app-check's own page cap, the pagination still going."""
    request: ShownRequest | None = None
    """The request behind `error` or `endless`."""


async def fetch_page(
    session: Session,
    entity: str,
    *,
    source_key: str,
    since: datetime,
    until: datetime,
    cursor: str | None,
    limit: int,
) -> SyncPage:
    """One page, exactly as the sidecar asks for it (raises BridgeError)."""
    return await session.bridge.sync_page(
        entity,
        installation_id=session.installation_id,
        settings=session.settings,
        source_key=source_key,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


async def walk_window(
    session: Session,
    entity: str,
    *,
    source_key: str,
    since: datetime,
    until: datetime,
    limit: int,
    max_pages: int,
    step_max_pages: int,
) -> Walk:
    """Every page of `(since, until]`, up to `max_pages`; loops and endless empty pages end
    the walk early with the reason."""
    walk = Walk()
    cursor: str | None = None
    seen_tokens: dict[str, int] = {}
    empty_in_a_row = 0
    while True:
        try:
            page = await fetch_page(
                session,
                entity,
                source_key=source_key,
                since=since,
                until=until,
                cursor=cursor,
                limit=limit,
            )
        except BridgeError as exc:
            walk.error = f"page {walk.pages + 1}: {exc}"
            walk.request = session.log.shown()
            return walk
        walk.pages += 1
        walk.items.extend(page.items)
        walk.item_pages.extend([walk.pages] * len(page.items))
        if page.next is None:
            walk.complete = True
            return walk
        if page.next in seen_tokens:
            walk.endless = (
                f"page {walk.pages} answers the same `next` token as page "
                f"{seen_tokens[page.next]}: the pagination loops forever"
            )
            walk.request = session.log.shown()
            return walk
        seen_tokens[page.next] = walk.pages
        empty_in_a_row = 0 if page.items else empty_in_a_row + 1
        if empty_in_a_row >= 2:
            walk.endless = (
                f"pages {walk.pages - 1} and {walk.pages} have no items but still a `next` "
                "token: the pagination never ends (answer `next: null` on the last page)"
            )
            walk.request = session.log.shown()
            return walk
        if walk.pages >= step_max_pages:
            walk.endless = (
                f"still a `next` token after {walk.pages} pages, the step's max_pages: the "
                "sidecar would stop this sync with an error"
            )
            walk.request = session.log.shown()
            return walk
        if walk.pages >= max_pages:
            walk.truncated = True
            return walk
        cursor = page.next
