"""Exclusive work across processes and hosts: a lease row in the store, and its fence.

Replicas (and a `shopimind-sidecar sync` run from the CLI) share one database, so "one
installation never syncs twice at once" cannot be an in-memory lock. Whoever works on an
installation holds its lease (`hold_lease`): a renewal task renews it every third of its
TTL, and the work runs in a cancel scope that ends, by this process's own monotonic
clock, before the lease can have expired since the last successful renewal (TTL minus a
margin) — so a holder that stalls or loses the database has stopped before anyone else
may take over. A takeover gives the name a new epoch; the old holder's fenced writes
(`fence=`) then change nothing and raise LeaseLostError, which ends its work.

A holder that died on this host is recognised at once (its owner id names a pid that is
gone); elsewhere, its lease simply expires by the database's clock.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import trio

from sidecar.concurrency import commit
from sidecar.config import DEFAULT_LEASE_TTL_SECONDS
from sidecar.errors import LeaseLostError, SidecarError, StoreError
from sidecar.logs import get_logger
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.store.interface import Leases
from sidecar.store.records import Fence

__all__ = [
    "LEASE_TTL_SECONDS",
    "LeaseBusyError",
    "LeaseHandle",
    "LeaseLostError",
    "hold_lease",
    "holder_id",
    "installation_lease_name",
    "new_owner",
    "owner_is_alive",
    "owner_is_dead",
]

_log = get_logger("leases")

LEASE_TTL_SECONDS: Final = DEFAULT_LEASE_TTL_SECONDS
"""The default TTL of `hold_lease` (the LEASE_TTL_SECONDS setting's default)."""
RENEWALS_PER_TTL: Final = 3
"""A holder renews every TTL/3: two renewals may fail before the lease is at risk."""
MARGIN_FRACTION: Final = 1 / 6
"""The body stops TTL/6 before the lease could expire: room for clock rate differences
and for the stop itself."""


class LeaseBusyError(SidecarError):
    """Someone else holds the lease (e.g. the installation is already syncing)."""

    def __init__(self, name: str, holder: str | None) -> None:
        self.name = name
        self.holder = holder
        super().__init__(f"{name} is busy (held by {holder or 'another process'})")


def installation_lease_name(installation_id: str) -> str:
    """The lease that keeps one installation from syncing (or provisioning) twice at once."""
    return f"installation:{installation_id}"


def new_owner() -> str:
    """An owner id for one running sidecar (or CLI command): host, pid, and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _host_and_pid(owner: str) -> tuple[str, int] | None:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` is a process of this host that no longer exists."""
    parsed = _host_and_pid(owner)
    if parsed is None or parsed[0] != socket.gethostname():
        return False
    try:
        os.kill(parsed[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


def owner_is_alive(owner: str | None) -> bool:
    """The opposite of `owner_is_dead`, with no owner counting as dead (nobody to wait for)."""
    return owner is not None and not owner_is_dead(owner)


@dataclass(frozen=True, slots=True)
class LeaseHandle:
    """A lease held by `hold_lease`: pass `fence` to every write made for its work."""

    name: str
    fence: Fence
    taken_from: str | None
    """The holder whose unreleased lease we took over (it expired or died), or None."""

    @property
    def owner(self) -> str:
        """This hold's holder id (`<owner>/<8 hex>`)."""
        return self.fence.owner


def holder_id(owner: str) -> str:
    """A holder id for one hold by `owner`: two holds never share a lease."""
    return f"{owner}/{secrets.token_hex(4)}"


@dataclass(slots=True)
class _Renewal:
    """What the renewal task tells the body's side."""

    lost: bool = False
    """A renewal found the lease taken (as opposed to the deadline passing)."""


async def _keep_renewed(
    leases: Leases,
    fence: Fence,
    ttl_seconds: float,
    body: trio.CancelScope,
    renewal: _Renewal,
    metrics: Metrics,
    clock: Callable[[], float],
) -> None:
    """Renew every TTL/3; each success moves the body's deadline to (when that renewal was
    sent) + TTL - margin. A lost lease cancels the body at once; a store failure is retried
    at the next tick and leaves the deadline where it was."""
    interval = ttl_seconds / RENEWALS_PER_TTL
    keep = ttl_seconds - ttl_seconds * MARGIN_FRACTION
    tick = clock()
    while True:
        tick = max(tick + interval, clock())
        await trio.sleep_until(tick)
        sent = clock()
        try:
            kept = await leases.renew(fence, ttl_seconds=ttl_seconds)
        except StoreError as exc:
            metrics.lease_renew_failed()
            _log.warning(
                "cannot renew a lease; will try again",
                lease=fence.name,
                epoch=fence.epoch,
                error=str(exc),
            )
            continue
        if not kept:
            metrics.lease_renew_failed()
            _log.error(
                "lost a lease to another holder; stopping its work",
                lease=fence.name,
                epoch=fence.epoch,
            )
            renewal.lost = True
            body.cancel(reason=f"lease {fence.name} lost")
            return
        body.deadline = max(body.deadline, sent + keep)


@asynccontextmanager
async def hold_lease(
    leases: Leases,
    name: str,
    owner: str,
    *,
    ttl_seconds: float = LEASE_TTL_SECONDS,
    metrics: Metrics = NO_METRICS,
    clock: Callable[[], float] = trio.current_time,
) -> AsyncIterator[LeaseHandle]:
    """Hold `name` for the block, or raise LeaseBusyError at once if someone else does.

    Each hold is its own holder (`owner` plus a random tag): a lease row taken by one
    task of this process is busy for every other task of it too — a sync run, a
    provisioning and an operator's action never share an installation.

    While the block runs, a task renews the lease every `ttl_seconds`/3. The block runs in
    a cancel scope whose deadline is TTL - TTL/6 after the last successful renewal was
    sent (or the acquisition): when a renewal finds the lease lost, or the renewals fail
    until that deadline, the block is cancelled, and once its cleanup has run this raises
    LeaseLostError. The lease is released on the way out (shielded). `clock` is trio's
    clock (or one in step with it): the deadline is a trio deadline.
    """
    if not ttl_seconds > 0:
        raise ValueError(f"a lease's ttl_seconds must be more than 0; got {ttl_seconds!r}")
    holder = holder_id(owner)
    sent = clock()
    try:
        grant = await leases.acquire(name, holder, ttl_seconds=ttl_seconds, takeover=owner_is_dead)
    except trio.Cancelled:
        # The store may have granted it before the cancellation reached us: give it back
        # rather than keep everyone else out for a whole TTL.
        await _release_if_held_by(leases, name, holder)
        raise
    if grant is None:
        current = await leases.get(name)
        raise LeaseBusyError(name, current.owner if current else None)
    fence = grant.fence
    metrics.lease_acquired(took_over=grant.taken_from is not None)
    if grant.taken_from is not None:
        _log.info(
            "took over a lease its holder did not release",
            lease=name,
            epoch=fence.epoch,
            taken_from=grant.taken_from,
        )
    body = trio.CancelScope(deadline=sent + ttl_seconds - ttl_seconds * MARGIN_FRACTION)
    renewal = _Renewal()
    try:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    _keep_renewed, leases, fence, ttl_seconds, body, renewal, metrics, clock
                )
                try:
                    with body:
                        yield LeaseHandle(name=name, fence=fence, taken_from=grant.taken_from)
                finally:
                    nursery.cancel_scope.cancel(reason=f"{name}'s work ended")
        except BaseExceptionGroup as group:
            # The nursery only wraps what the block raised (the renewal task raises
            # nothing on purpose): the caller sees the block's own exception.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from group.exceptions[0].__cause__
            raise
    finally:
        await _release(leases, fence)
    if body.cancelled_caught:
        why = "taken over" if renewal.lost else "not renewed in time"
        raise LeaseLostError(
            name,
            fence.owner,
            fence.epoch,
            f"lost the lease {name} (epoch {fence.epoch}): {why}; its work was stopped",
        )


async def _release_if_held_by(leases: Leases, name: str, holder: str) -> None:
    async def release() -> None:
        lease = await leases.get(name)
        if lease is not None and lease.owner == holder:  # a holder id is never reused
            await leases.release(Fence(name=name, owner=holder, epoch=lease.epoch))

    try:
        await commit(release, what=f"{name}'s release", log=_log)
    except StoreError as exc:
        _log.warning("cannot release a lease; it will expire", lease=name, error=str(exc))


async def _release(leases: Leases, fence: Fence) -> None:
    try:
        await commit(lambda: leases.release(fence), what=f"{fence.name}'s release", log=_log)
    except StoreError as exc:
        # Not released: it expires by itself, and nobody else is waiting on us for it.
        _log.warning("cannot release a lease; it will expire", lease=fence.name, error=str(exc))
