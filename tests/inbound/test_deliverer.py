"""The deliverer as a long-running part: one per database (a lease), woken when an event is
queued, draining on stop, and going by the stored retry time after a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import trio
import trio.testing

from sidecar.clock import format_timestamp
from sidecar.inbound import OutboxDeliverer
from sidecar.inbound.deliverer import outbox_lease_name
from sidecar.metrics.hooks import NoMetrics
from sidecar.outbound import new_http_client
from sidecar.security.cipher import AesGcmCipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry
from sidecar.store.sqlite import SqliteStore
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from tests.backends import Backend
from tests.conftest import CREDENTIALS_KEY_HEX, FakeClock
from tests.harness import LogWatch, trio_wall_clock

TOKEN = "int_deliverer_token"
DELIVERED = "inbound event delivered"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeShopimind, ShopimindClient]]:
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    async with running(api) as url, new_http_client() as http:
        yield api, ShopimindClient(base_url=url, http=http)


class FencedWrites(NoMetrics):
    """Counts the fenced writes refused."""

    def __init__(self) -> None:
        self.refused = 0

    def lease_fenced_write(self) -> None:
        self.refused += 1


@pytest.fixture
async def bstore(backend: Backend, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    """A store on each backend (typed as SQLite's: both implement `Store`)."""
    store = await backend.open(cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX)), clock=clock)
    try:
        yield store
    finally:
        await store.aclose()


async def queue(store: SqliteStore, key: str, installation_id: str = "i") -> int:
    if await store.installations.get(installation_id) is None:
        await store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )
        await store.state.set_secret(installation_id, ACCESS_TOKEN, TOKEN)
    claim = await store.outbox.enqueue(
        OutboxEntry(
            installation_id=installation_id,
            dedup_key=key,
            action="sale",
            target="trigger_event:acme_sale",
            route="event:acme_sale",
            payload_json=json.dumps({"key": key}),
            idempotency_key=f"inbound-{key}",
        )
    )
    return claim.id


async def test_two_deliverers_share_the_outbox_each_installation_in_order_none_twice(
    mock_clock: trio.testing.MockClock,
    bstore: SqliteStore,
    clock: FakeClock,
    outbox_log: LogWatch,
) -> None:
    store = bstore
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    api.slow_next(48, seconds=2, path="events/trigger/acme_sale")  # lanes overlap in time
    installations = [f"inst_{n}" for n in range(6)]
    for n in range(8):
        for iid in installations:
            await queue(store, f"{iid}-{n}", iid)
    calls: dict[str, int] = {"a": 0, "b": 0}
    async with running(api) as url, new_http_client() as http:

        def deliverer(name: str) -> OutboxDeliverer:
            def observe(outcome: str) -> None:
                calls[name] += 1

            client = ShopimindClient(base_url=url, http=http, observe=observe)
            # A lease longer than the test: MockClock may jump while a store call is out
            # (PostgreSQL), and this test is about order, not renewals.
            return OutboxDeliverer(
                store=store,
                shopimind=client,
                owner=f"replica-{name}:1:x",
                poll_seconds=5,
                lease_ttl_seconds=3600,
            )

        first, second = deliverer("a"), deliverer("b")
        stop_first, stop_second = trio.Event(), trio.Event()
        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                await nursery.start(first.run, stop_first)
                await outbox_log.wait_for(DELIVERED)  # a holds installations now
                await nursery.start(second.run, stop_second)  # b finds them busy
                await outbox_log.wait_for(DELIVERED, 12)
                # A replica stops mid-way: its lanes finish the attempt in hand and release
                # their leases; the other one takes those installations over.
                stop_first.set()
                await outbox_log.wait_for(DELIVERED, 48)
                stop_second.set()
    sent = api.requests_to("events/trigger/acme_sale")
    assert len(sent) == 48  # none sent twice (a replay would be a second request)
    assert calls["a"] + calls["b"] == 48
    assert calls["a"] > 0
    assert calls["b"] > 0  # both replicas delivered
    # b found a's installations busy and left them until a let them go.
    assert outbox_log.counts["another replica delivers this installation's outbox"] > 0
    keys = [payload["key"] for _, payload in api.triggers]
    for iid in installations:
        assert [k for k in keys if k.startswith(f"{iid}-")] == [f"{iid}-{n}" for n in range(8)]
    assert await store.outbox.counts() == {"queued": 0, "failed": 0, "delivered": 48, "dead": 0}
    for iid in installations:  # delivered under its lease, released when the lane ended
        lease = await store.leases.get(outbox_lease_name(iid))
        assert lease is not None
        assert lease.owner.startswith(("replica-a:1:x/", "replica-b:1:x/"))
        assert lease.expires_at <= format_timestamp(clock())


async def test_a_lane_whose_lease_is_taken_over_records_nothing_more(
    mock_clock: trio.testing.MockClock,
    bstore: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
    outbox_log: LogWatch,
) -> None:
    store = bstore
    api, client = fake
    api.slow_next(1, seconds=5, path="events/trigger/acme_sale")
    first = await queue(store, "k1")
    await queue(store, "k2")
    metrics = FencedWrites()
    deliverer = OutboxDeliverer(
        store=store, shopimind=client, owner="replica-a:1:x", metrics=metrics
    )
    stop = trio.Event()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(deliverer.run, stop)
            while not api.requests_to("events/trigger/acme_sale"):  # noqa: ASYNC110 - virtual time
                await trio.sleep(0.1)
            # Another replica takes the installation's outbox over while k1 is in flight.
            taken = await store.leases.acquire(
                outbox_lease_name("i"), "replica-b:2:y/1", ttl_seconds=600, takeover=lambda o: True
            )
            assert taken is not None
            await outbox_log.wait_for("outbox lease lost; this installation's delivery stopped")
            stop.set()
    # k1 reached ShopiMind, but its outcome was refused: still queued, for the new holder to
    # send again under the same Idempotency-Key; k2 was never sent by the old holder.
    assert len(api.requests_to("events/trigger/acme_sale")) == 1
    event = await store.outbox.get(first)
    assert event is not None
    assert event.status == "queued"
    assert await store.outbox.counts() == {"queued": 2, "failed": 0, "delivered": 0, "dead": 0}
    (meta,) = outbox_log.meta("outbox lease lost; this installation's delivery stopped")
    assert meta["lease"] == "outbox:i"
    assert meta["epoch"] == 1
    assert metrics.refused == 1  # the outcome of k1, counted


async def test_a_queued_event_wakes_the_deliverer_at_once(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
    outbox_log: LogWatch,
) -> None:
    _, client = fake
    deliverer = OutboxDeliverer(store=store, shopimind=client, poll_seconds=3600)
    stop = trio.Event()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(deliverer.run, stop)
            await outbox_log.wait_for("delivering the inbound outbox")
            await trio.testing.wait_all_tasks_blocked()
            started = trio.current_time()
            await queue(store, "k1")
            deliverer.wake("i")  # what the inbound route does
            await outbox_log.wait_for(DELIVERED)
            assert trio.current_time() - started < 1  # not the hour-long poll
            stop.set()


async def test_stopping_lets_the_attempt_in_flight_finish(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
    outbox_log: LogWatch,
) -> None:
    api, client = fake
    api.slow_next(1, seconds=5, path="events/trigger")
    deliverer = OutboxDeliverer(store=store, shopimind=client)
    await queue(store, "k1")
    await queue(store, "k2")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(deliverer.run, stop)
        with trio.fail_after(60):
            while not api.requests_to("events/trigger/acme_sale"):  # noqa: ASYNC110 - virtual time
                await trio.sleep(0.1)
        stop.set()
    # The slow attempt finished and was recorded; the next one was not started.
    assert [payload["key"] for _, payload in api.triggers] == ["k1"]
    assert await store.outbox.counts() == {"queued": 1, "failed": 0, "delivered": 1, "dead": 0}


async def test_a_restarted_deliverer_waits_for_the_stored_retry_time(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    clock: FakeClock,
    fake: tuple[FakeShopimind, ShopimindClient],
) -> None:
    api, client = fake
    event_id = await queue(store, "k1")
    retry_at = format_timestamp(clock() + timedelta(seconds=40))
    await store.outbox.mark_failed(event_id, error="HTTP 503", retry_at=retry_at)
    deliverer = OutboxDeliverer(store=store, shopimind=client, clock=clock)
    started = trio.current_time()
    next_due = await deliverer.deliver_due()
    assert next_due is not None
    assert next_due == pytest.approx(started + 40, abs=1)
    assert api.triggers == []
    await trio.sleep_until(next_due)
    assert await deliverer.deliver_due() is None
    assert [payload["key"] for _, payload in api.triggers] == ["k1"]
    event = await store.outbox.get(event_id)
    assert event is not None
    assert (event.status, event.attempts, event.last_error) == ("delivered", 2, None)


async def test_a_dead_replicas_outbox_is_taken_over_within_its_lease_not_at_the_poll(
    mock_clock: trio.testing.MockClock,
    backend: Backend,
    fake: tuple[FakeShopimind, ShopimindClient],
    outbox_log: LogWatch,
) -> None:
    """A replica on another host died holding an installation's outbox lease: the others
    find it busy, and look again every TTL/3, so its events go out once the lease expired
    (within TTL + TTL/3), not at the next poll."""
    api, client = fake
    ttl = 30.0
    store = await backend.open(
        cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX)), clock=trio_wall_clock
    )
    try:
        await queue(store, "k1")
        dead = await store.leases.acquire(
            outbox_lease_name("i"), "elsewhere:1:x/dead", ttl_seconds=ttl
        )
        assert dead is not None
        died = trio.current_time()
        deliverer = OutboxDeliverer(
            store=store, shopimind=client, poll_seconds=3600, lease_ttl_seconds=ttl
        )
        stop = trio.Event()
        with trio.fail_after(7200):
            async with trio.open_nursery() as nursery:
                await nursery.start(deliverer.run, stop)
                await outbox_log.wait_for(DELIVERED)
                delivered = trio.current_time()
                stop.set()
    finally:
        await store.aclose()
    assert outbox_log.counts["another replica delivers this installation's outbox"] > 0
    assert ttl <= delivered - died <= ttl + ttl / 3
    assert len(api.requests_to("events/trigger/acme_sale")) == 1
