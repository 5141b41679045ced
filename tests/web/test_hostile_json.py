"""Hostile JSON at every door: each value refused with its 4xx, nothing stored, no traceback.

The doors are the ShopiMind webhook, the config wizard's two routes, the inbound calls
and the admin API (bodies and path ids). The peers' answers are covered in
tests/bridge/test_malformed_answers.py and tests/shopimind/test_client.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from sidecar.payloads import MAX_INT
from tests.conftest import WEBHOOK_SECRET
from tests.harness import Stack, configs, inbound_headers, sidecar_stack, signed_headers

# The 10 MB body is refused unread; httpx may then leave its own body generator unclosed
# (httpx #3686, as in test_public_routes): harmless, and the only warning tolerated here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Async generator 'httpx._content.ByteStream:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <async_generator object ByteStream:"
        "pytest.PytestUnraisableExceptionWarning"
    ),
]

ADMIN_TOKEN = "adm_" + "5e1d0c4a" * 5
TEN_MB = 10 * 1024 * 1024

# (name, a JSON value as bytes, the status, the rule named in the answer)
HOSTILE: list[tuple[str, bytes, int, str | None]] = [
    ("1e400", b"1e400", 400, "non_finite_number"),
    ("-1e400", b"-1e400", 400, "non_finite_number"),
    ("NaN", b"NaN", 400, "non_finite_number"),
    ("Infinity", b"Infinity", 400, "non_finite_number"),
    ("2**64", str(2**64).encode(), 400, "integer_out_of_range"),
    ("10,000-deep", b"[" * 10_000 + b"]" * 10_000, 400, "too_deep"),
    ("10 MB string", b'"' + b"x" * TEN_MB + b'"', 413, None),
    ("NUL", b'"a\\u0000b"', 400, "nul_character"),
    ("raw NUL", b'"a\x00b"', 400, "nul_character"),
    ("invalid UTF-8", b'"caf\xe9"', 400, "invalid_utf8"),
]


def _expected(status: int, rule: str | None) -> dict[str, object]:
    if rule is None:
        return {"success": False, "error": "payload_too_large"}
    return {"success": False, "error": "invalid_json", "rule": rule}


def _with_value(template: dict[str, object], value: bytes) -> bytes:
    """`template` as JSON, its `"HOSTILE"` string replaced by the raw `value`."""
    return json.dumps(template).encode().replace(b'"HOSTILE"', value)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert not record.exc_info, record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()
        assert "Traceback" not in repr(getattr(record, "sidecar_meta", "")), record.getMessage()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    env = {"ADMIN_TOKEN": ADMIN_TOKEN, "ADMIN_PORT": "0"}
    async with sidecar_stack(tmp_path, env=env) as running:
        yield running


ALL_TABLES = (
    "installations",
    "installation_state",
    "webhook_claims",
    "inbound_outbox",
    "inbound_events",
    "rejected_items",
    "audit_log",
)
INBOUND_TABLES = ("inbound_outbox", "inbound_events", "rejected_items", "audit_log")
"""What an inbound call could write (the activation's backfill writes state meanwhile)."""


def _counts(stack: Stack, tables: tuple[str, ...] = ALL_TABLES) -> dict[str, object]:
    return {table: stack.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in tables}


async def _post_raw(stack: Stack, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await stack.http.post(url, content=body, headers=headers)


WEBHOOK_DOORS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "lifecycle": (
        "/webhook/receive",
        lambda value: _with_value(
            {
                "event": "integration.installed",
                "installation_id": "inst_1",
                "access_token": "int_x",
                "configs": configs(store_id="HOSTILE"),
            },
            value,
        ),
    ),
    "test_connection": (
        "/webhook/test-connection",
        lambda value: _with_value(configs(store_id="HOSTILE"), value),
    ),
    "remote_data": (
        "/webhook/remote-data/stores",
        lambda value: _with_value(configs(store_id="HOSTILE"), value),
    ),
}


@pytest.mark.parametrize("door", sorted(WEBHOOK_DOORS))
async def test_shopimind_doors_refuse_hostile_values(
    stack: Stack, logged: pytest.LogCaptureFixture, door: str
) -> None:
    path, make = WEBHOOK_DOORS[door]
    before = _counts(stack)
    for name, value, status, rule in HOSTILE:
        body = make(value)
        headers = signed_headers(body, secret=WEBHOOK_SECRET)
        answer = await _post_raw(stack, stack.url + path, body, headers)
        assert (name, answer.status_code, answer.json()) == (name, status, _expected(status, rule))
    assert _counts(stack) == before
    assert not stack.vendor.calls  # nothing reached the app either
    # Logged first (PROTOCOL §1.3), never with the refused body.
    logged_payloads = [str(row[0]) for row in stack.query("SELECT payload_json FROM webhook_log")]
    assert len(logged_payloads) == len(HOSTILE)
    assert all(len(text) < 200 for text in logged_payloads)
    _no_traceback(logged)


@pytest.mark.parametrize(
    ("action", "template"),
    [
        ("sale", {"amount": "HOSTILE", "store": "Paris"}),  # queued
        ("member", {"email": "ada@example.com", "points": "HOSTILE"}),  # direct
    ],
)
async def test_inbound_door_refuses_hostile_values(
    stack: Stack, logged: pytest.LogCaptureFixture, action: str, template: dict[str, object]
) -> None:
    secret = await stack.activate()
    logged.clear()
    before = _counts(stack, INBOUND_TABLES)
    for name, value, status, rule in HOSTILE:
        body = _with_value(template, value)
        headers = inbound_headers(body, secret=secret)
        answer = await _post_raw(stack, stack.url + f"/inbound/{action}", body, headers)
        assert (name, answer.status_code, answer.json()) == (name, status, _expected(status, rule))
    assert _counts(stack, INBOUND_TABLES) == before
    # Nothing sent on: a direct call claims its inbound_events row before it calls.
    assert stack.shopimind.triggers == []
    _no_traceback(logged)


@pytest.mark.parametrize("event_id", [2**63, 2**64, 10**30])
async def test_an_event_id_beyond_64_bits_is_unknown(
    stack: Stack, logged: pytest.LogCaptureFixture, event_id: int
) -> None:
    secret = await stack.activate()
    answer = await stack.inbound_status(event_id, secret=secret)
    assert (answer.status_code, answer.json()) == (404, {"success": False, "error": "not_found"})
    known_range = await stack.inbound_status(MAX_INT, secret=secret)
    assert (known_range.status_code, known_range.json()["error"]) == (404, "not_found")
    _no_traceback(logged)


async def test_admin_door_refuses_hostile_values(
    mock_clock: trio.testing.MockClock, stack: Stack, logged: pytest.LogCaptureFixture
) -> None:
    admin_url = stack.running.admin_urls[0]
    headers = {"x-admin-token": ADMIN_TOKEN, "content-type": "application/json"}
    before = _counts(stack)
    for route in ("sync", "reprovision", "cursors/reset", "dead-letter/replay"):
        for name, value, status, rule in HOSTILE:
            await trio.sleep(1)  # under the admin rate limit
            body = _with_value({"full": False, "entity": "orders", "ids": ["HOSTILE"]}, value)
            url = f"{admin_url}/admin/installations/inst_1/{route}"
            answer = await _post_raw(stack, url, body, headers)
            got = answer.json()
            got.pop("message", None)
            assert (route, name, answer.status_code, got) == (
                route,
                name,
                status,
                _expected(status, rule),
            )
    assert _counts(stack) == before
    _no_traceback(logged)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (f"/admin/reveal/webhook/{2**63}", 404, "not_found"),
        (f"/admin/reveal/webhook/{2**64}", 404, "not_found"),
        (f"/admin/reveal/webhook/{MAX_INT}", 404, "not_found"),
        ("/admin/installations/inst%001", 404, "unknown_installation"),
        ("/admin/installations/caf%E9/state", 404, "unknown_installation"),
        ("/admin/installations/" + "9" * 5000, 404, "unknown_installation"),
    ],
)
async def test_admin_path_ids_beyond_the_store_are_unknown(
    stack: Stack, logged: pytest.LogCaptureFixture, path: str, status: int, error: str
) -> None:
    admin_url = stack.running.admin_urls[0]
    method = "POST" if "/reveal/" in path else "GET"
    answer = await stack.http.request(
        method, admin_url + path, headers={"x-admin-token": ADMIN_TOKEN}
    )
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    _no_traceback(logged)
