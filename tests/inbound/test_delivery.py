"""The outbox deliverer against the fake ShopiMind, on trio's MockClock: retries, order,
Retry-After, dead letters, and at most one effect per event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.harness import LogWatch, Stack, inbound_headers, sidecar_stack

DELIVERED = "inbound event delivered"
DEAD = "inbound event rejected for good; moved to the dead-letter"
RETRY = "inbound event not delivered; will retry"
TRIGGER = "events/trigger/acme_sale"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # Every failure reaches the fake here: the circuit breaker (tests/test_peer_guard.py)
    # would refuse most of them without sending, which is not what these tests count.
    async with sidecar_stack(tmp_path, env={"CIRCUIT_FAILURE_THRESHOLD": "1000"}) as running:
        yield running


def outbox(stack: Stack) -> list[tuple[object, ...]]:
    return stack.query("SELECT event_id, status, attempts, last_error FROM inbound_outbox")


async def test_shopimind_down_for_a_while_then_everything_delivered_in_order(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.fail_next(40, status=503, path="events/trigger")
    ids = []
    for n in range(10):
        answer = await stack.inbound("sale", {"n": n}, secret=secret, idempotency_key=f"s{n}")
        assert answer.status_code == 202
        ids.append(answer.json()["id"])
    started = trio.current_time()
    with trio.fail_after(3600):
        await outbox_log.wait_for(DELIVERED, 10)
    # Nothing lost, nothing twice, in the order the app sent them.
    assert [payload["n"] for _, payload in stack.shopimind.triggers] == list(range(10))
    rows = outbox(stack)
    assert [row[1] for row in rows] == ["delivered"] * 10
    first_attempts = int(str(rows[0][2]))
    assert first_attempts > 1  # the first event waited for ShopiMind to come back
    assert all(row[2] == 1 for row in rows[1:])  # the others were held back, not tried
    assert all(row[3] is None for row in rows)
    assert len(outbox_log.meta(RETRY)) == first_attempts - 1
    # Backoff between rounds, so 40 failures took a while (virtual) rather than a burst.
    assert trio.current_time() - started > 20
    failed = stack.shopimind.requests_to(TRIGGER)[:40]
    assert len({r.headers["idempotency-key"] for r in failed}) == 1  # one key per event


async def test_429_retry_after_is_honoured(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.fail_next(1, status=429, retry_after=7, path="events/trigger")
    await stack.inbound("sale", {"n": 1}, secret=secret)
    with trio.fail_after(600):
        await outbox_log.wait_for(DELIVERED)
    first, second = stack.shopimind.requests_to(TRIGGER)
    assert second.at - first.at >= 7


async def test_a_422_is_dead_lettered_with_the_message_and_does_not_block_the_next(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.fail_next(1, status=422, path="events/trigger")
    bad = await stack.inbound("sale", {"n": 1}, secret=secret, idempotency_key="a")
    good = await stack.inbound("sale", {"n": 2}, secret=secret, idempotency_key="b")
    with trio.fail_after(600):
        await outbox_log.wait_for(DELIVERED)
    assert outbox_log.counts[DEAD] == 1
    assert [payload for _, payload in stack.shopimind.triggers] == [{"n": 2}]
    assert len(stack.shopimind.requests_to(TRIGGER)) == 2  # a 422 is not retried
    status = await stack.inbound_status(bad.json()["id"], secret=secret)
    event = status.json()["event"]
    assert (event["status"], event["attempts"]) == ("dead", 1)
    assert "HTTP 422" in event["last_error"]
    assert "injected fault" in event["last_error"]  # the API's own message
    letters = stack.query("SELECT entity, target, item_json, reason FROM rejected_items")
    assert len(letters) == 1
    entity, target, item, reason = letters[0]
    assert (entity, target, json.loads(str(item))) == (
        "inbound:sale",
        "trigger_event:acme_sale",
        {"n": 1},
    )
    assert "injected fault" in str(reason)
    assert (await stack.inbound_status(good.json()["id"], secret=secret)).json()["event"][
        "status"
    ] == "delivered"


async def test_50_concurrent_identical_calls_one_row_one_delivery(
    tmp_path: Path, outbox_log: LogWatch
) -> None:
    async with sidecar_stack(tmp_path) as stack:
        secret = await stack.activate()
        body = json.dumps({"amount": 10}).encode()
        headers = inbound_headers(body, secret=secret)
        answers = []

        async def call() -> None:
            answers.append(await stack.post("/inbound/sale", body, headers))

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(call)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses.count(202) == 1
        accepted = next(a for a in answers if a.status_code == 202).json()["id"]
        replays = [a.json() for a in answers if a.status_code == 200]
        assert replays == [{"success": True, "replayed": True, "id": accepted}] * len(replays)
        # The rest met the installation's bucket (burst 20): refused before any claim.
        assert statuses.count(202) + len(replays) >= 20
        assert set(statuses) <= {200, 202, 429}
        with trio.fail_after(10):
            await outbox_log.wait_for(DELIVERED)
        rows = stack.query("SELECT COUNT(*) FROM inbound_outbox")
    assert rows == [(1,)]
    assert len(stack.shopimind.requests_to(TRIGGER)) == 1
    assert stack.shopimind.triggers == [("acme_sale", {"amount": 10})]


async def test_an_answer_lost_in_transit_is_resent_and_applied_once(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.drop_next(1, path="events/trigger")  # processed, then the answer is cut
    await stack.inbound("sale", {"n": 1}, secret=secret)
    with trio.fail_after(600):
        await outbox_log.wait_for(DELIVERED)
    requests = stack.shopimind.requests_to(TRIGGER)
    assert len(requests) == 2
    assert requests[0].headers["idempotency-key"] == requests[1].headers["idempotency-key"]
    assert stack.shopimind.triggers == [("acme_sale", {"n": 1})]  # one effect


async def test_rejected_bulk_items_go_to_the_dead_letter(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.reject_when(
        lambda resource, item: "total must be positive" if item.get("total", 0) < 0 else None
    )
    partly = await stack.inbound(
        "order",
        {"items": [{"order_id": 1, "total": 5}, {"order_id": 2, "total": -1}]},
        secret=secret,
    )
    wholly = await stack.inbound("order", {"order_id": 3, "total": -3}, secret=secret)
    with trio.fail_after(600):
        await outbox_log.wait_for(DELIVERED)
        await outbox_log.wait_for(DEAD)
    first = (await stack.inbound_status(partly.json()["id"], secret=secret)).json()["event"]
    assert (first["status"], first["last_error"]) == (
        "delivered",
        "1 item(s) rejected; see the dead-letter",
    )
    second = (await stack.inbound_status(wholly.json()["id"], secret=secret)).json()["event"]
    assert second["status"] == "dead"
    assert "total must be positive" in second["last_error"]
    letters = stack.query("SELECT entity, item_json, reason FROM rejected_items ORDER BY id")
    assert [(e, json.loads(str(i))["order_id"], r) for e, i, r in letters] == [
        ("inbound:order", 2, "total must be positive"),
        ("inbound:order", 3, "total must be positive"),
    ]
    assert stack.shopimind.count("orders") == 1


async def test_an_installation_failing_holds_only_its_own_later_events(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    first = await stack.activate("inst_1")
    second = await stack.activate("inst_2")
    stack.shopimind.fail_next(8, status=503, path="events/trigger")
    await stack.inbound("sale", {"n": 1}, secret=first)
    await stack.inbound("order", {"order_id": "o1"}, secret=first)
    await stack.inbound("order", {"order_id": "o2"}, secret=second, installation_id="inst_2")
    with trio.fail_after(3600):
        await outbox_log.wait_for(DELIVERED, 3)
    order = [m["event_id"] for m in outbox_log.meta(DELIVERED)]
    assert order[0] == 3  # inst_2 did not wait for inst_1's trouble
    assert order[1:] == [1, 2]  # inst_1's order never overtook its sale
    sale_at = stack.shopimind.requests_to(TRIGGER)[-1].at
    o1 = next(r for r in stack.shopimind.requests_to("orders") if r.json[0]["order_id"] == "o1")
    assert o1.at >= sale_at


async def test_an_uninstalled_installation_s_events_are_dead_lettered(
    mock_clock: trio.testing.MockClock, stack: Stack, outbox_log: LogWatch
) -> None:
    secret = await stack.activate()
    stack.shopimind.fail_next(4, status=503, path="events/trigger")  # one whole attempt
    answer = await stack.inbound("sale", {"n": 1}, secret=secret)
    with trio.fail_after(600):
        await outbox_log.wait_for(RETRY)
        with stack.writable() as connection:  # what the uninstall does to the token
            connection.execute("DELETE FROM installation_state WHERE key = 'access_token'")
        await outbox_log.wait_for(DEAD)
    event = (await stack.inbound_status(answer.json()["id"], secret=secret)).json()["event"]
    assert event["status"] == "dead"
    assert "no access token" in event["last_error"]
    assert stack.query("SELECT COUNT(*) FROM rejected_items") == [(1,)]
