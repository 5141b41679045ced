"""The daily retention purge (PROTOCOL §7.3), as a part of the runtime's nursery.

The first purge runs a little after startup (not during it), then one every day. A purge
is one transaction; if the store fails, the next day's purge simply catches up.
"""

from __future__ import annotations

from typing import Final

import trio

from sidecar.concurrency import describe_error
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.store.interface import Store
from sidecar.store.records import RetentionPolicy

__all__ = ["PURGE_EVERY_SECONDS", "run_retention"]

PURGE_EVERY_SECONDS: Final = 24 * 3600.0
FIRST_PURGE_AFTER_SECONDS: Final = 300.0

_log = get_logger("retention")


async def run_retention(
    store: Store,
    policy: RetentionPolicy,
    *,
    first_after_seconds: float = FIRST_PURGE_AFTER_SECONDS,
    every_seconds: float = PURGE_EVERY_SECONDS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Purge expired rows shortly after startup, then once every `every_seconds`."""
    task_status.started()
    await trio.sleep(first_after_seconds)
    while True:
        try:
            counts = await store.purge_expired(policy)
            _log.info("retention purge done", removed=dict(counts.removed), total=counts.total)
        except StoreError as exc:
            _log.error("retention purge failed; retried tomorrow", error=describe_error(exc))
        await trio.sleep(every_seconds)
