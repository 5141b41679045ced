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
from sidecar.inbound.deliverer import LEASE_NAME
from sidecar.outbound import new_http_client
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry
from sidecar.store.sqlite import SqliteStore
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from tests.conftest import FakeClock
from tests.harness import LogWatch

TOKEN = "int_deliverer_token"
DELIVERED = "inbound event delivered"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeShopimind, ShopimindClient]]:
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    async with running(api) as url, new_http_client() as http:
        yield api, ShopimindClient(base_url=url, http=http)


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


async def test_one_deliverer_per_database_and_a_takeover_when_it_stops(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
    outbox_log: LogWatch,
) -> None:
    api, client = fake
    first = OutboxDeliverer(store=store, shopimind=client, owner="host:1:first")
    second = OutboxDeliverer(store=store, shopimind=client, owner="host:1:second")
    stop_first, stop_second = trio.Event(), trio.Event()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run, stop_first)
            await outbox_log.wait_for("delivering the inbound outbox")
            await nursery.start(second.run, stop_second)
            await outbox_log.wait_for("another process delivers the inbound outbox; standing by")
            await queue(store, "k1")
            first.wake("i")
            second.wake("i")
            await outbox_log.wait_for(DELIVERED)
            lease = await store.leases.get(LEASE_NAME)
            assert lease is not None
            assert lease.owner == "host:1:first"
            stop_first.set()  # releases the lease on its way out
            await outbox_log.wait_for("delivering the inbound outbox", 2)
            await queue(store, "k2")
            second.wake("i")
            await outbox_log.wait_for(DELIVERED, 2)
            stop_second.set()
    assert [payload["key"] for _, payload in api.triggers] == ["k1", "k2"]
    assert [m["owner"] for m in outbox_log.meta("delivering the inbound outbox")] == [
        "host:1:first",
        "host:1:second",
    ]
    assert await store.leases.held() == []  # released (the row stays, with its epoch)


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
