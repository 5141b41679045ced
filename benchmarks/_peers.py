"""The fake vendor app and the fake ShopiMind API, served in a process of their own.

    python -m benchmarks._peers --items 200000 [--latency-ms 50] [--sources 16]

Prints one JSON line `{"app": url, "api": url, "token": ..., "secret": ...}` once both
listen, then serves until stdin closes. Running the peers apart keeps their CPU out of the
process being measured (the machine has two cores: one for each side).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp

TOKEN = "int_bench_token"
SECRET = "appsec_bench"


def customer(index: int) -> dict[str, object]:
    """A realistic customer row (~200 bytes of JSON)."""
    return {
        "id_customer": f"c-{index}",
        "email": f"customer{index}@example.com",
        "first_name": "Camille",
        "last_name": f"Martin{index % 977}",
        "phone": f"+33 6 {index % 100:02d} {index % 97:02d} {index % 89:02d} {index % 83:02d}",
        "opt_in": index % 3 == 0,
        "lang": "fr",
    }


class Latency:
    """ASGI middleware: every HTTP request waits `seconds` first (a distant API)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.seconds:
            await trio.sleep(self.seconds)
        await self.app(scope, receive, send)


async def serve(items: int, latency_ms: float) -> None:
    """Serve both peers until stdin is closed."""
    app = FakeVendorApp(SECRET, max_calls_kept=10)
    app.set_dataset("customers", Dataset(count=items, item=customer))
    app.set_dataset("customers_tenth", Dataset(count=items // 10, item=customer))
    api = FakeShopimind(tokens={TOKEN}, keep_items=0, request_log_limit=10)
    async with running(app) as app_url, running(Latency(api, latency_ms / 1000)) as api_url:
        print(
            json.dumps(
                {"app": app_url + app.prefix, "api": api_url, "token": TOKEN, "secret": SECRET}
            ),
            flush=True,
        )
        stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
        while await stdin.receive_some(1024):
            pass


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    trio.run(serve, args.items, args.latency_ms)


if __name__ == "__main__":
    main()
