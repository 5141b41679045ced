"""The outbox deliverer: queued inbound events reach ShopiMind, in order, whatever happens.

    run ── scheduler: at start and every POLL_SECONDS, the oldest pending event of each
           installation (`_scan`); in between, what `wake(installation)` and the lanes
           tell the `Schedule`. A lane for each installation whose next event is due;
           then sleep until the next is due or something happens. While ShopiMind's
           circuit is open (every call would be refused unsent), no lane starts: the
           scheduler sleeps until the circuit lets a call through.
           └── lanes (at most LANES at once): one installation's events, oldest first,
               under that installation's lease `outbox:{id}` (renewed while it runs)

Several replicas deliver one database's outbox: each lane first takes its installation's
lease, so one replica at a time delivers an installation's events (in order, none twice);
an installation whose lease another replica holds is left alone and looked at again after
POLL_SECONDS. Every outcome a lane records is fenced by its lease: a lane that stalled past
it and was taken over records nothing more (`LeaseLostError`) and ends.

Order per installation: a lane stops at the first event that failed transiently, so a
later event never overtakes it; it is tried again after a backoff (`RetryPolicy`, the
one policy of `sidecar.outbound`, capped at 5 minutes, never giving up). Installations do
not wait for each other. Within one attempt, `ShopimindClient` already retries transient
answers a few times, honouring `Retry-After`.

Durability: the delivery state is only in the store, each outcome one shielded
transaction (`attempts`). When the sidecar stops, lanes finish the attempt in hand and
take no new one.

Due times are kept on trio's clock (so tests drive backoff with MockClock); the stored
`next_attempt_at` (wall clock) is what a restarted deliverer, and the app, go by.
"""

from __future__ import annotations

import math
from typing import Final

import trio

from sidecar.clock import Clock, parse_timestamp, system_clock
from sidecar.errors import LeaseLostError
from sidecar.inbound.attempts import Attempts
from sidecar.inbound.schedule import Schedule
from sidecar.logs import get_logger
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.outbound import RetryPolicy
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store.interface import Store
from sidecar.store.records import Fence, OutboxEvent, OutboxHead
from sidecar.sync.fencing import lost_lease
from sidecar.sync.leases import LEASE_TTL_SECONDS, LeaseBusyError, hold_lease, new_owner

__all__ = [
    "LANES",
    "OUTBOX_POLICY",
    "POLL_SECONDS",
    "OutboxDeliverer",
    "outbox_lease_name",
]

POLL_SECONDS: Final = 30.0
"""Also look without being woken (events queued by another replica, a lease to take)."""
LANES: Final = 8
OUTBOX_POLICY: Final = RetryPolicy(base_seconds=1.0, cap_seconds=300.0)
_BATCH: Final = 50
_HEADS: Final = 10_000
_HOLD_AFTER_ERROR_SECONDS: Final = 5.0

_log = get_logger("outbox")


def outbox_lease_name(installation_id: str) -> str:
    """The lease under which one replica at a time delivers an installation's outbox."""
    return f"outbox:{installation_id}"


class OutboxDeliverer:
    """Delivers the outbox; `wake(installation_id)` when an event is queued."""

    def __init__(
        self,
        *,
        store: Store,
        shopimind: ShopimindClient,
        clock: Clock = system_clock,
        owner: str | None = None,
        policy: RetryPolicy = OUTBOX_POLICY,
        lanes: int = LANES,
        lease_ttl_seconds: float = LEASE_TTL_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._shopimind = shopimind
        self._clock = clock
        self.owner = owner or new_owner()
        self._policy = policy
        self._lanes = trio.CapacityLimiter(lanes)
        self._ttl = lease_ttl_seconds
        self._poll = poll_seconds
        # An installation another replica delivers is looked at again after a third of the
        # lease TTL: if that replica died, its lease has expired within TTL + TTL/3.
        self._busy_retry_seconds = min(poll_seconds, lease_ttl_seconds / 3)
        self._metrics = metrics
        self._attempts = Attempts(store=store, shopimind=shopimind, clock=clock, policy=policy)
        self._schedule = Schedule()
        self._due: dict[int, float] = {}
        """Event id → trio time of its next attempt, for events seen pending."""
        self._attempts_seen: dict[int, int] = {}
        """Event id → its attempts when last read under the lease: when another replica
        attempted it since, its stored retry time is what counts."""
        self._bell = trio.Event()
        self._rescan = True

    def wake(self, installation_id: str | None = None) -> None:
        """An event of `installation_id` was queued; with None, look at the whole outbox."""
        if installation_id is None:
            self._rescan = True
        elif not self._schedule.hint(installation_id):
            return
        self._bell.set()

    def statistics(self) -> trio.CapacityLimiterStatistics:
        """The lanes' limiter statistics (lanes busy, installations waiting for one)."""
        return self._lanes.statistics()

    # --- running ------------------------------------------------------------------------

    async def run(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver until `stop` is set, then let the attempts in flight finish and return."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._wake_on, stop)
            task_status.started()
            _log.info("delivering the inbound outbox", owner=self.owner)
            async with trio.open_nursery() as lanes:
                scanned_at = -math.inf
                while not stop.is_set():
                    if self._rescan or trio.current_time() >= scanned_at + self._poll:
                        self._rescan = False
                        await self._scan()
                        scanned_at = trio.current_time()
                    paused_until = self._paused_until()
                    if paused_until is None:
                        self._start_ready(lanes, stop)
                    next_due = self._schedule.next_due()
                    deadline = scanned_at + self._poll
                    wake_at = deadline if next_due is None else min(next_due, deadline)
                    await self._sleep_until(
                        wake_at if paused_until is None else max(wake_at, paused_until)
                    )
            nursery.cancel_scope.cancel(reason="outbox deliverer stopped")

    async def _wake_on(self, stop: trio.Event) -> None:
        await stop.wait()
        self._bell.set()

    async def _sleep_until(self, deadline: float) -> None:
        with trio.move_on_at(deadline):
            await self._bell.wait()
        self._bell = trio.Event()

    async def deliver_due(self) -> float | None:
        """Deliver every event due now and return when none is left: the trio time the next
        pending event is due, or None when nothing is pending. (What `run` does between two
        sleeps: for tests and one-off use.)"""
        while True:
            await self._scan()
            paused_until = self._paused_until()
            if paused_until is not None:
                next_due = self._schedule.next_due()
                return None if next_due is None else max(next_due, paused_until)
            async with trio.open_nursery() as lanes:
                started = self._start_ready(lanes, None)
            if not started:
                return self._schedule.next_due()

    # --- scheduling ---------------------------------------------------------------------

    def _paused_until(self) -> float | None:
        """While ShopiMind's circuit is open every attempt would be refused unsent: the trio
        time it lets a call through again (None: calls go). No lane starts before then, so
        an outage costs no lease, read or write per installation, only one wait."""
        seconds = self._shopimind.paused_for()
        return None if seconds <= 0 else trio.current_time() + seconds

    def _due_at(self, event: OutboxEvent | OutboxHead, now: float) -> float:
        due = self._due.get(event.id)
        if due is None:
            # First seen by this process: go by the stored wall-clock time, but never wait
            # longer than the policy's cap (a clock that jumped must not stall an event).
            try:
                wait = (parse_timestamp(event.next_attempt_at) - self._clock()).total_seconds()
            except ValueError:
                wait = 0.0
            due = now + min(max(0.0, wait), self._policy.cap_seconds)
            self._due[event.id] = due
        return due

    async def _scan(self) -> None:
        """Tell the schedule when each installation's oldest pending event is due."""
        heads = await self._store.outbox.heads(limit=_HEADS)
        now = trio.current_time()
        for head in heads:
            if not self._schedule.is_busy(head.installation_id):
                self._schedule.wait(head.installation_id, self._due_at(head, now))

    def _start_ready(self, nursery: trio.Nursery, stop: trio.Event | None) -> int:
        """Start a lane for each installation ready now; return how many."""
        ready = self._schedule.ready(trio.current_time())
        for installation_id in ready:
            self._schedule.start(installation_id)
            nursery.start_soon(self._lane, installation_id, stop)
        return len(ready)

    async def _lane(self, installation_id: str, stop: trio.Event | None) -> None:
        """Deliver one installation's due events in order, under its lease; stop at the
        first not yet due."""
        wait_until: float | None = None
        log = _log.bind(installation_id=installation_id)
        try:
            async with self._lanes:
                wait_until = await self._deliver_leased(installation_id, stop)
        except LeaseBusyError:
            # Another replica delivers it (or died holding it): look again soon.
            log.debug("another replica delivers this installation's outbox")
            wait_until = trio.current_time() + self._busy_retry_seconds
        except Exception as exc:
            lost = lost_lease(exc)
            if lost is None:
                log.exception("outbox lane failed; will try again")
                wait_until = trio.current_time() + _HOLD_AFTER_ERROR_SECONDS
            else:
                log.warning(
                    "outbox lease lost; this installation's delivery stopped",
                    lease=lost.name,
                    epoch=lost.epoch,
                )
                wait_until = trio.current_time() + self._poll
        finally:
            self._schedule.finish(installation_id, wait_until)
            self._bell.set()

    async def _deliver_leased(self, installation_id: str, stop: trio.Event | None) -> float | None:
        """Take the installation's outbox lease and deliver its due events in order; the
        time the first one not settled is due, or None. Read under the lease, so what the
        previous holder recorded is seen."""
        async with hold_lease(
            self._store.leases,
            outbox_lease_name(installation_id),
            self.owner,
            ttl_seconds=self._ttl,
            metrics=self._metrics,
        ) as lease:
            try:
                while stop is None or not stop.is_set():
                    events = await self._store.outbox.pending(installation_id, limit=_BATCH)
                    if not events:
                        return None
                    wait_until = await self._deliver_in_order(events, stop, lease.fence)
                    if wait_until is not None:
                        return wait_until
            except LeaseLostError:
                self._metrics.lease_fenced_write()  # a fenced outcome was refused
                raise
        return None

    async def _deliver_in_order(
        self, events: list[OutboxEvent], stop: trio.Event | None, fence: Fence
    ) -> float | None:
        """Deliver `events` in order; the time the first one not settled is due, or None
        when all were settled (or the deliverer is stopping)."""
        token = await self._store.state.get(events[0].installation_id, ACCESS_TOKEN)
        for event in events:
            if stop is not None and stop.is_set():
                return None
            if self._attempts_seen.get(event.id, event.attempts) != event.attempts:
                self._due.pop(event.id, None)
            self._attempts_seen[event.id] = event.attempts
            now = trio.current_time()
            due = self._due_at(event, now)
            if due > now:
                return due
            retry_in = await self._attempts.run(event, token, fence=fence)
            if retry_in is None:
                self._due.pop(event.id, None)
                self._attempts_seen.pop(event.id, None)
            else:
                self._attempts_seen[event.id] = event.attempts + 1  # ours, recorded
                self._due[event.id] = trio.current_time() + retry_in
                return self._due[event.id]
        return None
