"""What each listener serves: the routes answered at once on raw ASGI, and the quart app
behind them, built (quart imported) by the first request that needs it.

A sidecar spends most of its life answering the vendor app's inbound calls and its
probes, between ShopiMind's rare lifecycle webhooks and an operator's visits. Those two
are answered without a web framework; quart, werkzeug and the routes written with them
(webhooks, wizard, manifest, admin API, console, metrics: ~13 MiB and ~0.2 s to import)
are loaded when one of their requests first arrives, then serve every request that is
not answered before them:

    POST /inbound/{action}       sidecar.web.lean_inbound   (the hot route)
    GET, HEAD /ready, /health    sidecar.web.probes         (polled every few seconds)
    anything else                the quart app: sidecar.web.public, with the admin routes
                                 and the console when ADMIN_PORT is not set; on the admin
                                 listener, sidecar.web.admin

The quart app goes through its ASGI lifespan as if served from the start: started when it
is built, stopped when the listener stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from sidecar.logs import get_logger
from sidecar.web.contexts import INBOUND_BODY_LIMIT, AdminContext, PublicContext
from sidecar.web.lean_inbound import LeanInbound
from sidecar.web.probes import Probes
from sidecar.web.raw import ASGIApp

__all__ = ["DeferredApp", "admin_front", "public_front"]

_LIFESPAN_SCOPE: dict[str, Any] = {
    "type": "lifespan",
    "asgi": {"spec_version": "2.0", "version": "3.0"},
}

_log = get_logger("web")


class DeferredApp:
    """An ASGI app built by the first HTTP request, then serving every one.

    It answers the server's lifespan itself, and runs the built app's own lifespan in its
    place: the app starts before it serves its first request, and stops with the server.
    """

    def __init__(self, build: Callable[[], ASGIApp], name: str) -> None:
        self._build = build
        self._name = name
        self._app: ASGIApp | None = None
        self._building = trio.Lock()
        self._nursery: trio.Nursery | None = None
        """Set while the server's lifespan runs: where the built app's lifespan runs."""
        self._to_app: trio.MemorySendChannel[dict[str, Any]] | None = None
        self._from_app: trio.MemoryReceiveChannel[dict[str, Any]] | None = None

    @property
    def built(self) -> bool:
        """Whether a request has built the app."""
        return self._app is not None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one ASGI connection (the lifespan, or a request)."""
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        app = self._app if self._app is not None else await self._built_app()
        await app(scope, receive, send)

    async def _built_app(self) -> ASGIApp:
        async with self._building:  # requests arriving meanwhile wait for the one build
            if self._app is not None:
                return self._app
            started = trio.current_time()
            app = self._build()
            if self._nursery is not None:
                # Shielded: a client leaving now must not leave a half-started app behind
                # (the next request would start another); quart starts in microseconds.
                with trio.CancelScope(shield=True):
                    await self._start(app, self._nursery)
            self._app = app
            _log.info(
                "web app loaded at its first request",
                app=self._name,
                duration_ms=round((trio.current_time() - started) * 1000, 1),
            )
            return app

    async def _serve_lifespan(self, receive: Any, send: Any) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        async with self._building:  # a build in progress starts, then stops
                            self._nursery = None
                            await self._stop()
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()

    async def _start(self, app: ASGIApp, nursery: trio.Nursery) -> None:
        to_app, app_receives = trio.open_memory_channel[dict[str, Any]](1)
        app_sends, from_app = trio.open_memory_channel[dict[str, Any]](1)
        scope = {**_LIFESPAN_SCOPE, "state": {}}
        nursery.start_soon(app, scope, app_receives.receive, app_sends.send)
        await to_app.send({"type": "lifespan.startup"})
        answer = await from_app.receive()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"{self._name} did not start: {answer.get('message', '')}")
        self._to_app, self._from_app = to_app, from_app

    async def _stop(self) -> None:
        if self._to_app is None or self._from_app is None:
            return
        await self._to_app.send({"type": "lifespan.shutdown"})
        answer = await self._from_app.receive()
        if answer["type"] != "lifespan.shutdown.complete":
            _log.warning(
                "web app did not stop cleanly", app=self._name, message=answer.get("message")
            )
        self._to_app = self._from_app = None


def public_front(
    context: PublicContext, admin: AdminContext | None, *, body_timeout_seconds: float
) -> ASGIApp:
    """The public listener's app. `admin`: the admin routes and console to mount on it
    (when ADMIN_PORT is not set)."""

    def build() -> ASGIApp:
        from sidecar.web.public import create_public_app  # quart: at the first request

        app = create_public_app(context)
        app.config["BODY_TIMEOUT"] = body_timeout_seconds
        if admin is not None:
            from sidecar.web.admin import install_admin_routes

            install_admin_routes(app, admin)
        return app

    behind = Probes(DeferredApp(build, "public"), context)
    if context.inbound is None:
        return behind
    return LeanInbound(
        behind,
        inbound=context.inbound,
        per_ip=context.inbound_limiter,
        limit_bytes=INBOUND_BODY_LIMIT,
        body_timeout=lambda: body_timeout_seconds,
        trusted_proxies=context.trusted_proxies,
    )


def admin_front(admin: AdminContext, *, body_timeout_seconds: float) -> ASGIApp:
    """The admin listener's app (ADMIN_HOST:ADMIN_PORT)."""

    def build() -> ASGIApp:
        from sidecar.web.admin import create_admin_app  # quart: at the first request

        app = create_admin_app(admin)
        app.config["BODY_TIMEOUT"] = body_timeout_seconds
        return app

    return DeferredApp(build, "admin")
