"""A deliberately broken vendor app: every route answers, and five mistakes are planted.

1. no signature check at all: unsigned and forged calls are served;
2. `/sync/products` never ends: every page is empty and carries a fresh `next` token;
3. a wrong type: order 2 of store `s1` has `amount` as a string;
4. a duplicate id: customer `c-3` is listed twice;
5. an item outside the window: order 3 of store `s1` was updated in 2001, whatever the
   window asked.

The well-formed items are the Python sample app's, so only the planted mistakes are wrong.
"""

from __future__ import annotations

import json
from typing import Any, Final

from quart import Response, request
from quart_trio import QuartTrio

from sidecar.clock import parse_timestamp
from sidecar.demo.sample_app import sample_app

__all__ = ["PREFIX", "broken_app"]

PREFIX: Final = "/shopimind"
_ANCIENT: Final = "2001-01-01T00:00:00.000Z"


def _json(value: object) -> Response:
    return Response(json.dumps(value), content_type="application/json")


def _page(items: list[dict[str, object]], body: dict[str, Any]) -> dict[str, object]:
    """A page done right (window, limit, cursor), but for the item of 2001: always there."""
    window = body["window"]
    since, until = parse_timestamp(window["since"]), parse_timestamp(window["until"])
    chosen = [
        item
        for item in items
        if item["updated_at"] == _ANCIENT
        or since < parse_timestamp(str(item["updated_at"])) <= until
    ]
    offset = int(body.get("cursor") or "0")
    end = offset + int(body["limit"])
    return {"items": chosen[offset:end], "next": str(end) if end < len(chosen) else None}


def broken_app() -> QuartTrio:
    """The broken app, as an ASGI app to serve with `sidecar.testing.running`."""
    sample = sample_app("unused: this app checks no signature")
    datasets = sample.datasets
    customers = [datasets[("customers", "")].at(i) for i in range(5)]
    customers.insert(4, dict(customers[3]))  # 4. c-3 twice
    orders = [datasets[("orders", "store-paris")].at(i) for i in range(5)]
    orders[1] = {**orders[1], "amount": "42.50"}  # 3. a number sent as a string
    orders[2] = {**orders[2], "updated_at": _ANCIENT}  # 5. outside any recent window
    cards = [datasets[("loyalty_cards", "")].at(i) for i in range(3)]
    pages = {"customers": customers, "orders": orders, "loyalty_cards": cards}
    app = QuartTrio("broken_vendor_app")

    @app.route(f"{PREFIX}/<path:call>", methods=["POST"])
    async def call(call: str) -> Response:  # 1. no signature check
        body = await request.get_json(force=True, silent=True) or {}
        route, _, name = call.partition("/")
        if route == "test-connection":
            return _json({"ok": True})
        if route == "remote-data":
            return _json({"data": [{"value": "s1", "label": "Store 1"}]})
        if route == "lifecycle":
            return _json({"ok": True})
        if route == "provisioning":
            return _json({})
        if route == "sources":
            return _json({"sources": ["s1"]})
        if name == "products":  # 2. a page that never ends
            turn = int(body.get("cursor") or "0") + 1
            return _json({"items": [], "next": str(turn)})
        return _json(_page(pages.get(name, []), body))

    return app
