"""Run an ASGI app (quart-trio) on 127.0.0.1 with a port the OS picks, inside a nursery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[str]:
    """Serve `app` for the duration of the block; yield its base URL (http://127.0.0.1:<port>)."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        bound: list[str] = await nursery.start(
            lambda task_status: serve(
                app, config, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        try:
            yield bound[0]
        finally:
            stop.set()
