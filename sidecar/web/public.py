"""The public listener's routes: what ShopiMind calls (PROTOCOL §1), plus health and manifest.

Routes are thin: limit, read, verify, hand over to one function of the rules, format.
The order matters: the per-IP rate limit runs before anything costs CPU (HMAC), and the
body is read raw because signatures cover its exact bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from sidecar.inbound import InboundRequest, InboundService
from sidecar.lifecycle.answers import Answer
from sidecar.logs import get_logger
from sidecar.payloads import MAX_INT
from sidecar.security.signature import Verification, verify
from sidecar.web.contexts import (
    INBOUND_BODY_LIMIT,
    PUBLIC_RATE_BURST,
    PUBLIC_RATE_PER_SECOND,
    PublicContext,
)
from sidecar.web.probes import health_answer, ready_answer
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.requests import KIB, MIB, client_ip, read_json_body, trust_proxies
from sidecar.web.responses import (
    install_error_handlers,
    json_error,
    json_error_code,
    json_response,
)

__all__ = [
    "PUBLIC_RATE_BURST",
    "PUBLIC_RATE_PER_SECOND",
    "PublicContext",
    "create_public_app",
]

_WEBHOOK_LIMIT = 1 * MIB
_WIZARD_LIMIT = 64 * KIB
_FLOODING_TRACKED = 10_000

_access = get_logger("access")


def _respond(answer: Answer) -> Response:
    return json_response(answer.body, answer.status)


def install_access_log(app: QuartTrio) -> None:
    """One structured line per request: method, path, status, duration, client."""

    @app.before_request
    async def _start() -> None:
        g.sidecar_started = trio.current_time()

    @app.after_request
    async def _log(response: Response) -> Response:
        started = float(getattr(g, "sidecar_started", trio.current_time()))
        _access.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round((trio.current_time() - started) * 1000, 2),
            client=client_ip(request),
        )
        return response


def create_public_app(context: PublicContext) -> QuartTrio:
    """The quart-trio app served on HOST:PORT."""
    app = QuartTrio("shopimind-sidecar")
    app.config["MAX_CONTENT_LENGTH"] = _WEBHOOK_LIMIT
    trust_proxies(app, context.trusted_proxies)
    install_error_handlers(app)
    install_access_log(app)

    def limited(limiter: RateLimiter = context.limiter) -> Response | None:
        ip = client_ip(request)
        if limiter.allow(ip):
            return None
        response = json_error(429, "rate_limited")
        response.headers["Retry-After"] = str(max(1, round(limiter.retry_after_seconds(ip))))
        return response

    # Clients whose current burst of 429s is already in the webhook log: a flood is
    # logged once per burst, so the limit that spares the CPU spares the store too.
    flooding: set[str] = set()

    async def refused_early(route: str) -> Response | None:
        """The 429 answer when the client is over its limit; logged (once per burst) like
        every refusal made before the body is read."""
        ip = client_ip(request)
        refused = limited()
        if refused is None:
            flooding.discard(ip)
        elif ip not in flooding:
            if len(flooding) >= _FLOODING_TRACKED:
                flooding.clear()
            flooding.add(ip)
            await context.receiver.log_refused(
                route=route, status=429, code="rate_limited", length=request.content_length
            )
        return refused

    async def signed_body(limit: int, route: str) -> tuple[bytes, Verification]:
        try:
            raw = await read_json_body(request, limit=limit)
        except (RequestEntityTooLarge, UnsupportedMediaType) as exc:
            status = exc.code or 400
            await context.receiver.log_refused(
                route=route,
                status=status,
                code=json_error_code(status),
                length=request.content_length,
            )
            raise
        verification = verify(
            secrets=context.webhook_secrets(),
            timestamp=request.headers.get("x-shopimind-timestamp"),
            signature=request.headers.get("x-shopimind-signature"),
            body=raw,
            tolerance_seconds=context.tolerance_seconds,
        )
        return raw, verification

    @app.post("/webhook/receive")
    async def receive() -> Response:
        if (refused := await refused_early("webhook")) is not None:
            return refused
        raw, verification = await signed_body(_WEBHOOK_LIMIT, "webhook")
        signature = request.headers.get("x-shopimind-signature", "")
        return _respond(await context.receiver.receive(raw, verification, signature=signature))

    @app.post("/webhook/test-connection")
    async def test_connection() -> Response:
        if (refused := await refused_early("test_connection")) is not None:
            return refused
        raw, verification = await signed_body(_WIZARD_LIMIT, "test_connection")
        admitted = await context.receiver.admit(raw, verification, route="test_connection")
        if isinstance(admitted, Answer):
            return _respond(admitted)
        return _respond(await context.wizard.test_connection(admitted.payload))

    @app.post("/webhook/remote-data/<resource>")
    async def remote_data(resource: str) -> Response:
        route = f"remote_data:{resource[:64]}"
        if (refused := await refused_early(route)) is not None:
            return refused
        raw, verification = await signed_body(_WIZARD_LIMIT, route)
        admitted = await context.receiver.admit(raw, verification, route=route)
        if isinstance(admitted, Answer):
            return _respond(admitted)
        return _respond(await context.wizard.remote_data(resource, admitted.payload))

    if context.inbound is not None:
        _install_inbound_routes(app, context.inbound, context.inbound_limiter, limited)

    @app.get("/ready")
    async def ready() -> Response:
        return _respond(await ready_answer(context))

    @app.get("/health")
    async def health() -> Response:
        return _respond(await health_answer(context))

    @app.get("/manifest")
    async def manifest() -> Response:
        return json_response(context.manifest)

    return app


def _install_inbound_routes(
    app: QuartTrio,
    inbound: InboundService,
    per_ip: RateLimiter,
    limited: Callable[[RateLimiter], Response | None],
) -> None:
    """`POST /inbound/{action}` and `GET /inbound/events/{id}` (PROTOCOL §5). Served, the
    POST is answered by `LeanInbound` before quart sees it; this route declares its methods
    (a GET is a 405) and is the same pipeline for an app driven without the ASGI wrapper."""

    @app.post("/inbound/<action>")
    async def inbound_call(action: str) -> Response:
        if (refused := limited(per_ip)) is not None:
            return refused
        raw = await read_json_body(request, limit=INBOUND_BODY_LIMIT)
        call = InboundRequest.from_headers(request.headers, raw)
        return _respond(await inbound.receive(action, call))

    # An id beyond what the store can hold matches no route: 404, as an unknown id.
    @app.get(f"/inbound/events/<int(max={MAX_INT}):event_id>")
    async def inbound_event(event_id: int) -> Response:
        if (refused := limited(per_ip)) is not None:
            return refused
        # Signed over an empty body, whatever a client may have sent along.
        call = InboundRequest.from_headers(request.headers, b"")
        return _respond(await inbound.event_status(event_id, call))
