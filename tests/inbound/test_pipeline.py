"""`POST /inbound/{action}` through HTTP: every answer of PROTOCOL §5, in its pipeline order."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

import sidecar.web.contexts
from sidecar.security import signature
from sidecar.security.signature import Verification
from tests.harness import LogWatch, Stack, inbound_headers, lifecycle, sidecar_stack

SALE = {"amount": 12.5, "store": "Paris"}
UNAUTHORIZED = {"success": False, "error": "unauthorized"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


@pytest.fixture
async def secret(stack: Stack) -> str:
    return await stack.activate()


def events(stack: Stack) -> list[tuple[object, ...]]:
    return stack.query("SELECT installation_id, dedup_key, action, status FROM inbound_events")


def outbox(stack: Stack) -> list[tuple[object, ...]]:
    return stack.query("SELECT event_id, action, route, status FROM inbound_outbox")


async def test_queued_call_is_accepted_at_once_and_delivered(
    stack: Stack, secret: str, outbox_log: LogWatch
) -> None:
    answer = await stack.inbound("sale", SALE, secret=secret)
    assert answer.status_code == 202
    event_id = answer.json()["id"]
    assert answer.json() == {"success": True, "id": event_id}
    with trio.fail_after(10):
        await outbox_log.wait_for("inbound event delivered")
    assert stack.shopimind.triggers == [("acme_sale", SALE)]
    trigger = stack.shopimind.requests_to("events/trigger/acme_sale")[0]
    assert trigger.headers["idempotency-key"].startswith("inbound-")
    status = await stack.inbound_status(event_id, secret=secret)
    event = status.json()["event"]
    assert event["status"] == "delivered"
    assert event["attempts"] == 1
    assert event["last_error"] is None
    assert event["next_attempt_at"] is None
    assert event["delivered_at"] is not None
    assert "amount" not in json.dumps(status.json())  # never the payload


async def test_missing_installation_header_is_400(stack: Stack, secret: str) -> None:
    answer = await stack.inbound("sale", SALE, secret=secret, installation_id=None)
    assert (answer.status_code, answer.json()) == (
        400,
        {"success": False, "error": "missing_installation_header"},
    )


async def test_unknown_installation_is_401_after_paying_the_same_hmac(
    stack: Stack, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_verify = signature.verify

    def counting_verify(**kwargs: object) -> Verification:
        seen.append(len(str(kwargs["secrets"][0])))  # type: ignore[index]
        return real_verify(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("sidecar.inbound.auth.verify", counting_verify)
    unknown = await stack.inbound("sale", SALE, secret=secret, installation_id="inst_ghost")
    known = await stack.inbound("sale", SALE, secret="insec_" + "1" * 48)
    assert (unknown.status_code, unknown.json()) == (401, UNAUTHORIZED)
    assert (known.status_code, known.json()) == (401, UNAUTHORIZED)
    # Both paid one HMAC with a secret of the same length: the answer says nothing more.
    assert seen == [len(secret), len(secret)]
    assert events(stack) == []


async def test_signature_made_with_another_installations_secret_is_401(stack: Stack) -> None:
    first = await stack.activate("inst_1")
    second = await stack.activate("inst_2")
    assert first != second
    forged = await stack.inbound("sale", SALE, secret=second, installation_id="inst_1")
    assert (forged.status_code, forged.json()) == (401, UNAUTHORIZED)
    assert (await stack.inbound("sale", SALE, secret=second, installation_id="inst_2")).is_success
    assert [row[0] for row in events(stack)] == ["inst_2"]


@pytest.mark.parametrize(
    "change",
    ["stale", "future", "no_timestamp", "no_signature", "short_signature", "body_changed"],
)
async def test_bad_signatures_are_401(stack: Stack, secret: str, change: str) -> None:
    body = json.dumps(SALE).encode()
    # Beyond the 60 s allowed ahead by enough that a slow request cannot bring it back in
    # (the exact bounds are the signature rule's own tests, on a fixed clock).
    offsets = {"stale": -301, "future": 90}
    headers = inbound_headers(
        body, secret=secret, timestamp=int(time.time()) + offsets.get(change, 0)
    )
    if change == "no_timestamp":
        del headers["x-integration-timestamp"]
    if change == "no_signature":
        del headers["x-integration-signature"]
    if change == "short_signature":
        headers["x-integration-signature"] = headers["x-integration-signature"][:40]
    if change == "body_changed":
        body = body.replace(b"12.5", b"99.5")
    answer = await stack.post("/inbound/sale", body, headers)
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


async def test_uninstalled_installation_is_401(stack: Stack, secret: str) -> None:
    await stack.webhook(lifecycle("uninstalled"))
    answer = await stack.inbound("sale", SALE, secret=secret)
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


async def test_per_installation_token_bucket_is_429(stack: Stack, secret: str) -> None:
    other = await stack.activate("inst_2")
    answers = [
        await stack.inbound("sale", {"n": n}, secret=secret, idempotency_key=f"k{n}")
        for n in range(25)
    ]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:20] == [202] * 20  # burst 20
    assert 429 in statuses[20:]
    refused = answers[statuses.index(429)]
    assert refused.json() == {"success": False, "error": "rate_limited"}
    # Another installation has its own bucket, and so do status lookups.
    assert (await stack.inbound("sale", SALE, secret=other, installation_id="inst_2")).is_success
    status = await stack.inbound_status(answers[0].json()["id"], secret=secret)
    assert status.status_code == 200


async def test_unknown_action_is_404(stack: Stack, secret: str) -> None:
    answer = await stack.inbound("refund", SALE, secret=secret)
    assert (answer.status_code, answer.json()) == (
        404,
        {"success": False, "error": "unknown_action"},
    )


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"a": NaN}', b"\xff\xfe", b"[" * 100 + b"]" * 100]
)
async def test_bad_json_is_400(stack: Stack, secret: str, body: bytes) -> None:
    answer = await stack.inbound("sale", body, secret=secret)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("action", "payload", "reason"),
    [
        ("sale", [1, 2], "an event's payload must be a JSON object"),
        ("member", {"name": "Ada"}, "a contact needs an email or a phone"),
        ("member", {"email": "not-an-address"}, "email must be a string holding an email"),
        ("order", {}, "the item must be a non-empty JSON object"),
        ("order", [{"order_id": 1}], "a bare JSON array is not accepted"),
        ("order", {"items": []}, "items must be a non-empty array of objects"),
        ("order", {"items": [{"order_id": 1}, 7]}, "items[1] must be a non-empty JSON object"),
        ("order", {"items": [{"order_id": n} for n in range(51)]}, "orders takes at most 50"),
        ("card", {"items": [{"card_number": str(n)} for n in range(21)]}, "at most 20"),
    ],
)
async def test_a_payload_of_the_wrong_shape_is_400_with_a_reason(
    stack: Stack, secret: str, action: str, payload: object, reason: str
) -> None:
    answer = await stack.inbound(action, payload, secret=secret)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_payload"
    assert reason in answer.json()["reason"]
    assert events(stack) == []


async def test_an_idempotency_key_that_is_too_long_is_400(stack: Stack, secret: str) -> None:
    answer = await stack.inbound("sale", SALE, secret=secret, idempotency_key="k" * 256)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_idempotency_key"


async def test_installation_not_usable_is_409_and_nothing_is_claimed(
    stack: Stack, secret: str
) -> None:
    await stack.webhook(lifecycle("deactivated"))
    answer = await stack.inbound("sale", SALE, secret=secret)
    assert (answer.status_code, answer.json()) == (409, {"success": False, "error": "no_context"})
    direct = await stack.inbound("member", {"email": "ada@example.com"}, secret=secret)
    assert direct.status_code == 409
    assert events(stack) == []
    assert outbox(stack) == []


async def test_unprovisioned_custom_data_is_409_with_a_reason(stack: Stack, secret: str) -> None:
    with stack.writable() as connection:
        connection.execute(
            "DELETE FROM installation_state WHERE key = 'provisioning' AND installation_id = ?",
            ("inst_1",),
        )
    answer = await stack.inbound("card", {"card_number": "C1", "customer_id": "c"}, secret=secret)
    assert answer.status_code == 409
    assert answer.json()["error"] == "not_provisioned"
    assert "loyalty_cards" in answer.json()["reason"]
    assert events(stack) == []


async def test_custom_data_goes_to_the_provisioned_definition(
    stack: Stack, secret: str, outbox_log: LogWatch
) -> None:
    answer = await stack.inbound("card", {"card_number": "C1", "customer_id": "c"}, secret=secret)
    assert answer.status_code == 202
    definition = next(
        ident
        for ident, row in stack.shopimind.definitions.items()
        if row["name"] == "loyalty_cards"
    )
    assert [row[:3] for row in outbox(stack)] == [
        (answer.json()["id"], "card", f"bulk:custom-data-records/{definition}")
    ]
    with trio.fail_after(10):
        await outbox_log.wait_for("inbound event delivered")
    assert stack.shopimind.records(definition) == [{"card_number": "C1", "customer_id": "c"}]


async def test_a_resend_is_a_replay_with_the_same_id(stack: Stack, secret: str) -> None:
    body = json.dumps(SALE).encode()
    headers = inbound_headers(body, secret=secret)
    first = await stack.post("/inbound/sale", body, headers)
    again = await stack.post("/inbound/sale", body, headers)
    assert first.status_code == 202
    assert (again.status_code, again.json()) == (
        200,
        {"success": True, "replayed": True, "id": first.json()["id"]},
    )
    # With the app's own key, even a different body (a new signature) is the same event.
    keyed = await stack.inbound("sale", SALE, secret=secret, idempotency_key="sale-77")
    rekeyed = await stack.inbound("sale", {"other": 1}, secret=secret, idempotency_key="sale-77")
    assert keyed.status_code == 202
    assert rekeyed.json() == {"success": True, "replayed": True, "id": keyed.json()["id"]}
    assert [row[1] for row in events(stack)] == [
        f"sig:sale:{headers['x-integration-signature']}",
        "sale-77",
    ]
    assert len(outbox(stack)) == 2


async def test_direct_call_answers_with_shopimind_result(stack: Stack, secret: str) -> None:
    contact = {"email": "ada@example.com", "first_name": "Ada"}
    first = await stack.inbound("member", contact, secret=secret, idempotency_key="m1")
    assert (first.status_code, first.json()) == (200, {"success": True, "created": True})
    again = await stack.inbound("member", contact, secret=secret, idempotency_key="m1")
    assert (again.status_code, again.json()) == (200, {"success": True, "replayed": True})
    update = await stack.inbound("member", contact, secret=secret, idempotency_key="m2")
    assert update.json() == {"success": True, "created": False}
    assert stack.query("SELECT dedup_key, status FROM inbound_events ORDER BY id") == [
        ("m1", "done"),
        ("m2", "done"),
    ]
    assert outbox(stack) == []  # direct calls are not queued


async def test_direct_call_failing_is_500_and_an_identical_retry_runs_again(
    stack: Stack, secret: str
) -> None:
    contact = {"email": "ada@example.com"}
    stack.shopimind.fail_next(2, status=503, path="contacts")  # the call and its one retry
    failed = await stack.inbound("member", contact, secret=secret, idempotency_key="m1")
    assert (failed.status_code, failed.json()) == (
        500,
        {"success": False, "error": "internal_error"},
    )
    row = stack.query("SELECT status, error FROM inbound_events")[0]
    assert row[0] == "failed"
    assert "503" in str(row[1])
    retried = await stack.inbound("member", contact, secret=secret, idempotency_key="m1")
    assert (retried.status_code, retried.json()) == (200, {"success": True, "created": True})
    assert stack.query("SELECT status, error FROM inbound_events") == [("done", None)]


async def test_direct_call_permanently_refused_is_500_too(stack: Stack, secret: str) -> None:
    stack.shopimind.fail_next(1, status=422, path="contacts")
    failed = await stack.inbound("member", {"email": "ada@example.com"}, secret=secret)
    assert failed.status_code == 500
    assert stack.query("SELECT status FROM inbound_events") == [("failed",)]


async def test_body_limits_and_media_type(stack: Stack, secret: str) -> None:
    big = json.dumps({"blob": "x" * (64 * 1024)}).encode()
    assert (await stack.inbound("sale", big, secret=secret)).status_code == 413
    body = json.dumps(SALE).encode()
    headers = inbound_headers(body, secret=secret) | {"content-type": "text/plain"}
    assert (await stack.post("/inbound/sale", body, headers)).status_code == 415


async def test_per_ip_limit_refuses_before_any_hmac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sidecar.web.contexts, "INBOUND_IP_RATE_BURST", 3)
    monkeypatch.setattr(sidecar.web.contexts, "INBOUND_IP_RATE_PER_SECOND", 0.001)
    calls: list[object] = []
    real_verify = signature.verify

    def counting_verify(**kwargs: object) -> Verification:
        calls.append(kwargs)
        return real_verify(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("sidecar.inbound.auth.verify", counting_verify)
    async with sidecar_stack(tmp_path) as stack:
        answers = [
            await stack.inbound("sale", SALE, secret="insec_" + "0" * 48, installation_id="x")
            for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert answers[3].json() == {"success": False, "error": "rate_limited"}
    assert int(answers[3].headers["retry-after"]) >= 1
    assert len(calls) == 3


async def test_event_status_is_signed_and_scoped_to_its_installation(stack: Stack) -> None:
    first = await stack.activate("inst_1")
    second = await stack.activate("inst_2")
    queued = await stack.inbound("sale", SALE, secret=first)
    event_id = queued.json()["id"]
    mine = await stack.inbound_status(event_id, secret=first)
    assert mine.status_code == 200
    assert mine.json()["event"]["id"] == event_id
    assert mine.json()["event"]["status"] in ("queued", "delivered")
    theirs = await stack.inbound_status(event_id, secret=second, installation_id="inst_2")
    assert (theirs.status_code, theirs.json()) == (404, {"success": False, "error": "not_found"})
    missing = await stack.inbound_status(9999, secret=first)
    assert missing.status_code == 404
    forged = await stack.inbound_status(event_id, secret=second, installation_id="inst_1")
    assert (forged.status_code, forged.json()) == (401, UNAUTHORIZED)
    assert (await stack.http.get(f"{stack.url}/inbound/events/abc")).status_code == 404
