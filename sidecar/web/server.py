"""Serving an ASGI app (`sidecar.web.front`) with hypercorn's trio worker, in the caller's nursery.

This is hypercorn's `worker_serve` (plain HTTP, no workers) with the listening sockets
wrapped by `sidecar.web.limits`, which caps the connections and gives each request head a
deadline. Its connection handler (`TCPServer`) tells the limits when a request's head is
in, and frees a connection's socket and task as soon as the connection is over (hypercorn
would keep both until keep_alive_timeout). Hypercorn's own limits are set in
`hypercorn_config`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

from sidecar.web.limits import Connections, GuardedStream, LimitedListener

__all__ = ["KEEP_ALIVE_TIMEOUT_SECONDS", "hypercorn_config", "serve_app"]

KEEP_ALIVE_TIMEOUT_SECONDS = 75
"""Longer than typical reverse-proxy idle timeouts, so the proxy closes first."""
MAX_HEAD_BYTES = 16 * 1024
"""A request line and headers larger than this are answered 400 (h11's own limit)."""
BACKLOG = 512
"""Connections the kernel holds while accepting pauses (file shortage) or lags."""


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
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_SECONDS
    config.h11_max_incomplete_size = MAX_HEAD_BYTES
    config.backlog = BACKLOG
    # read_timeout stays unset: hypercorn applies it to every read, also while a request
    # is being handled (a direct inbound call waits on ShopiMind), and would cut those.
    return config


class _TCPServer(TCPServer):
    """Hypercorn's connection handler, telling the stream when a request's head is in."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: LifespanState,
        stream: GuardedStream,
    ) -> None:
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self._guarded = stream

    async def _read_data(self) -> None:
        await super()._read_data()
        # Nothing more will come: without a request in progress, the connection's task
        # would otherwise wait out keep_alive_timeout for nothing (a flood piles them up).
        await self.idle_task.stop()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Closed):
            # At once: the app's task that sends this may be cancelled at the next
            # checkpoint (quart-trio ends it on the disconnect), leaving the socket open.
            self._guarded.close_now()
        elif isinstance(event, Updated):
            if event.idle:
                self._guarded.request_finished()
            else:
                self._guarded.request_started()
        await super().protocol_send(event)


async def serve_app(
    app: Any,
    config: Config,
    shutdown: trio.Event,
    connections: Connections,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until `shutdown` is set; report the bound URLs through `task_status`.

    On shutdown: stop accepting, let idle connections close, and give requests in
    progress `config.graceful_timeout` seconds (as hypercorn's `worker_serve`).
    """
    config.set_statsd_logger_class(StatsdLogger)
    asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(asgi, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            listeners: list[LimitedListener] = []
            binds: list[str] = []
            for sock in config.create_sockets().insecure_sockets:
                sock.listen(config.backlog)
                socket_listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                listeners.append(LimitedListener(socket_listener, connections))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            task_status.started(binds)
            handler = partial(
                _TCPServer, asgi, config, context, ConnectionState(lifespan_state.copy())
            )
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown.wait)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        partial(
                            trio.serve_listeners, handler, listeners, handler_nursery=server_nursery
                        )
                    )
            except BaseExceptionGroup as error:
                _, other_errors = error.split(ShutdownError)
                if other_errors is not None:
                    raise other_errors from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
