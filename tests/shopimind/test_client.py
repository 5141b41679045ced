"""The ShopiMind client: base URL rule, envelope, error messages, retries, typed routes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import httpx
import pytest
import trio
import trio.testing

from sidecar.errors import ShopimindError
from sidecar.outbound import RetryPolicy
from sidecar.shopimind.client import ApiResult, ShopimindApi, ShopimindClient
from sidecar.testing.shopimind_api import FakeShopimind
from tests.shopimind.conftest import INSTALLATION, TOKEN


def _mock_api(
    handler: Callable[[httpx.Request], httpx.Response], *, retries: int = 0
) -> tuple[ShopimindApi, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)
    client = ShopimindClient(
        base_url="https://core.example.test",
        http=http,
        policy=RetryPolicy(max_retries=retries, jitter=lambda: 0.0),
    )
    return client.api(TOKEN), http


# --- base URL and key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["http://core.shopimind.com", "http://10.0.0.5:8080", "ftp://core.shopimind.com", "core"],
)
def test_a_base_that_would_leak_the_key_or_is_not_http_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        ShopimindClient(base_url=base, http=httpx.AsyncClient())


def test_a_base_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="credentials"):
        ShopimindClient(base_url="https://user:pw@core.test", http=httpx.AsyncClient())


@pytest.mark.parametrize(
    "base",
    ["https://core.shopimind.com/", "http://127.0.0.1:9000", "http://localhost", "http://[::1]:81"],
)
def test_https_and_loopback_http_are_accepted(base: str) -> None:
    client = ShopimindClient(base_url=base, http=httpx.AsyncClient())
    assert client.base_url == base.rstrip("/")


def test_an_api_needs_a_token_and_never_shows_it() -> None:
    client = ShopimindClient(base_url="https://core.test", http=httpx.AsyncClient())
    with pytest.raises(ValueError, match="token"):
        client.api("  ")
    api = client.api(TOKEN, installation_id="inst_1")
    assert TOKEN not in repr(api)
    assert api.installation_id == "inst_1"


async def test_requests_carry_the_key_under_v1(api: ShopimindApi, fake: FakeShopimind) -> None:
    fake.add_data_source("Main store")
    rows = await api.get("data-sources")
    assert isinstance(rows, list)
    assert rows[0]["label"] == "Main store"
    (recorded,) = fake.requests
    assert (recorded.method, recorded.path) == ("GET", "data-sources")
    assert recorded.headers["spm-api-key"] == TOKEN
    assert recorded.headers["user-agent"].startswith("shopimind-sidecar/")


# --- envelope and errors ------------------------------------------------------------------


async def test_get_refuses_an_answer_that_is_not_the_envelope() -> None:
    api, http = _mock_api(lambda request: httpx.Response(200, json=[{"id": 1}]))
    async with http:
        with pytest.raises(ShopimindError, match=r"not the \{statusCode, data\} envelope"):
            await api.get("data-sources")


async def test_a_2xx_that_is_not_json_is_an_error() -> None:
    api, http = _mock_api(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    async with http:
        with pytest.raises(ShopimindError, match=r"not acceptable JSON \(invalid_json") as caught:
            await api.post("events", {"code_name": "x"})
    assert caught.value.status == 200


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b'{"statusCode": 200, "data": {"id": 1e400}}', "non_finite_number"),
        (b'{"statusCode": 200, "data": {"id": -1e400}}', "non_finite_number"),
        (b'{"statusCode": 200, "data": {"id": NaN}}', "non_finite_number"),
        (b'{"statusCode": 200, "data": {"id": Infinity}}', "non_finite_number"),
        (b'{"statusCode": 200, "data": {"id": 18446744073709551616}}', "integer_out_of_range"),
        (b'{"statusCode": 200, "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "too_deep"),
        (b'{"statusCode": 200, "data": {"id": "1\\u0000"}}', "nul_character"),
        (b'{"statusCode": 200, "data": {"id": "caf\xe9"}}', "invalid_utf8"),
    ],
)
async def test_an_answer_breaking_the_json_policy_is_malformed(
    caplog: pytest.LogCaptureFixture, body: bytes, rule: str
) -> None:
    api, http = _mock_api(lambda request: httpx.Response(200, content=body))
    async with http:
        with pytest.raises(ShopimindError, match=rf"not acceptable JSON \({rule}") as caught:
            await api.get_object("data-sources/1")
    assert caught.value.status == 200
    assert not any(record.exc_info for record in caplog.records)


async def test_an_error_names_status_text_and_the_api_message(api: ShopimindApi) -> None:
    with pytest.raises(ShopimindError) as caught:
        await api.put("data-sources/999", {"label": "x"})
    assert caught.value.status == 404
    assert str(caught.value) == (
        "ShopiMind PUT /v1/data-sources/999 failed: HTTP 404 Not Found: Data source not found"
    )


async def test_a_list_of_api_messages_is_joined(api: ShopimindApi) -> None:
    with pytest.raises(ShopimindError) as caught:
        await api.create_data_source({"label": " "})
    assert caught.value.status == 400
    assert "HTTP 400 Bad Request: label should not be empty; label must be a string" in str(
        caught.value
    )


async def test_a_wrong_key_is_a_401_and_the_key_is_not_in_the_message(
    fake: FakeShopimind, api: ShopimindApi
) -> None:
    fake.tokens.clear()
    with pytest.raises(ShopimindError) as caught:
        await api.list_data_sources()
    assert caught.value.status == 401
    assert "HTTP 401 Unauthorized" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_no_answer_is_an_error_without_status(mock_clock: trio.testing.MockClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api, http = _mock_api(refuse)
    async with http:
        with pytest.raises(ShopimindError) as caught:
            await api.get("data-sources")
    assert caught.value.status is None
    assert "GET /v1/data-sources failed: no answer (ConnectError: connection refused)" in str(
        caught.value
    )


async def test_a_redirect_is_not_followed_but_reported() -> None:
    api, http = _mock_api(
        lambda request: httpx.Response(301, headers={"location": "https://evil.test/"})
    )
    async with http:
        with pytest.raises(ShopimindError, match="HTTP 301 Moved Permanently") as caught:
            await api.get("data-sources")
    assert "redirects are not followed" in str(caught.value)


async def test_a_body_that_cannot_be_json_is_refused_before_sending() -> None:
    api, http = _mock_api(lambda request: httpx.Response(200, json={}))
    async with http:
        with pytest.raises(ShopimindError, match="cannot be sent as JSON"):
            await api.post("contacts", {"score": float("nan")})


async def test_accepted_statuses_come_back_as_results(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.add_event("order_shipped")
    result = await api.post("events", {"code_name": "order_shipped"}, accept=(409,))
    assert isinstance(result, ApiResult)
    assert result.status == 409
    assert result.data == result.body  # an error body has no `data`


# --- retries (PROTOCOL §6) ----------------------------------------------------------------


async def test_429_is_retried_after_retry_after(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(2, status=429, retry_after=3, path="data-sources")
    start = trio.current_time()
    assert await api.list_data_sources() == []
    times = [r.at - start for r in fake.requests]
    assert len(times) == 3
    assert times[1] - times[0] == pytest.approx(3.0, abs=0.1)
    assert times[2] - times[1] == pytest.approx(3.0, abs=0.1)


async def test_503_without_retry_after_backs_off_exponentially(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(3, status=503)
    await api.put_integration_config({"widget_color": "blue"})
    times = [r.at for r in fake.requests]
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(times)]
    assert gaps == [0.5, 1.0, 2.0]
    assert fake.integration_config == {"widget_color": "blue"}


async def test_retries_exhausted_surface_the_last_status(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(10, status=503)
    with pytest.raises(ShopimindError) as caught:
        await api.get_integration_config()
    assert caught.value.status == 503
    assert "HTTP 503 Service Unavailable: injected fault" in str(caught.value)
    assert len(fake.requests) == 4  # 1 + 3 retries


async def test_a_post_without_idempotency_key_is_not_replayed(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=503, path="contacts")
    with pytest.raises(ShopimindError, match="503"):
        await api.upsert_contact({"email": "a@b.test"}, idempotency_key=None)
    assert len(fake.requests) == 1


async def test_a_post_with_idempotency_key_is_replayed_with_the_same_key(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=503, path="contacts")
    created = await api.upsert_contact({"email": "a@b.test"}, idempotency_key="ib-7")
    assert created is True
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["ib-7", "ib-7"]


async def test_a_lost_answer_is_replayed_and_the_key_prevents_a_double_write(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.drop_next(1, path="customers")
    result = await api.push("customers", [{"id_customer": "c1"}], idempotency_key="page-1")
    assert (result.sent, result.transport_failed) == (1, False)
    assert len(fake.requests) == 2  # the first answer was cut after the work was done
    assert fake.count("customers") == 1


async def test_a_lost_answer_to_a_post_without_key_is_an_error(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.drop_next(1, path="events")
    with pytest.raises(ShopimindError, match="no answer") as caught:
        await api.create_event({"code_name": "order_shipped", "name": "Shipped"})
    assert caught.value.status is None
    assert len(fake.requests) == 1


async def test_a_slow_answer_times_out_and_a_read_is_retried(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.slow_next(1, seconds=45)
    start = trio.current_time()
    assert await api.list_data_sources() == []
    assert len(fake.requests) == 2
    assert fake.requests[1].at - start == pytest.approx(30.5, abs=0.1)  # deadline + backoff


async def test_the_key_never_reaches_the_logs(
    mock_clock: trio.testing.MockClock,
    api: ShopimindApi,
    fake: FakeShopimind,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(1, status=503, path="data-sources")
    fake.fail_next(1, status=503, path="customers")
    await api.list_data_sources()
    await api.push("customers", [{"email": "x"}])
    with pytest.raises(ShopimindError):
        await api.get("nowhere")
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in repr(record.__dict__)
    retry = next(r for r in caplog.records if r.getMessage() == "transient answer, retrying")
    assert retry.__dict__["sidecar_meta"]["installation_id"] == INSTALLATION


# --- typed routes -------------------------------------------------------------------------


async def test_data_source_routes(api: ShopimindApi, fake: FakeShopimind) -> None:
    created = await api.create_data_source({"label": "Shop", "type": "pos", "config": "{}"})
    ident = created["id_data_source"]
    assert isinstance(ident, int)
    await api.update_data_source(ident, {"label": "Shop 2"})
    assert [row["label"] for row in await api.list_data_sources()] == ["Shop 2"]
    await api.delete_data_source(ident)
    assert fake.data_sources == {}


async def test_definition_routes(api: ShopimindApi, fake: FakeShopimind) -> None:
    created = await api.create_custom_data_definition(
        {"name": "Visits", "fields": [{"name": "at", "label": "at", "type": "datetime"}]}
    )
    ident = created["id"]
    assert isinstance(ident, int)
    assert await api.activate_custom_data_definition(ident) is True
    assert await api.activate_custom_data_definition(ident) is False  # 409: already active
    await api.extend_custom_data_definition(
        ident, fields=[{"name": "shop", "label": "shop", "type": "text"}]
    )
    stored = await api.get_custom_data_definition(ident)
    assert [f["name"] for f in stored["fields"]] == ["at", "shop"]  # type: ignore[attr-defined]
    assert await api.deactivate_custom_data_definition(ident) is True
    assert await api.deactivate_custom_data_definition(ident) is False
    rows = await api.list_custom_data_definitions()
    assert [row["status"] for row in rows] == ["inactive"]
    assert fake.requests_to("custom-data-definitions", method="GET")[0].query == {"limit": "100"}


async def test_events_config_and_contacts(api: ShopimindApi, fake: FakeShopimind) -> None:
    assert await api.create_event({"code_name": "visit", "name": {"en": "Visit"}}) is True
    assert await api.create_event({"code_name": "visit", "name": {"en": "Visit"}}) is False
    data = await api.trigger_event(
        "visit", {"contact": {"email": "a@b.test"}}, idempotency_key="t1"
    )
    assert data == {"triggered": True, "id_event": fake.events["visit"]["id_event"]}
    assert fake.triggers == [("visit", {"contact": {"email": "a@b.test"}})]
    with pytest.raises(ShopimindError, match="404 Not Found: Event not found"):
        await api.trigger_event("nope/../x", {}, idempotency_key=None)
    assert fake.requests[-1].path == "events/trigger/nope/../x"  # escaped on the wire
    await api.put_integration_config({"loyalty_url": "https://x.test"})
    assert await api.get_integration_config() == {"loyalty_url": "https://x.test"}
    assert await api.upsert_contact({"email": "A@b.test"}, idempotency_key=None) is True
    assert await api.upsert_contact({"email": "a@b.test", "x": 1}, idempotency_key=None) is False
