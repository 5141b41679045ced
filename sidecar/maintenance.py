"""The daily retention purge (PROTOCOL §7.3), as a part of the runtime's nursery.

Every replica runs this part, but only the holder of the singleton lease `retention`
purges: the others stand by and try to take it every STANDBY_SECONDS, so when its holder
stops or dies, another one takes over. The holder's first purge runs a little after it
took the lease (not during startup), then one every day. A purge is one transaction; if
the store fails, the next day's purge simply catches up.
"""

from __future__ import annotations

from typing import Final

import trio

from sidecar.concurrency import describe_error
from sidecar.errors import LeaseLostError, StoreError
from sidecar.logs import get_logger
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.store.interface import Store
from sidecar.store.records import RetentionPolicy
from sidecar.sync.leases import LEASE_TTL_SECONDS, LeaseBusyError, hold_lease

__all__ = [
    "FIRST_PURGE_AFTER_SECONDS",
    "PURGE_EVERY_SECONDS",
    "RETENTION_LEASE",
    "STANDBY_SECONDS",
    "run_retention",
]

PURGE_EVERY_SECONDS: Final = 24 * 3600.0
FIRST_PURGE_AFTER_SECONDS: Final = 300.0
STANDBY_SECONDS: Final = 300.0
"""How often a replica that does not hold `retention` tries to take it."""
RETENTION_LEASE: Final = "retention"

_log = get_logger("retention")


async def run_retention(
    store: Store,
    policy: RetentionPolicy,
    *,
    owner: str,
    lease_ttl_seconds: float = LEASE_TTL_SECONDS,
    metrics: Metrics = NO_METRICS,
    first_after_seconds: float = FIRST_PURGE_AFTER_SECONDS,
    every_seconds: float = PURGE_EVERY_SECONDS,
    standby_seconds: float = STANDBY_SECONDS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """While holding `retention`, purge expired rows `first_after_seconds` after taking it,
    then once every `every_seconds`; without it, try again every `standby_seconds`."""
    task_status.started()
    while True:
        try:
            async with hold_lease(
                store.leases,
                RETENTION_LEASE,
                owner,
                ttl_seconds=lease_ttl_seconds,
                metrics=metrics,
            ):
                _log.info("this replica runs the retention purge")
                await _purge_daily(store, policy, first_after_seconds, every_seconds)
        except LeaseBusyError:
            _log.debug("another replica runs the retention purge; standing by")
        except LeaseLostError as lost:
            _log.warning("retention lease lost; standing by", lease=lost.name, epoch=lost.epoch)
        except StoreError as exc:
            _log.error("cannot take the retention lease; will try again", error=str(exc))
        await trio.sleep(standby_seconds)


async def _purge_daily(
    store: Store, policy: RetentionPolicy, first_after_seconds: float, every_seconds: float
) -> None:
    await trio.sleep(first_after_seconds)
    while True:
        try:
            counts = await store.purge_expired(policy)
            _log.info("retention purge done", removed=dict(counts.removed), total=counts.total)
        except StoreError as exc:
            _log.error("retention purge failed; retried tomorrow", error=describe_error(exc))
        await trio.sleep(every_seconds)
