"""The app down, slow, overloaded or misconfigured: retries, one clear error, no secret shown."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx
import pytest
import trio
import trio.testing

from sidecar.bridge import AppBridge, ConnectionCheck
from sidecar.errors import BridgeError
from sidecar.outbound import RetryPolicy
from sidecar.testing.server import running
from sidecar.testing.vendor_app import (
    Dataset,
    FakeVendorApp,
    HttpStatus,
    JsonBody,
    RawBody,
    Reset,
    Slow,
)
from tests.bridge.conftest import POLICY, SECRET, SENSITIVE, SETTINGS, SINCE, UNTIL
from tests.bridge.conftest import everything_logged as logged_text


@pytest.fixture
async def closed_port_url() -> str:
    """A loopback URL nobody listens on: the port was just bound, then released."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/shopimind"


def bridge_errors(records: list[logging.LogRecord]) -> list[str]:
    return [
        r.getMessage() for r in records if r.name == "sidecar.bridge" and r.levelno >= logging.ERROR
    ]


async def test_app_down_fails_after_retries_with_one_clear_line(
    mock_clock: trio.testing.MockClock,
    http: httpx.AsyncClient,
    closed_port_url: str,
    logged: pytest.LogCaptureFixture,
) -> None:
    bridge = AppBridge(base_url=closed_port_url, secret=SECRET, http=http, policy=POLICY)
    started = trio.current_time()
    with pytest.raises(BridgeError) as exc:
        await bridge.test_connection(SETTINGS)
    message = str(exc.value)
    assert message.startswith(
        f"app bridge unreachable at {closed_port_url}: /test-connection failed after 3 attempts"
    )
    assert "ConnectError" in message
    assert exc.value.status is None
    assert isinstance(exc.value.__cause__, httpx.ConnectError)
    assert trio.current_time() - started == pytest.approx(1.5)  # backoff 0.5 s + 1 s
    assert bridge_errors(logged.records) == [message]
    retries = [r for r in logged.records if r.getMessage() == "request failed, retrying"]
    assert len(retries) == 2


async def test_503_then_success_is_retried(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.inject(HttpStatus(status=503), path="/test-connection")
    assert await bridge.test_connection(SETTINGS) == ConnectionCheck(ok=True)
    assert len(vendor.calls_to("/test-connection")) == 2
    assert vendor.pending_faults == 0
    assert vendor.signature_failures == []


async def test_persistent_5xx_is_an_error_with_the_status_and_the_apps_reason(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.set_dataset("orders", Dataset(count=3))
    vendor.inject(HttpStatus(status=500, body={"error": "database is locked"}), times=3)
    with pytest.raises(BridgeError) as exc:
        await bridge.sync_page(
            "orders",
            installation_id="inst_1",
            settings=SETTINGS,
            source_key="",
            since=SINCE,
            until=UNTIL,
            cursor=None,
            limit=10,
        )
    assert str(exc.value) == (
        "app answered /sync/orders with HTTP 500; the app said 'database is locked'"
    )
    assert exc.value.status == 500
    assert len(vendor.calls) == 3


async def test_429_retry_after_is_honoured(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.sources["orders"] = ["store-1"]
    vendor.inject(HttpStatus(status=429, retry_after="7"))
    started = trio.current_time()
    assert await bridge.sources("orders", installation_id="inst_1", settings={}) == ("store-1",)
    assert trio.current_time() - started == pytest.approx(7.0)  # not the 0.5 s backoff
    assert len(vendor.calls) == 2


async def test_a_retry_after_too_long_to_wait_fails_at_once(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.inject(HttpStatus(status=429, retry_after="3600"))
    with pytest.raises(BridgeError, match="HTTP 429") as exc:
        await bridge.test_connection({})
    assert exc.value.status == 429
    assert len(vendor.calls) == 1


async def test_a_slow_answer_past_the_timeout_is_an_error(
    mock_clock: trio.testing.MockClock, app_url: str, http: httpx.AsyncClient, vendor: FakeVendorApp
) -> None:
    bridge = AppBridge(
        base_url=app_url,
        secret=SECRET,
        http=http,
        policy=RetryPolicy(max_retries=1, jitter=lambda: 0.0),
        timeout_seconds=5,
    )
    vendor.inject(Slow(seconds=60), times=2)
    started = trio.current_time()
    with pytest.raises(BridgeError) as exc:
        await bridge.provisioning("inst_1", SETTINGS)
    assert "/provisioning failed after 2 attempts (ReadTimeout" in str(exc.value)
    assert trio.current_time() - started == pytest.approx(5 + 0.5 + 5)
    assert len(vendor.calls) == 2


async def test_a_slow_answer_within_the_timeout_is_fine(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.inject(Slow(seconds=20))
    started = trio.current_time()
    assert await bridge.test_connection({}) == ConnectionCheck(ok=True)
    assert trio.current_time() - started == pytest.approx(20)
    assert len(vendor.calls) == 1


async def test_a_reset_connection_is_retried(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.inject(Reset(), path="/provisioning")
    assert await bridge.provisioning("inst_1", {}) == {}
    assert len(vendor.calls) == 2


async def test_resets_every_time_is_an_error(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.inject(Reset(), times=3)
    with pytest.raises(BridgeError, match="RemoteProtocolError") as exc:
        await bridge.provisioning("inst_1", {})
    assert isinstance(exc.value.__cause__, httpx.RemoteProtocolError)


async def test_down_mode_then_back_up(
    mock_clock: trio.testing.MockClock,
    bridge: AppBridge,
    vendor: FakeVendorApp,
    logged: pytest.LogCaptureFixture,
) -> None:
    vendor.down = True
    with pytest.raises(BridgeError, match=r"^app bridge unreachable at http://127\.0\.0\.1:"):
        await bridge.test_connection({})
    assert len(vendor.calls) == 3
    assert len(bridge_errors(logged.records)) == 1
    vendor.down = False
    assert await bridge.test_connection({}) == ConnectionCheck(ok=True)


async def test_faults_only_hit_the_path_they_target(
    mock_clock: trio.testing.MockClock, bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.sources["orders"] = []
    vendor.inject(HttpStatus(status=503), times=5, path="/sync/")
    assert await bridge.sources("orders", installation_id="inst_1", settings={}) == ()
    assert await bridge.test_connection({}) == ConnectionCheck(ok=True)
    assert vendor.pending_faults == 5


async def test_a_vendor_with_another_secret_refuses_every_call(
    mock_clock: trio.testing.MockClock, http: httpx.AsyncClient
) -> None:
    vendor = FakeVendorApp("the-vendor-configured-something-else")
    async with running(vendor) as url:
        bridge = AppBridge(base_url=url + vendor.prefix, secret=SECRET, http=http, policy=POLICY)
        with pytest.raises(BridgeError) as exc:
            await bridge.test_connection({})
    assert str(exc.value) == (
        "app answered /test-connection with HTTP 401 (does APP_SECRET match the app's?); "
        "the app said 'unauthorized'"
    )
    assert exc.value.status == 401
    assert vendor.signature_failures == ["/test-connection: signature_mismatch"]
    assert len(vendor.calls) == 1  # a 401 is not retried


async def test_an_answer_over_the_size_cap_is_refused(
    app_url: str, http: httpx.AsyncClient, vendor: FakeVendorApp
) -> None:
    bridge = AppBridge(
        base_url=app_url, secret=SECRET, http=http, policy=POLICY, max_body_bytes=1024
    )
    vendor.provisioning_answer = {"blob": "x" * 2048}
    with pytest.raises(BridgeError, match=r"^app's /provisioning answer is larger than 1024"):
        await bridge.provisioning("inst_1", {})
    assert len(vendor.calls) == 1


async def test_nothing_secret_in_errors_or_logs(
    mock_clock: trio.testing.MockClock,
    bridge: AppBridge,
    vendor: FakeVendorApp,
    http: httpx.AsyncClient,
    closed_port_url: str,
    logged: pytest.LogCaptureFixture,
) -> None:
    customer = {"email": "jane.DO_NOT_LEAK@example.com", "api_token": SENSITIVE}
    vendor.set_dataset("orders", Dataset(count=3, item=lambda i: dict(customer)))
    vendor.sources["orders"] = [SENSITIVE]

    async def sync_page(limit: int) -> object:
        return await bridge.sync_page(
            "orders",
            installation_id="inst_1",
            settings=SETTINGS,
            source_key=SENSITIVE,
            since=SINCE,
            until=UNTIL,
            cursor=None,
            limit=limit,
        )

    failures = []
    # The happy paths log too: check them as well.
    await bridge.sources("orders", installation_id="inst_1", settings=SETTINGS)
    await sync_page(10)
    vendor.inject(JsonBody(value={"items": [customer] * 3, "next": None}))
    with pytest.raises(BridgeError) as exc:
        await sync_page(2)
    failures.append(exc.value)
    vendor.inject(JsonBody(value={"items": [customer, SENSITIVE], "next": None}))
    with pytest.raises(BridgeError) as exc:
        await sync_page(2)
    failures.append(exc.value)
    vendor.inject(JsonBody(value={"ok": SENSITIVE}))
    with pytest.raises(BridgeError) as exc:
        await bridge.test_connection(SETTINGS)
    failures.append(exc.value)
    vendor.inject(RawBody(body=SENSITIVE.encode()))
    with pytest.raises(BridgeError) as exc:
        await bridge.test_connection(SETTINGS)
    failures.append(exc.value)
    vendor.inject(HttpStatus(status=503), times=3)
    with pytest.raises(BridgeError) as exc:
        await bridge.test_connection(SETTINGS)
    failures.append(exc.value)
    down = AppBridge(base_url=closed_port_url, secret=SECRET, http=http, policy=POLICY)
    with pytest.raises(BridgeError) as exc:
        await down.lifecycle(
            "activated",
            installation_id="inst_1",
            settings=SETTINGS,
            shop_domain=None,
            shop_name=None,
            inbound_secret=SENSITIVE,
        )
    failures.append(exc.value)
    other = FakeVendorApp("another-secret")
    async with running(other) as url:
        refused = AppBridge(base_url=url + other.prefix, secret=SECRET, http=http, policy=POLICY)
        with pytest.raises(BridgeError) as exc:
            await refused.remote_data("stores", SETTINGS)
        failures.append(exc.value)

    assert len(failures) == 7
    text = "\n".join(str(error) for error in failures) + "\n" + logged_text(logged.records)
    assert logged.records
    for secret in (SECRET, SENSITIVE, "DO_NOT_LEAK"):
        assert secret not in text


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (RawBody(body=b"<html>Bad Request</html>", status=400, content_type="text/html"), ""),
        (JsonBody(value=["bad"], status=422), ""),
        (JsonBody(value={"error": "  "}, status=422), ""),
        (JsonBody(value={"message": "shop is closed"}, status=409), "shop is closed"),
        (JsonBody(value={"error": "x" * 500}, status=400), "x" * 200 + "…"),
    ],
)
async def test_what_the_app_said_is_quoted_briefly(
    bridge: AppBridge, vendor: FakeVendorApp, fault: RawBody | JsonBody, said: str
) -> None:
    vendor.inject(fault)
    with pytest.raises(BridgeError) as exc:
        await bridge.test_connection({})
    expected = f"app answered /test-connection with HTTP {fault.status}"
    assert str(exc.value) == (f"{expected}; the app said {said!r}" if said else expected)
    assert exc.value.status == fault.status


async def test_unknown_sources_entity_is_a_404(bridge: AppBridge) -> None:
    with pytest.raises(BridgeError, match="HTTP 404; the app said 'unknown_entity'"):
        await bridge.sources("orders", installation_id="inst_1", settings={})


async def test_each_retry_is_signed_with_a_fresh_timestamp(
    mock_clock: trio.testing.MockClock, http: httpx.AsyncClient
) -> None:
    # Wall time follows trio's virtual clock, for the bridge and the app alike.
    def wall() -> datetime:
        return SINCE + timedelta(seconds=trio.current_time())

    vendor = FakeVendorApp(SECRET, now=lambda: wall().timestamp())
    vendor.sources["orders"] = ["store-1"]
    vendor.inject(HttpStatus(status=503, retry_after="60"), times=2)
    async with running(vendor) as url:
        bridge = AppBridge(
            base_url=url + vendor.prefix, secret=SECRET, http=http, policy=POLICY, clock=wall
        )
        assert await bridge.sources("orders", installation_id="i", settings={}) == ("store-1",)
    stamps = [int(call.timestamp or 0) for call in vendor.calls]
    assert [stamp - stamps[0] for stamp in stamps] == [0, 60, 120]
    assert vendor.signature_failures == []
