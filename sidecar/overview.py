"""What an operator wants to know about each installation, gathered in one place: its
record, its cursors, its windows in progress and its last run. Used by the CLI (and the
admin API), which only format it."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.store.interface import Store
from sidecar.store.records import Cursor, Installation, ResumePoint, SyncRun

__all__ = ["InstallationOverview", "installation_overviews"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationOverview:
    """One installation and the state of its sync."""

    installation: Installation
    cursors: tuple[Cursor, ...]
    resume_points: tuple[ResumePoint, ...]
    last_run: SyncRun | None


async def installation_overviews(
    store: Store, *, installation_id: str | None = None, limit: int = 1000, offset: int = 0
) -> list[InstallationOverview]:
    """Every installation (a page of them, or one), with its cursors, windows in progress
    and last run."""
    if installation_id is not None:
        found = await store.installations.get(installation_id)
        installations = [] if found is None else [found]
    else:
        installations = await store.installations.list(limit=limit, offset=offset)
    overviews = []
    for installation in installations:
        iid = installation.installation_id
        # Its own last run: one index seek (every installation's latest costs a pass over
        # all of them, for a page of 50 or for one).
        last_runs = await store.runs.recent(iid, 1)
        overviews.append(
            InstallationOverview(
                installation=installation,
                cursors=tuple(await store.cursors.list(iid)),
                resume_points=tuple(await store.cursors.resume_points(iid)),
                last_run=last_runs[0] if last_runs else None,
            )
        )
    return overviews
