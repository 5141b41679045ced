"""Asking for a sync of an installation without waiting for it (e.g. the backfill that
follows an activation). The request is written to the store first, so it survives a
restart; whoever runs syncs picks it up."""

from __future__ import annotations

from typing import Protocol

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.state_keys import SYNC_REQUEST
from sidecar.store.interface import State

__all__ = ["DurableSyncRequests", "SyncRequests"]


class SyncRequests(Protocol):
    """Where sync requests go."""

    async def request(self, installation_id: str, *, full: bool) -> None:
        """Ask for a sync of `installation_id` (a full backfill when `full`), soon."""
        ...


class DurableSyncRequests:
    """Records each request in the installation's state (a full request is never downgraded)."""

    def __init__(self, state: State, clock: Clock = system_clock) -> None:
        self._state = state
        self._clock = clock

    async def request(self, installation_id: str, *, full: bool) -> None:
        # One merge, one transaction: an incremental request never clears a pending `full`.
        patch: dict[str, object] = {"at": format_timestamp(self._clock())}
        if full:
            patch["full"] = True
        await self._state.merge_json(installation_id, SYNC_REQUEST, patch)
