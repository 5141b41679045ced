"""Poison isolation in the outbox: an event that can never be delivered is set aside in the
dead-letter with its reason, and the events queued behind it (same installation) flow on;
the operator sees it, a replay is refused with the same reason, a purge removes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

import sidecar.inbound.delivery as delivery_module
from sidecar.admin.deps import AdminDeps, Caller
from sidecar.admin.paging import Page
from sidecar.admin.service import AdminService
from sidecar.bridge import AppBridge
from sidecar.declaration import load_declaration
from sidecar.declaration.manifest import build_manifest
from sidecar.inbound import OutboxDeliverer
from sidecar.inbound.attempts import POISON_AFTER_ATTEMPTS
from sidecar.outbound import new_http_client
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.engine import RunReport
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from tests.conftest import APP_SECRET
from tests.harness import EXAMPLE

TOKEN = "int_poison_token"
IID = "inst_poison"
INFINITY_REASON = "item cannot be encoded as JSON: $.amount is not a finite number (inf)"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeShopimind, ShopimindClient]]:
    api = FakeShopimind(tokens={TOKEN})
    api.add_event("acme_sale")
    async with running(api) as url, new_http_client() as http:
        yield api, ShopimindClient(base_url=url, http=http)


async def _queue(store: SqliteStore, key: str, payload_json: str, route: str = "") -> int:
    if await store.installations.get(IID) is None:
        await store.installations.upsert(InstallationUpsert(installation_id=IID, status="active"))
        await store.state.set_secret(IID, ACCESS_TOKEN, TOKEN)
    claim = await store.outbox.enqueue(
        OutboxEntry(
            installation_id=IID,
            dedup_key=key,
            action="sale",
            target="trigger_event:acme_sale",
            route=route or "event:acme_sale",
            payload_json=payload_json,
            idempotency_key=f"inbound-{key}",
        )
    )
    return claim.id


async def _no_sync(installation_id: str, *, full: bool) -> RunReport:
    raise AssertionError("no sync in this test")  # pragma: no cover - never called


async def test_a_poison_event_is_set_aside_and_the_next_ones_flow_on(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
) -> None:
    api, client = fake
    # Queued before any door refused such values: `1e400` reads as infinity.
    first = await _queue(store, "a", '{"amount": 10, "key": "a"}')
    poison = await _queue(store, "b", '{"amount": 1e400, "key": "b"}')
    last = await _queue(store, "c", '{"amount": 30, "key": "c"}')
    deliverer = OutboxDeliverer(store=store, shopimind=client)
    with trio.fail_after(60):
        assert await deliverer.deliver_due() is None  # nothing left pending: nothing waits

    assert [payload["key"] for _, payload in api.triggers] == ["a", "c"]  # in order
    states = {e.id: e for e in await store.outbox.list(installation_id=IID)}
    assert (states[first].status, states[last].status) == ("delivered", "delivered")
    assert states[poison].status == "dead"
    assert states[poison].last_error == INFINITY_REASON
    (dead,) = await store.dead_letter.list(installation_id=IID)
    assert dead.reason == INFINITY_REASON
    assert dead.entity == "inbound:sale"
    assert json.loads(dead.item_json) == {"amount": "<unencodable: inf>", "key": "b"}

    async with new_http_client() as http:
        service = AdminService(
            AdminDeps(
                store=store,
                declaration=(declaration := load_declaration(EXAMPLE)),
                manifest=build_manifest(declaration),
                bridge=AppBridge(base_url="http://127.0.0.1:9/app", secret=APP_SECRET, http=http),
                shopimind=client,
                owner="host:1:test",
                start_sync=_no_sync,
            )
        )
        operator = Caller(actor="cli:ops")
        shown = await service.dead_letter(IID, Page())
        assert [item["reason"] for item in shown["items"]] == [INFINITY_REASON]  # type: ignore[attr-defined]

        replayed = await service.replay(IID, [dead.id], caller=operator)
        assert (replayed["accepted"], replayed["rejected"], replayed["removed"]) == (0, 1, 0)
        assert replayed["items"] == [{"id": dead.id, "outcome": "rejected", "reason": dead.reason}]
        assert [payload["key"] for _, payload in api.triggers] == ["a", "c"]  # nothing sent

        purged = await service.purge(IID, [dead.id], caller=operator)
        assert purged == {"removed": 1}
        assert await store.dead_letter.list(installation_id=IID) == []

    audit = [(e.action, json.loads(e.detail_json)) for e in reversed(await store.audit.list())]
    assert audit == [
        (
            "dead_letter.replay",
            {"outcome": "ok", "accepted": 0, "rejected": 1, "failed": 0, "removed": 0},
        ),
        ("dead_letter.purge", {"outcome": "ok", "removed": 1}),
    ]


async def test_a_bulk_event_sends_its_good_items_and_sets_the_poison_one_aside(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
) -> None:
    api, client = fake
    items = '[{"id": "v1", "amount": 1}, {"id": "v2", "amount": NaN}, {"id": "v3", "amount": 3}]'
    event = await _queue(store, "bulk", items, route="bulk:vouchers")
    with trio.fail_after(60):
        await OutboxDeliverer(store=store, shopimind=client).deliver_due()
    assert [item["id"] for item in api.items("vouchers")] == ["v1", "v3"]
    (state,) = await store.outbox.list(installation_id=IID)
    assert (state.id, state.status) == (event, "delivered")
    (dead,) = await store.dead_letter.list(installation_id=IID)
    assert (
        dead.reason == "item 'v2' cannot be encoded as JSON: $.amount is not a finite number (nan)"
    )


async def test_the_same_unexpected_error_again_and_again_sets_the_event_aside(
    mock_clock: trio.testing.MockClock,
    store: SqliteStore,
    fake: tuple[FakeShopimind, ShopimindClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, client = fake
    real_deliver = delivery_module.deliver

    async def deliver(api_: object, route: object, body: object, **kwargs: object) -> object:
        if isinstance(body, dict) and body.get("key") == "bug":
            raise RuntimeError("a bug that happens every time")
        return await real_deliver(api_, route, body, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("sidecar.inbound.attempts.deliver", deliver)
    stuck = await _queue(store, "bug", '{"key": "bug"}')
    behind = await _queue(store, "after", '{"key": "after"}')
    deliverer = OutboxDeliverer(store=store, shopimind=client)
    with trio.fail_after(3600):
        for _ in range(POISON_AFTER_ATTEMPTS - 1):
            due = await deliverer.deliver_due()
            assert due is not None  # held: a transient-looking failure keeps the order
            assert api.triggers == []
            await trio.sleep_until(due)
        assert await deliverer.deliver_due() is None

    states = {e.id: e for e in await store.outbox.list(installation_id=IID)}
    assert states[stuck].status == "dead"
    assert states[stuck].attempts == POISON_AFTER_ATTEMPTS
    assert states[stuck].last_error == (
        f"failed {POISON_AFTER_ATTEMPTS} times in a row with the same error: "
        "RuntimeError: a bug that happens every time"
    )
    assert states[behind].status == "delivered"
    assert [payload["key"] for _, payload in api.triggers] == ["after"]
