"""Serving a quart-trio app with hypercorn's trio worker, inside the caller's nursery."""

from __future__ import annotations

import logging
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

__all__ = ["hypercorn_config", "serve_app"]


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hypercorn_config(*, host: str, port: int, graceful_timeout_seconds: float) -> Config:
    """Hypercorn settings for one listener: our own access log, errors through our logger."""
    config = Config()
    config.bind = [_bind(host, port)]
    config.accesslog = None  # the app logs each request itself, redacted
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    config.graceful_timeout = graceful_timeout_seconds
    config.keep_alive_timeout = 75  # longer than typical reverse-proxy idle timeouts
    return config


async def serve_app(
    app: Any,
    config: Config,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown` is set; report the bound URLs through `task_status`."""
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
