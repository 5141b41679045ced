"""The reference of bench_binary: a hello world as a `Type=notify` service, frozen by the
same PyInstaller with the same dependencies as `dist/shopimind-sidecar`
(benchmarks/hello.spec builds it into build/hello/dist/hello-sidecar).

It serves `POST /hello` with quart-trio on hypercorn's trio worker (the sidecar's stack,
configured as `sidecar.web.server.hypercorn_config` does), sends READY=1 to NOTIFY_SOCKET
once bound, and exits 0 on SIGTERM after a graceful stop. It imports nothing of the
sidecar: what it loads at start is what a hello world on this stack needs.

With HELLO_WITH_DEPENDENCIES=1 it also loads, before serving, what the sidecar cannot
start without besides the web stack: httpx with its CA bundle (one client), cryptography's
AES-GCM, sqlite3 and prometheus-client. The gap between the two is the dependencies'
share; the rest of the sidecar's gap is its own code and state.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, jsonify, request
from quart_trio import QuartTrio

app = QuartTrio("hello")


@app.post("/hello")
async def hello() -> Response:
    """Read the JSON body, answer JSON."""
    await request.get_json()
    return jsonify({"success": True})


def _notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.send(message.encode())


def _load_dependencies() -> object:
    import sqlite3  # noqa: F401

    import httpx
    import prometheus_client  # noqa: F401
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401

    return httpx.AsyncClient()  # verifies certificates: loads the CA bundle


async def _main() -> None:
    kept = _load_dependencies() if os.environ.get("HELLO_WITH_DEPENDENCIES") == "1" else None
    config = Config()
    config.bind = [f"127.0.0.1:{os.environ.get('PORT', '0')}"]
    config.accesslog = None
    config.include_server_header = False
    config.graceful_timeout = 10
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            _notify(f"READY=1\nSTATUS=serving hello on {urls[0]}")
            async for _ in signals:
                _notify("STOPPING=1")
                stop.set()
                break
    del kept


def main() -> int:
    """Serve until SIGTERM."""
    trio.run(_main)
    return 0


if __name__ == "__main__":
    sys.exit(main())
