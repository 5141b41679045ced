"""A fake vendor app served over loopback, and a bridge pointed at it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import httpx
import pytest

from sidecar.bridge import AppBridge
from sidecar.outbound import RetryPolicy, new_http_client
from sidecar.testing.server import running
from sidecar.testing.vendor_app import FakeVendorApp

SECRET = "appsec_93b0e7d2_bridge"
SENSITIVE = "sk_live_DO_NOT_LEAK_4f1e"
SETTINGS: dict[str, object] = {"api_key": SENSITIVE, "shop": "Paris"}
POLICY = RetryPolicy(max_retries=2, base_seconds=1.0, cap_seconds=10.0, jitter=lambda: 0.0)
"""Deterministic backoff: 0.5 s then 1 s. Tests that retry use the `mock_clock` fixture."""
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def vendor() -> FakeVendorApp:
    return FakeVendorApp(SECRET)


@pytest.fixture
async def app_url(vendor: FakeVendorApp) -> AsyncIterator[str]:
    async with running(vendor) as url:
        yield url + vendor.prefix


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http_client() as client:
        yield client


@pytest.fixture
def bridge(app_url: str, http: httpx.AsyncClient) -> AppBridge:
    return AppBridge(base_url=app_url, secret=SECRET, http=http, policy=POLICY)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, from debug up."""
    caplog.set_level(logging.DEBUG)
    return caplog


def everything_logged(records: Iterable[logging.LogRecord]) -> str:
    """Messages, arguments and the unredacted metadata of every record, as one text."""
    return "\n".join(
        f"{record.getMessage()} {record.args!r} {getattr(record, 'sidecar_meta', None)!r}"
        for record in records
    )
