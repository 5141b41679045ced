"""A fake ShopiMind API on loopback and a client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sidecar.outbound import RetryPolicy, new_http_client
from sidecar.shopimind.client import ShopimindApi, ShopimindClient
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind

TOKEN = "int_5e1c0a9d"
INSTALLATION = "inst_42"
POLICY = RetryPolicy(jitter=lambda: 0.0)


@pytest.fixture
def fake() -> FakeShopimind:
    return FakeShopimind(tokens={TOKEN})


@pytest.fixture
async def api(fake: FakeShopimind) -> AsyncIterator[ShopimindApi]:
    """The API as installation `inst_42`, over HTTP to the fake (closed before the server)."""
    async with running(fake) as base_url, new_http_client() as http:
        client = ShopimindClient(base_url=base_url, http=http, policy=POLICY)
        yield client.api(TOKEN, installation_id=INSTALLATION)
