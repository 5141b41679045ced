"""Reading ShopiMind's wire shapes defensively: messages, ids, listings, JSON bodies."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import httpx
import pytest

from sidecar.errors import ShopimindError
from sidecar.shopimind._wire import (
    api_message,
    encode_json,
    failure_message,
    resource_id,
    rows_of,
    text_of,
    transport_message,
)
from sidecar.shopimind.client import ShopimindApi, ShopimindClient


def test_api_message_prefers_message_then_error() -> None:
    assert api_message({"message": ["a", "b"], "error": "Bad Request"}) == "a; b"
    assert api_message({"message": "", "error": "Conflict"}) == "Conflict"
    assert api_message({"message": {"field": "name"}}) == '{"field": "name"}'
    assert api_message(["not", "an", "object"]) == ""
    assert api_message(None) == ""


def test_long_messages_are_clipped() -> None:
    assert len(text_of("x" * 5000)) == 501


def test_failure_and_transport_messages() -> None:
    assert failure_message("GET", "x", 599, None) == "ShopiMind GET /v1/x failed: HTTP 599"
    assert (
        transport_message("POST", "y", httpx.ReadTimeout(""))
        == "ShopiMind POST /v1/y failed: no answer (ReadTimeout)"
    )


def test_encode_json_takes_mappings_and_tuples_and_refuses_the_rest() -> None:
    assert encode_json({"a": MappingProxyType({"b": (1, 2)})}) == b'{"a":{"b":[1,2]}}'
    assert encode_json({"s": frozenset({"é"})}) == '{"s":["é"]}'.encode()
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        encode_json({"x": object()})
    with pytest.raises(ValueError, match="Out of range"):
        encode_json({"x": float("inf")})


def test_resource_id_takes_the_first_usable_key() -> None:
    assert resource_id({"id_data_source": 0, "id": 5}, "id_data_source", "id") == 5
    assert resource_id({"id": True, "uid": " 7 "}, "id", "uid") == "7"
    assert resource_id({"id": "  "}, "id") is None
    assert resource_id({"id": -3}, "id") is None


def test_rows_of_reads_lists_and_page_objects() -> None:
    assert rows_of([{"a": 1}, "junk", None]) == [{"a": 1}]
    assert rows_of({"items": [{"a": 1}], "total": 1}) == [{"a": 1}]
    assert rows_of({"data": [], "page": 1}) == []
    assert rows_of({"a": 1}) is None
    assert rows_of(None) is None


def _api(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[ShopimindApi, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ShopimindClient(base_url="https://core.test", http=http).api("int_x"), http


def test_an_unparseable_base_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute https://"):
        ShopimindClient(base_url="http://[::1", http=httpx.AsyncClient())


async def test_an_error_body_that_is_not_json_still_gives_the_status() -> None:
    api, http = _api(lambda request: httpx.Response(502, text="Bad gateway"))
    async with http:
        with pytest.raises(ShopimindError) as caught:
            await api.post("events", {})
    assert str(caught.value) == "ShopiMind POST /v1/events failed: HTTP 502 Bad Gateway"


async def test_listing_and_object_reads_check_the_shape_of_data() -> None:
    api, http = _api(lambda request: httpx.Response(200, json={"statusCode": 200, "data": 3}))
    async with http:
        with pytest.raises(ShopimindError, match="`data` is not a list"):
            await api.list_data_sources()
        with pytest.raises(ShopimindError, match="`data` is not an object"):
            await api.get_custom_data_definition(4)
        with pytest.raises(ShopimindError, match="`data` is not an object"):
            await api.create_data_source({"label": "x"})


async def test_integration_config_without_values_is_read_as_is() -> None:
    api, http = _api(
        lambda request: httpx.Response(200, json={"statusCode": 200, "data": {"color": "red"}})
    )
    async with http:
        assert await api.get_integration_config() == {"color": "red"}
