"""Cancelling the deliverer anywhere keeps the outbox consistent (DESIGN.md: cancellation-safe
like the cursor commits).

A trio Instrument counts the steps of the deliverer's tasks and cancels its scope at the
k-th, for every k until a run finishes first. After each cancellation: every event is still
there, none moved out of order, a delivered event reached ShopiMind exactly once and a
pending one at most once (its next attempt carries the same Idempotency-Key, so the fake
API, like the real one, applies it once). Then everything is delivered, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from sidecar.inbound import OutboxDeliverer
from sidecar.inbound.keys import upstream_idempotency_key
from sidecar.outbound import new_http_client
from sidecar.security.cipher import AesGcmCipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN
from sidecar.store import InstallationUpsert
from sidecar.store.records import OutboxEntry
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind

TOKEN = "int_cancel_token"
PLAN = (("a", "sale"), ("a", "order"), ("b", "sale"), ("a", "sale"), ("b", "order"))
MAX_STEPS = 5000


class CancelAtStep(trio.abc.Instrument):
    """Cancels `scope` after the `at`-th step of `root` or of a task descending from it."""

    def __init__(self, root: trio.lowlevel.Task, scope: trio.CancelScope, at: int) -> None:
        self.root, self.scope, self.at, self.steps = root, scope, at, 0

    def _ours(self, task: trio.lowlevel.Task) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.root:
                return True
            nursery = current.parent_nursery
            current = nursery.parent_task if nursery is not None else None
        return False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._ours(task):
            self.steps += 1
            if self.steps == self.at:
                self.scope.cancel(reason=f"test: cancelled at step {self.at}")


@pytest.fixture
async def store(tmp_path: Path, cipher: AesGcmCipher) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "outbox.sqlite", cipher=cipher)
    for installation_id in ("a", "b"):
        await opened.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )
        await opened.state.set_secret(installation_id, ACCESS_TOKEN, TOKEN)
    try:
        yield opened
    finally:
        await opened.aclose()


async def queue_round(store: SqliteStore, round_: int) -> list[int]:
    ids = []
    for position, (installation_id, action) in enumerate(PLAN):
        key = f"r{round_}-{position}"
        payload: object
        if action == "sale":
            route, target, payload = "event:acme_sale", "trigger_event:acme_sale", {"key": key}
        else:
            route, target, payload = "bulk:orders", "orders", [{"order_id": key}]
        claim = await store.outbox.enqueue(
            OutboxEntry(
                installation_id=installation_id,
                dedup_key=key,
                action=action,
                target=target,
                route=route,
                payload_json=json.dumps(payload),
                idempotency_key=upstream_idempotency_key(installation_id, key),
            )
        )
        ids.append(claim.id)
    return ids


async def check_consistent(
    store: SqliteStore, fake: FakeShopimind, round_: int, ids: list[int]
) -> None:
    events = [await store.outbox.get(event_id) for event_id in ids]
    assert all(event is not None for event in events), "an event was lost"
    statuses = [event.status for event in events if event is not None]
    assert set(statuses) <= {"queued", "failed", "delivered"}
    applied = [str(payload["key"]) for _, payload in fake.triggers] + [
        str(item["order_id"]) for item in fake.items("orders")
    ]
    for position, event in enumerate(events):
        assert event is not None
        key = f"r{round_}-{position}"
        times = applied.count(key)
        if event.status == "delivered":
            assert times == 1, f"{key} delivered but applied {times} times"
            assert event.attempts == 1
        else:
            assert times <= 1, f"{key} applied {times} times"
            assert event.attempts == 0
    for installation_id in ("a", "b"):
        mine = [s for (iid, _), s in zip(PLAN, statuses, strict=True) if iid == installation_id]
        delivered = [s == "delivered" for s in mine]
        assert delivered == sorted(delivered, reverse=True), f"out of order: {mine}"


# A request cancelled while httpx streams its body leaves httpx's body iterator to the
# garbage collector; trio reports that as a ResourceWarning. It is httpx's, and harmless.
@pytest.mark.filterwarnings(
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected"
    ":ResourceWarning"
)
async def test_cancelled_at_every_step_the_outbox_stays_consistent(store: SqliteStore) -> None:
    fake = FakeShopimind(tokens={TOKEN})
    fake.add_event("acme_sale")
    async with running(fake) as url, new_http_client() as http:
        shopimind = ShopimindClient(base_url=url, http=http)
        root = trio.lowlevel.current_task()
        round_ = 0
        for at in range(1, MAX_STEPS):
            round_ += 1
            ids = await queue_round(store, round_)
            # A fresh deliverer each time, as after a restart: nothing carried in memory.
            deliverer = OutboxDeliverer(store=store, shopimind=shopimind)
            with trio.CancelScope() as scope:
                instrument = CancelAtStep(root, scope, at)
                trio.lowlevel.add_instrument(instrument)
                try:
                    await deliverer.deliver_due()
                finally:
                    trio.lowlevel.remove_instrument(instrument)
            await check_consistent(store, fake, round_, ids)
            # Then a run to the end delivers everything, each event applied once, in order.
            assert await OutboxDeliverer(store=store, shopimind=shopimind).deliver_due() is None
            await check_consistent(store, fake, round_, ids)
            outcomes = [await store.outbox.get(event_id) for event_id in ids]
            assert [e.status for e in outcomes if e is not None] == ["delivered"] * len(PLAN)
            if not scope.cancelled_caught:
                break  # the run finished before step `at`: every step was cut once
        else:
            raise AssertionError(f"a delivery run took more than {MAX_STEPS} steps")
    assert at > 20  # the run really was cut at many places
    assert await store.outbox.counts() == {
        "queued": 0,
        "failed": 0,
        "delivered": len(PLAN) * round_,
        "dead": 0,
    }
