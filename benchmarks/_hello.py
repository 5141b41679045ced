"""The baseline of bench_inbound: a hello-world JSON POST on the sidecar's own stack.

`python -m benchmarks._hello` serves `POST /hello` with quart-trio on hypercorn's trio worker,
configured by the sidecar's own `hypercorn_config` and connection limits (their defaults),
and prints its URL on stdout.
"""

from __future__ import annotations

import trio
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from sidecar.config import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
)
from sidecar.web.limits import ConnectionLimits, Connections
from sidecar.web.server import hypercorn_config, serve_app

__all__ = ["main"]

app = QuartTrio("hello")


@app.post("/hello")
async def hello() -> Response:
    """Read the JSON body, answer JSON."""
    await request.get_json()
    return jsonify({"success": True})


async def _serve() -> None:
    config = hypercorn_config(host="127.0.0.1", port=0, graceful_timeout_seconds=1)
    connections = Connections(
        ConnectionLimits(
            max_connections=DEFAULT_MAX_CONNECTIONS,
            max_per_client=DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            header_timeout_seconds=DEFAULT_HEADER_TIMEOUT_SECONDS,
            body_timeout_seconds=DEFAULT_BODY_TIMEOUT_SECONDS,
        )
    )
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(serve_app, app, config, trio.Event(), connections)
        print(urls[0], flush=True)


def main() -> None:
    """Serve until killed."""
    trio.run(_serve)


if __name__ == "__main__":
    main()
