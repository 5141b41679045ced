"""A `Retry-After` longer than the client may wait within a request: the outbox event is not
failed for good, nor retried sooner — its next attempt is scheduled that much later."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from sidecar.inbound import OutboxDeliverer
from sidecar.outbound import new_http_client
from sidecar.peer_guard import PeerGuard
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry, OutboxEvent
from sidecar.store.sqlite import SqliteStore
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from tests.conftest import FakeClock

TOKEN = "int_retry_after_token"
PATH = "events/trigger/acme_sale"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeShopimind, ShopimindClient]]:
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    async with running(api) as url, new_http_client() as http:
        yield api, ShopimindClient(base_url=url, http=http)


async def test_a_long_retry_after_reschedules_the_event(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    clock: FakeClock,
    fake: tuple[FakeShopimind, ShopimindClient],
) -> None:
    api, client = fake
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    await store.state.set_secret("i", ACCESS_TOKEN, TOKEN)
    claim = await store.outbox.enqueue(
        OutboxEntry(
            installation_id="i",
            dedup_key="k",
            action="sale",
            target="trigger_event:acme_sale",
            route="event:acme_sale",
            payload_json=json.dumps({"amount": 1}),
            idempotency_key="inbound-k",
        )
    )
    api.fail_next(1, status=503, retry_after=3600, path=PATH)  # an hour: the client waits 60 s
    deliverer = OutboxDeliverer(store=store, shopimind=client, clock=clock)

    with trio.fail_after(7200):
        started = trio.current_time()
        due = await deliverer.deliver_due()
        assert due is not None
        assert due - started >= 3600
        (event,) = await store.outbox.list(installation_id="i")
        assert (event.id, event.status, event.attempts) == (claim.id, "failed", 1)
        assert event.next_attempt_at == "2026-11-26T10:00:00.000Z"  # the clock said 09:00

        assert await deliverer.deliver_due() == due  # not sooner
        assert len(api.requests_to(PATH)) == 1

        await trio.sleep_until(due)
        assert await deliverer.deliver_due() is None
    (event,) = await store.outbox.list(installation_id="i")
    assert event.status == "delivered"
    retried = api.requests_to(PATH)
    assert len(retried) == 2
    assert retried[1].at - retried[0].at >= 3600


async def test_while_the_circuit_is_open_the_event_waits_for_its_cool_down(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    clock: FakeClock,
) -> None:
    """A call the open circuit refuses unsent is not an answer to back off from a second
    later: the next attempt is when the cool-down ends (one attempt per event and
    cool-down, not one per backoff step, while ShopiMind is down)."""
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    await _two_sales(store, "i")
    guard = PeerGuard("shopimind", failure_threshold=1, cool_down_seconds=40)
    async with running(api) as url, new_http_client() as http:
        client = ShopimindClient(base_url=url, http=http, guard=guard)
        deliverer = OutboxDeliverer(store=store, shopimind=client, clock=clock)
        api.fail_next(1, status=503, path=PATH)
        with trio.fail_after(600):
            # The first call fails (the client retries within the attempt: the circuit,
            # open after one failure, refuses the retry unsent).
            started = trio.current_time()
            due = await deliverer.deliver_due()
            assert guard.state == "open"
            assert due is not None
            assert due - started == pytest.approx(40, abs=1)
            first, second = sorted(await store.outbox.list(installation_id="i"), key=_id)
            assert (first.status, first.attempts) == ("failed", 1)
            assert (second.status, second.attempts) == ("queued", 0)  # never overtakes it
            assert "calls are paused" in (first.last_error or "")
            assert len(api.requests_to(PATH)) == 1

            await trio.sleep_until(due)
            assert await deliverer.deliver_due() is None
    events = await store.outbox.list(installation_id="i")
    assert [event.status for event in events] == ["delivered", "delivered"]
    assert len(api.requests_to(PATH)) == 3


async def test_while_the_circuit_is_open_no_installation_is_tried(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    clock: FakeClock,
) -> None:
    """An outage costs one wait, not an attempt per installation: while the circuit refuses
    every call unsent, the deliverer starts no lane (no lease, no read, no write); when it
    lets a call through, the events go, in order, all of them."""
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    installations = [f"i{n}" for n in range(20)]
    for installation_id in installations:
        await _two_sales(store, installation_id)
    guard = PeerGuard("shopimind", failure_threshold=1, cool_down_seconds=40)
    async with running(api) as url, new_http_client() as http:
        client = ShopimindClient(base_url=url, http=http, guard=guard)
        deliverer = OutboxDeliverer(store=store, shopimind=client, clock=clock, lanes=1)
        (await guard.admit()).finish(failed=True)  # ShopiMind just failed: open for 40 s
        stop = trio.Event()
        with trio.fail_after(600):
            async with trio.open_nursery() as nursery:
                await nursery.start(deliverer.run, stop)
                await trio.sleep(39)
                assert api.requests_to(PATH) == []
                events = await store.outbox.list(limit=100)
                assert {(e.status, e.attempts) for e in events} == {("queued", 0)}
                assert await store.leases.held() == []  # no lane took a lease
                for _ in range(120):  # the 40 events go once the cool-down is over
                    if len(api.requests_to(PATH)) == 40:
                        break
                    await trio.sleep(1)
                stop.set()
    events = await store.outbox.list(limit=100)
    assert {(e.status, e.attempts) for e in events} == {("delivered", 1)}
    for installation_id in installations:  # each installation's events in order
        keys = [
            r.headers["idempotency-key"]
            for r in api.requests_to(PATH)
            if r.headers.get("idempotency-key", "").startswith(f"inbound-{installation_id}-")
        ]
        assert keys == [f"inbound-{installation_id}-k0", f"inbound-{installation_id}-k1"]


async def _two_sales(store: SqliteStore, installation_id: str) -> None:
    """An active installation with its token, and two queued sales (k0, then k1)."""
    await store.installations.upsert(
        InstallationUpsert(installation_id=installation_id, status="active")
    )
    await store.state.set_secret(installation_id, ACCESS_TOKEN, TOKEN)
    for n in range(2):
        await store.outbox.enqueue(
            OutboxEntry(
                installation_id=installation_id,
                dedup_key=f"k{n}",
                action="sale",
                target="trigger_event:acme_sale",
                route="event:acme_sale",
                payload_json=json.dumps({"amount": n}),
                idempotency_key=f"inbound-{installation_id}-k{n}",
            )
        )


def _id(event: OutboxEvent) -> int:
    return event.id
