"""Bad input on the public routes: each gets a clear JSON error and loses nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.security.signature import sign
from tests.conftest import WEBHOOK_SECRET
from tests.harness import Stack, lifecycle, sidecar_stack, signed_headers


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


async def test_forged_signature(stack: Stack) -> None:
    response = await stack.webhook(lifecycle("installed"), secret="not-the-secret")
    assert (response.status_code, response.json()) == (
        401,
        {"success": False, "error": "unauthorized"},
    )


@pytest.mark.parametrize("offset", [-301, 61, -86400])
async def test_stale_or_future_timestamp(stack: Stack, offset: int) -> None:
    response = await stack.webhook(lifecycle("installed"), timestamp=int(time.time()) + offset)
    assert response.status_code == 401


@pytest.mark.parametrize("dropped", ["x-shopimind-timestamp", "x-shopimind-signature"])
async def test_missing_headers(stack: Stack, dropped: str) -> None:
    body = _body(lifecycle("installed"))
    headers = signed_headers(body)
    del headers[dropped]
    assert (await stack.post("/webhook/receive", body, headers)).status_code == 401


async def test_signature_of_the_wrong_length(stack: Stack) -> None:
    body = _body(lifecycle("installed"))
    headers = signed_headers(body)
    headers["x-shopimind-signature"] = headers["x-shopimind-signature"][:40]
    assert (await stack.post("/webhook/receive", body, headers)).status_code == 401


async def test_non_json_body(stack: Stack) -> None:
    body = b"event=integration.installed&installation_id=1"
    response = await stack.post("/webhook/receive", body, signed_headers(body))
    assert (response.status_code, response.json()) == (
        400,
        {"success": False, "error": "invalid_json", "rule": "invalid_json"},
    )
    (logged,) = stack.query("SELECT event, signature_ok, payload_json FROM webhook_log")
    assert logged[0] == "webhook"
    assert logged[1] == 1
    assert json.loads(str(logged[2]))["bytes"] == len(body)  # a placeholder, not the body


async def test_deeply_nested_json(stack: Stack) -> None:
    body = b'{"event": "integration.installed", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await stack.post("/webhook/receive", body, signed_headers(body))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_json")


# The sidecar answers 413 without reading the body; httpx may then leave its own body
# generator unclosed (httpx #3686): harmless, and the only warning tolerated here.
@pytest.mark.filterwarnings("ignore:Async generator 'httpx._content.ByteStream:ResourceWarning")
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object ByteStream:"
    "pytest.PytestUnraisableExceptionWarning"
)
async def test_two_mebibyte_body(stack: Stack) -> None:
    payload = lifecycle("installed", padding="x" * (2 * 1024 * 1024))
    response = await stack.webhook(payload)
    assert (response.status_code, response.json()) == (
        413,
        {"success": False, "error": "payload_too_large"},
    )


async def test_wizard_body_limit_is_64_kib(stack: Stack) -> None:
    response = await stack.webhook({"api_key": "x" * 70_000}, path="/webhook/test-connection")
    assert response.status_code == 413
    logged = stack.query("SELECT event, payload_json FROM webhook_log")
    assert [(event, json.loads(str(text))["refused"]) for event, text in logged] == [
        ("test_connection", "payload_too_large")
    ]
    assert all("xxxx" not in str(text) for _, text in logged)


async def test_chunked_body_without_length_is_still_capped(stack: Stack) -> None:
    body = _body(lifecycle("installed", padding="y" * (1024 * 1024 + 10)))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: capped while reading
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await stack.http.post(
        stack.url + "/webhook/receive", content=chunks(), headers=signed_headers(body)
    )
    assert response.status_code == 413


async def test_wrong_content_type(stack: Stack) -> None:
    body = _body(lifecycle("installed"))
    headers = signed_headers(body) | {"content-type": "text/plain"}
    response = await stack.post("/webhook/receive", body, headers)
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")
    # Logged first all the same (PROTOCOL §1.3), without the body it did not read.
    assert stack.query(
        "SELECT event, installation_id, signature_ok, payload_json FROM webhook_log"
    ) == [
        (
            "webhook",
            None,
            0,
            json.dumps({"refused": "unsupported_media_type", "status": 415, "bytes": len(body)}),
        )
    ]


async def test_json_content_type_with_charset_is_fine(stack: Stack) -> None:
    body = _body(lifecycle("installed"))
    headers = signed_headers(body) | {"content-type": "application/json; charset=utf-8"}
    assert (await stack.post("/webhook/receive", body, headers)).json() == {"success": True}


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "integration.installed", "installation_id": 42},
        {"event": "integration.activated", "installation_id": {"id": "x"}},
        {"event": "integration.installed", "installation_id": ["inst_1"]},
        {"event": "integration.installed", "installation_id": "i", "configs": "api_key=1"},
        {"event": "integration.installed", "installation_id": "i", "configs": [1, 2]},
        {"event": "integration.installed", "installation_id": "i", "access_token": 12345},
        {"event": 7, "installation_id": "i"},
        {"installation_id": "i"},
        ["integration.installed"],
        "integration.installed",
    ],
)
async def test_malformed_payloads(stack: Stack, payload: object) -> None:
    response = await stack.webhook(payload)
    assert (response.status_code, response.json()) == (
        400,
        {"success": False, "error": "invalid_payload"},
    )
    assert stack.query("SELECT COUNT(*) FROM installations") == [(0,)]


async def test_unknown_route_and_method(stack: Stack) -> None:
    missing = await stack.http.get(stack.url + "/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"success": False, "error": "not_found"})
    wrong = await stack.http.get(stack.url + "/webhook/receive")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")


@pytest.fixture
def frozen_clock() -> trio.testing.MockClock:
    """trio time stands still: the rate limiter's buckets do not refill during the test."""
    return trio.testing.MockClock()


async def test_rate_limit_runs_before_the_signature_check(
    frozen_clock: trio.testing.MockClock, stack: Stack
) -> None:
    body = _body(lifecycle("installed"))
    headers = {
        "content-type": "application/json",
        "x-shopimind-timestamp": "1",
        "x-shopimind-signature": "0" * 64,
    }
    statuses = [
        (await stack.post("/webhook/receive", body, headers)).status_code for _ in range(61)
    ]
    assert statuses[:60] == [401] * 60
    assert statuses[60] == 429
    limited = await stack.post("/webhook/receive", body, headers)
    assert limited.json() == {"success": False, "error": "rate_limited"}
    assert int(limited.headers["retry-after"]) >= 1
    logged = stack.query("SELECT payload_json FROM webhook_log ORDER BY id")
    assert len(logged) == 61  # a flood's refusals: logged once per burst, without a body
    assert json.loads(str(logged[-1][0])) == {
        "refused": "rate_limited",
        "status": 429,
        "bytes": len(body),
    }


async def test_test_connection_route(stack: Stack) -> None:
    stack.vendor.connection = stack.vendor.ok_when("api_key", "good")
    ok = await stack.webhook({"api_key": "good"}, path="/webhook/test-connection")
    assert ok.json() == {"success": True}
    bad = await stack.webhook({"api_key": "bad"}, path="/webhook/test-connection")
    assert bad.json() == {"success": False, "error": "connection_failed"}
    unsigned = await stack.webhook({"api_key": "good"}, path="/webhook/test-connection", secret="x")
    assert unsigned.status_code == 401
    assert not any(
        call.path == "/test-connection" and call.body == {"settings": {"api_key": "x"}}
        for call in stack.vendor.calls
    )
    (masked,) = stack.query(
        "SELECT payload_json FROM webhook_log WHERE event = 'test_connection' LIMIT 1"
    )
    assert json.loads(str(masked[0])) == {"api_key": "[redacted]"}


async def test_remote_data_route(mock_clock: trio.testing.MockClock, stack: Stack) -> None:
    stack.vendor.remote_data["stores"] = [{"value": "s1", "label": "Paris"}]
    known = await stack.webhook({"api_key": "k"}, path="/webhook/remote-data/stores")
    assert known.json() == {"data": [{"value": "s1", "label": "Paris"}]}
    unknown = await stack.webhook({"api_key": "k"}, path="/webhook/remote-data/planets")
    assert unknown.json() == {"data": []}
    stack.vendor.down = True
    failing = await stack.webhook({"api_key": "k"}, path="/webhook/remote-data/stores")
    assert failing.json() == {"data": []}


async def test_health_and_manifest(stack: Stack) -> None:
    health = await stack.http.get(stack.url + "/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["db"], body["active_installations"]) == ("ok", "ok", 0)
    manifest = (await stack.http.get(stack.url + "/manifest")).json()
    assert manifest["slug"] == "acme-pos"
    assert manifest["webhooks"]["lifecycle"] == "/webhook/receive"


async def test_rotation_accepts_old_and_new_secret(tmp_path: Path) -> None:
    env = {"WEBHOOK_SECRET": f"new-secret,{WEBHOOK_SECRET}"}
    async with sidecar_stack(tmp_path, env=env) as stack:
        assert (await stack.webhook(lifecycle("installed"), secret="new-secret")).status_code == 200
        assert (
            await stack.webhook(lifecycle("installed"), secret=WEBHOOK_SECRET)
        ).status_code == 200
        forged = sign("retired", "1", b"{}")
        assert len(forged) == 64
        assert (await stack.webhook(lifecycle("installed"), secret="retired")).status_code == 401


async def test_an_unexpected_error_is_an_opaque_500(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr("sidecar.web.probes.check_health", broken)  # answered on raw ASGI
    response = await stack.http.get(stack.url + "/health")
    assert (response.status_code, response.json()) == (
        500,
        {"success": False, "error": "internal_error"},
    )
    assert "disk on fire" not in response.text
    (record,) = [r for r in caplog.records if r.getMessage() == "unhandled error in a route"]
    assert "RuntimeError: disk on fire" in record.sidecar_meta["traceback"]  # type: ignore[attr-defined]
