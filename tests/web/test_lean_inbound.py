"""`POST /inbound/{action}` on raw ASGI (`sidecar.web.lean_inbound`): the same answers as
the quart routes give, byte for byte where a client can see them, and every other request
left to quart. Through real HTTP on a running sidecar, and for what needs a frozen or a
mock clock (the per-IP bucket, a stalled body), the ASGI app driven directly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from sidecar.declaration import load_declaration
from sidecar.inbound import InboundService
from sidecar.security.cipher import AesGcmCipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.store.sqlite import open_sqlite_store
from sidecar.web.lean_inbound import BODY_TIMEOUT_SECONDS, LeanInbound
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.responses import json_error_code
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.harness import EXAMPLE, LogWatch, Stack, inbound_headers, sidecar_stack

SALE = {"amount": 12.5, "store": "Paris"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


async def test_answers_are_json_as_quart_writes_it(stack: Stack) -> None:
    secret = await stack.activate()
    accepted = await stack.inbound("sale", SALE, secret=secret)
    assert accepted.status_code == 202
    assert accepted.headers["content-type"] == "application/json"
    event_id = accepted.json()["id"]
    assert accepted.content == b'{"id":%d,"success":true}\n' % event_id
    forged = await stack.inbound("sale", SALE, secret="insec_" + "9" * 48)
    assert forged.status_code == 401
    assert forged.content == b'{"error":"unauthorized","success":false}\n'
    assert int(forged.headers["content-length"]) == len(forged.content)
    assert forged.headers["connection"] == "close"  # a refusal ends the connection
    assert "connection" not in accepted.headers
    # quart answers the other routes in the same encoding
    status = await stack.inbound_status(event_id, secret="insec_" + "9" * 48)
    assert status.content == forged.content


async def test_each_call_has_its_access_line(stack: Stack) -> None:
    with LogWatch("sidecar.access") as access:
        await stack.inbound("sale", SALE, secret="insec_" + "9" * 48)
        await stack.inbound("sale", SALE, secret="insec_" + "9" * 48)
    lines = access.meta("request")
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/inbound/sale", 401)
    ] * 2
    assert all(line["client"] == "127.0.0.1" for line in lines)
    assert all(isinstance(line["duration_ms"], float) for line in lines)


async def test_what_is_not_a_post_of_one_action_is_quarts(stack: Stack) -> None:
    wrong = await stack.http.get(stack.url + "/inbound/sale")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    body = json.dumps(SALE).encode()
    nested = await stack.post("/inbound/sale/more", body, {"content-type": "application/json"})
    assert (nested.status_code, nested.json()) == (404, {"success": False, "error": "not_found"})
    bare = await stack.post("/inbound/", body, {"content-type": "application/json"})
    assert bare.status_code == 404


async def test_body_checks_come_before_the_rules(stack: Stack) -> None:
    secret = await stack.activate()
    body = json.dumps(SALE).encode()
    plain = inbound_headers(body, secret=secret) | {"content-type": "text/plain"}
    refused = await stack.post("/inbound/sale", body, plain)
    assert (refused.status_code, refused.json()) == (
        415,
        {"success": False, "error": "unsupported_media_type"},
    )
    charset = inbound_headers(body, secret=secret) | {
        "content-type": "Application/JSON; charset=utf-8"
    }
    assert (await stack.post("/inbound/sale", body, charset)).status_code == 202

    big = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: capped while reading
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await stack.http.post(
        stack.url + "/inbound/sale", content=chunks(), headers=inbound_headers(big, secret=secret)
    )
    assert (streamed.status_code, streamed.json()["error"]) == (413, "payload_too_large")
    assert stack.query("SELECT COUNT(*) FROM inbound_outbox") == [(1,)]


async def test_an_unexpected_error_is_an_opaque_500(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the rules broke: internal detail")

    monkeypatch.setattr(InboundService, "receive", broken)
    with LogWatch("sidecar.web") as web:
        answer = await stack.inbound("sale", SALE, secret="insec_" + "9" * 48)
    assert (answer.status_code, answer.json()) == (
        500,
        {"success": False, "error": "internal_error"},
    )
    assert "internal detail" not in answer.text
    [logged] = web.meta("unhandled error in a route")
    assert "internal detail" in str(logged["error"])
    assert "Traceback" in str(logged["traceback"])


# --- the ASGI app driven directly ---------------------------------------------------------


class Exchange:
    """One HTTP request given to an ASGI app: the messages it receives and those it sends.
    `then`: after the body parts, the request is complete ("end"), the client stops
    sending ("stall") or goes away ("disconnect")."""

    def __init__(self, body_parts: list[bytes], *, then: str = "end") -> None:
        self._parts = body_parts
        self._then = then
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self._parts:
            part = self._parts.pop(0)
            more = bool(self._parts) or self._then != "end"
            return {"type": "http.request", "body": part, "more_body": more}
        if self._then == "stall":
            await trio.sleep_forever()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def answer(self) -> object:
        return json.loads(self.sent[1]["body"])


def scope(path: str = "/inbound/sale", method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "client": ("192.0.2.7", 50000),
    }


@pytest.fixture
async def lean(tmp_path: Path) -> AsyncIterator[tuple[LeanInbound, list[str]]]:
    """LeanInbound with a real InboundService on a real store, a per-IP bucket of 2 that
    does not refill (frozen trio time), and an inner app recording what reaches it."""
    store = await open_sqlite_store(
        tmp_path / "store.sqlite", cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    passed: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed.append(f"{scope['method']} {scope['path']}" if "path" in scope else scope["type"])

    async with httpx.AsyncClient() as http:
        inbound = InboundService(
            store=store,
            declaration=load_declaration(EXAMPLE),
            shopimind=ShopimindClient(base_url="http://127.0.0.1:9", http=http),
            wake_deliverer=lambda installation_id: None,
            allow_installation=lambda installation_id: True,
        )
        per_ip = RateLimiter(burst=2, per_second=0.001)
        try:
            yield LeanInbound(inner, inbound=inbound, per_ip=per_ip, limit_bytes=1024), passed
        finally:
            await store.aclose()


async def test_the_per_ip_bucket_refuses_before_reading(
    mock_clock: trio.testing.MockClock, lean: tuple[LeanInbound, list[str]]
) -> None:
    app, _ = lean
    statuses = []
    for _ in range(3):
        exchange = Exchange([b"{}"])
        await app(scope(), exchange.receive, exchange.send)
        statuses.append(exchange.status)
    assert statuses == [400, 400, 429]  # no installation header, then the bucket is empty
    assert exchange.answer == {"success": False, "error": "rate_limited"}
    assert dict(exchange.sent[0]["headers"])[b"retry-after"] == b"1000"


async def test_a_stalled_body_is_a_408_after_the_body_timeout(
    autojump_clock: trio.testing.MockClock, lean: tuple[LeanInbound, list[str]]
) -> None:
    app, _ = lean
    exchange = Exchange([b'{"amount"'], then="stall")
    await app(scope(), exchange.receive, exchange.send)
    assert (exchange.status, exchange.answer) == (
        408,
        {"success": False, "error": json_error_code(408)},
    )
    assert (b"connection", b"close") in exchange.sent[0]["headers"]
    assert trio.current_time() >= BODY_TIMEOUT_SECONDS


async def test_a_client_gone_mid_body_gets_nothing_and_nothing_is_stored(
    autojump_clock: trio.testing.MockClock, lean: tuple[LeanInbound, list[str]]
) -> None:
    app, _ = lean
    exchange = Exchange([b'{"amount"'], then="disconnect")
    await app(scope(), exchange.receive, exchange.send)
    assert exchange.sent == []


async def test_other_requests_reach_the_inner_app(
    mock_clock: trio.testing.MockClock, lean: tuple[LeanInbound, list[str]]
) -> None:
    app, passed = lean
    for path, method in (
        ("/inbound/sale", "GET"),
        ("/inbound/events/3", "POST"),
        ("/inbound/", "POST"),
        ("/webhook/receive", "POST"),
    ):
        exchange = Exchange([b"{}"])
        await app(scope(path, method), exchange.receive, exchange.send)
        assert exchange.sent == []
    await app({"type": "lifespan"}, Exchange([]).receive, Exchange([]).send)
    assert passed == [
        "GET /inbound/sale",
        "POST /inbound/events/3",
        "POST /inbound/",
        "POST /webhook/receive",
        "lifespan",
    ]
