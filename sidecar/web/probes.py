"""`GET /ready` and `GET /health`: what a load balancer, systemd or a monitor polls.

Both answers are made here, once: on raw ASGI by `Probes`, in front of the quart app
(a probe every few seconds must neither load quart nor pay for it, `sidecar.web.front`),
and by the quart routes of `sidecar.web.public` for an app served without the front.

/ready depends on nothing outside the process but its store (not the vendor's app): a
probe must not take the sidecar out because a peer is down, but a sidecar whose database
server is unreachable can serve nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from sidecar.health import check_health, store_answers
from sidecar.lifecycle.answers import Answer
from sidecar.web.contexts import PublicContext
from sidecar.web.json_wire import json_error_code, log_unexpected
from sidecar.web.raw import ASGIApp, answer_json, read_head

__all__ = ["Probes", "health_answer", "ready_answer"]

_METHODS: Final = frozenset({"GET", "HEAD"})


async def ready_answer(context: PublicContext) -> Answer:
    """200 `{"ready": true}` while serving; 503 before, while stopping, or without a store."""
    if not context.ready():
        return Answer(503, {"ready": False})
    if not await store_answers(context.store):
        return Answer(503, {"ready": False, "db": "error"})
    return Answer(200, {"ready": True})


async def health_answer(context: PublicContext) -> Answer:
    """The health report (`sidecar.health`): 200 when healthy, else 503."""
    report = await check_health(
        context.store,
        scheduled=context.scheduled,
        app_state=context.app_health(),
        circuits=context.circuits(),
        replica_id=context.replica_id,
    )
    return Answer(200 if report.healthy else 503, report.body)


class Probes:
    """An ASGI app answering GET and HEAD of /ready and /health itself, and passing every
    other request (another method, another path) to `app` untouched."""

    def __init__(self, app: ASGIApp, context: PublicContext) -> None:
        self._app = app
        self._context = context
        self._routes: dict[str, Callable[[PublicContext], Awaitable[Answer]]] = {
            "/ready": ready_answer,
            "/health": health_answer,
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "http" and scope["method"] in _METHODS:
            route = self._routes.get(scope["path"])
            if route is not None:
                head = read_head(scope, self._context.trusted_proxies)
                try:
                    answer = await route(self._context)
                except Exception as exc:  # noqa: BLE001 - a bug: an opaque 500, as quart's
                    log_unexpected(exc)
                    answer = Answer(500, {"success": False, "error": json_error_code(500)})
                await answer_json(send, head, answer.status, answer.body)
                return
        await self._app(scope, receive, send)
