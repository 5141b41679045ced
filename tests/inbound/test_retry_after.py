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
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry
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
