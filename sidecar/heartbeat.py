"""This replica in the replicas table: registered at start, a heartbeat every interval,
marked stopped on the way out (sidecar.store.interface.Replicas).

The heartbeat is how the other replicas and the operator (`GET /admin/replicas`,
`/health`, `sidecar_replicas_alive`) know who is running. It is information, never a
lease: a store error is logged and tried again at the next tick, and never stops the
sidecar. The stop is recorded shielded and within a bound, so a store that does not
answer cannot hold a shutdown.
"""

from __future__ import annotations

import os
import socket
from typing import Final

import trio

from sidecar import __version__
from sidecar.concurrency import describe_error
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.store.interface import Replicas
from sidecar.store.records import ReplicaRegistration

__all__ = [
    "DEFAULT_HEARTBEAT_TTL_SECONDS",
    "STOP_TIMEOUT_SECONDS",
    "heartbeat_interval_seconds",
    "registration",
    "run_heartbeat",
]

DEFAULT_HEARTBEAT_TTL_SECONDS: Final = 30.0
"""The alive window when the settings carry no LEASE_TTL_SECONDS."""
STOP_TIMEOUT_SECONDS: Final = 5.0

_log = get_logger("replicas")


def heartbeat_interval_seconds(ttl_seconds: float) -> float:
    """A heartbeat every TTL/3: a replica is declared dead after three missed beats."""
    return ttl_seconds / 3


def registration(replica_id: str, *, ttl_seconds: float) -> ReplicaRegistration:
    """This process as it registers: its id, version, host and pid; alive for a TTL
    after each heartbeat."""
    return ReplicaRegistration(
        id=replica_id,
        version=__version__,
        host=socket.gethostname(),
        pid=os.getpid(),
        alive_seconds=ttl_seconds,
    )


async def _beat(replicas: Replicas, replica: ReplicaRegistration, *, registered: bool) -> bool:
    """One heartbeat (a registration when not registered, or no longer known); whether
    the replica is registered now. A store error is logged, never raised."""
    try:
        if registered and await replicas.heartbeat(replica.id):
            return True
        await replicas.register(replica)
    except StoreError as exc:
        _log.warning(
            "replica heartbeat failed; trying again at the next one", error=describe_error(exc)
        )
        return False
    if registered:
        _log.info("replica registered again (its row was gone or marked stopped)")
    return True


async def run_heartbeat(
    replicas: Replicas,
    replica: ReplicaRegistration,
    *,
    interval_seconds: float,
    until: trio.Event,
    stop_timeout_seconds: float = STOP_TIMEOUT_SECONDS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Register `replica`, then heartbeat every `interval_seconds` until `until` is set
    (the drain is over) or the task is cancelled; then mark it stopped (shielded, within
    `stop_timeout_seconds`)."""
    registered = await _beat(replicas, replica, registered=False)
    if registered:
        _log.info("replica registered", version=replica.version, host=replica.host)
    task_status.started()
    try:
        while not until.is_set():
            with trio.move_on_after(interval_seconds):
                await until.wait()
            if not until.is_set():
                registered = await _beat(replicas, replica, registered=registered)
    finally:
        await _stopped(replicas, replica.id, stop_timeout_seconds)


async def _stopped(replicas: Replicas, replica_id: str, timeout_seconds: float) -> None:
    """Mark the replica stopped, shielded from the cancellation that ends the task, and
    given up after `timeout_seconds` (then it simply stops heartbeating: dead in a TTL)."""
    with trio.CancelScope(shield=True), trio.move_on_after(timeout_seconds) as bounded:
        try:
            await replicas.stopped(replica_id)
        except StoreError as exc:
            _log.warning("could not mark the replica stopped", error=describe_error(exc))
            return
        _log.info("replica marked stopped")
    if bounded.cancelled_caught:
        _log.warning(
            "could not mark the replica stopped in time; it counts as dead once its "
            "heartbeats are missed",
            timeout_seconds=timeout_seconds,
        )
