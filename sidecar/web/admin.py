"""The admin routes (`/admin/*`) and `/metrics`, for the person on call (PROTOCOL §9).

Served on their own listener when ADMIN_PORT is set (ADMIN_HOST, loopback by default),
else mounted on the public one. Every request, known route or not, goes through:

    1. the per-IP limit (burst 10, 1/s)            429 rate_limited, Retry-After
    2. the token (`x-admin-token`, or `Authorization: Bearer`), compared in constant
       time on digests (its length does not show); no ADMIN_TOKEN configured: every
       request is refused (fail-closed)          401 unauthorized
       ADMIN_READONLY_TOKEN reads, and any other method is refused (audited)
                                                 403 read_only
    3. the route, which calls the admin service and formats its answer; an operator's
       mistake is `{"success": false, "error": code, "message": …}`

Routes (ids are ShopiMind's installation ids; lists take `limit` and `offset`):

    GET  /admin/overview                               GET  /admin/audit
    GET  /admin/replicas                               (every replica on the database)
    GET  /admin/integration                            GET  /admin/webhooks
    GET  /admin/installations                          GET  /admin/installations/{id}
    GET  /admin/installations/{id}/cursors             …/runs  …/webhooks  …/inbound
    GET  /admin/installations/{id}/outbox[?status=]    …/state  …/dead-letter
    POST /admin/installations/{id}/sync                {"full": true|false}
    POST /admin/installations/{id}/reprovision
    POST /admin/installations/{id}/cursors/reset       {"entity": …, "source_key": …}
    POST /admin/installations/{id}/dead-letter/replay  {"ids": [...]} or nothing (all)
    POST /admin/installations/{id}/dead-letter/purge   {"ids": [...]} or {"all": true}
    POST /admin/reveal/{webhook|outbox|dead_letter}/{item id}
    GET  /metrics                                      Prometheus text format

The console (`/admin/ui`, `sidecar.web.console`) is served beside them, behind its own
guard: a session cookie obtained by signing in with the same token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from quart import Quart, Response, request
from quart_trio import QuartTrio

from sidecar.admin.errors import AdminError, InvalidRequestError
from sidecar.admin.paging import Page
from sidecar.admin.service import Caller
from sidecar.logs import get_logger
from sidecar.payloads import MAX_INT, parse_json
from sidecar.web.console import CONSOLE_PREFIX, install_console
from sidecar.web.contexts import (
    ADMIN_RATE_BURST,
    ADMIN_RATE_PER_SECOND,
    METRICS_CONTENT_TYPE,
    AdminContext,
)
from sidecar.web.public import install_access_log
from sidecar.web.requests import KIB, client_ip, read_json_body, trust_proxies
from sidecar.web.responses import install_error_handlers, json_error, json_response

__all__ = [
    "ADMIN_RATE_BURST",
    "ADMIN_RATE_PER_SECOND",
    "METRICS_CONTENT_TYPE",
    "AdminContext",
    "create_admin_app",
    "install_admin_routes",
]

_BODY_LIMIT: Final = 64 * KIB
_ACTOR: Final = "admin-api"
_GUARDED: Final = ("/admin", "/metrics")

_log = get_logger("admin")


def _presented_token() -> str | None:
    header = request.headers.get("x-admin-token")
    if header is not None:
        return header
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    return None


def _page() -> Page:
    return Page.parse(request.args.get("limit"), request.args.get("offset"))


async def _body() -> Mapping[str, object]:
    """The action's JSON object; an empty body is `{}`."""
    if not request.content_length and request.mimetype != "application/json":
        return {}
    raw = await read_json_body(request, limit=_BODY_LIMIT)
    if not raw.strip():
        return {}
    value = parse_json(raw)  # InvalidJsonError: 400 invalid_json, with the rule
    if not isinstance(value, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return value


def _flag(body: Mapping[str, object], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be true or false")
    return value


def _text(body: Mapping[str, object], name: str, *, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidRequestError(f"{name} must be a {'non-empty ' if required else ''}string")
    return value


def _caller() -> Caller:
    return Caller(actor=_ACTOR, client_ip=client_ip(request))


def _ok(result: Mapping[str, object], status: int = 200) -> Response:
    return json_response({"success": True, **result}, status)


def install_admin_routes(app: Quart, context: AdminContext) -> None:
    """Add the admin routes and `/metrics` to `app`, behind the limit and the token."""
    service = context.service

    @app.before_request
    async def _guard() -> Response | None:
        if not request.path.startswith(_GUARDED) or request.path.startswith(CONSOLE_PREFIX):
            return None  # the console has its own guard (sessions, not a token header)
        ip = client_ip(request)
        if not context.limiter.allow(ip):
            refused = json_error(429, "rate_limited")
            retry = context.limiter.retry_after_seconds(ip)
            refused.headers["Retry-After"] = str(max(1, round(retry)))
            return refused
        presented = _presented_token()
        if context.token is not None and context.token.matches(presented):
            return None
        readonly = context.readonly_token
        if readonly is not None and readonly.matches(presented):
            if request.method in ("GET", "HEAD"):
                return None
            # ADMIN_READONLY_TOKEN reads (payloads masked) and can act on nothing.
            caller = Caller(actor="admin-api:read-only", client_ip=ip)
            await service.record_access(
                caller, "admin.refused", outcome="read_only", target=request.path
            )
            return json_error(403, "read_only", message="the read-only token can change nothing")
        _log.warning("admin request refused: no valid token", path=request.path, client=ip)
        refused = json_error(401, "unauthorized")
        refused.headers["WWW-Authenticate"] = 'Bearer realm="shopimind-sidecar admin"'
        return refused

    @app.errorhandler(AdminError)
    async def _refused(error: AdminError) -> Response:
        return json_error(error.status, error.code, message=str(error))

    @app.get("/admin/overview")
    async def overview() -> Response:
        return _ok(await service.overview())

    @app.get("/admin/replicas")
    async def replicas() -> Response:
        return _ok(await service.replicas())

    @app.get("/admin/integration")
    async def integration() -> Response:
        return _ok(await service.integration())

    @app.get("/admin/audit")
    async def audit() -> Response:
        return _ok(await service.audit(_page()))

    @app.get("/admin/webhooks")
    async def webhooks() -> Response:
        return _ok(await service.webhooks(_page()))

    @app.get("/admin/installations")
    async def installations() -> Response:
        return _ok(await service.installations(_page()))

    @app.get("/admin/installations/<iid>")
    async def installation(iid: str) -> Response:
        return _ok(await service.installation(iid))

    @app.get("/admin/installations/<iid>/cursors")
    async def cursors(iid: str) -> Response:
        return _ok(await service.cursors(iid))

    @app.get("/admin/installations/<iid>/runs")
    async def runs(iid: str) -> Response:
        return _ok(await service.runs(iid, _page()))

    @app.get("/admin/installations/<iid>/webhooks")
    async def installation_webhooks(iid: str) -> Response:
        return _ok(await service.webhooks(_page(), installation_id=iid))

    @app.get("/admin/installations/<iid>/inbound")
    async def inbound(iid: str) -> Response:
        return _ok(await service.inbound(iid, _page()))

    @app.get("/admin/installations/<iid>/outbox")
    async def outbox(iid: str) -> Response:
        return _ok(await service.outbox(iid, _page(), request.args.get("status")))

    @app.get("/admin/installations/<iid>/state")
    async def state(iid: str) -> Response:
        return _ok(await service.state(iid))

    @app.get("/admin/installations/<iid>/dead-letter")
    async def dead_letter(iid: str) -> Response:
        return _ok(await service.dead_letter(iid, _page()))

    @app.post("/admin/installations/<iid>/sync")
    async def sync(iid: str) -> Response:
        full = _flag(await _body(), "full")
        result = await service.sync(iid, full=full, caller=_caller())
        return _ok(result, 202 if result.get("status") == "running" else 200)

    @app.post("/admin/installations/<iid>/reprovision")
    async def reprovision(iid: str) -> Response:
        await _body()
        return _ok(await service.reprovision(iid, caller=_caller()))

    @app.post("/admin/installations/<iid>/cursors/reset")
    async def reset_cursor(iid: str) -> Response:
        body = await _body()
        entity = _text(body, "entity", required=True)
        source_key = _text(body, "source_key", required=False)
        return _ok(await service.reset_cursor(iid, entity, source_key=source_key, caller=_caller()))

    @app.post("/admin/installations/<iid>/dead-letter/replay")
    async def replay(iid: str) -> Response:
        body = await _body()
        return _ok(await service.replay(iid, body.get("ids"), caller=_caller()))

    @app.post("/admin/installations/<iid>/dead-letter/purge")
    async def purge(iid: str) -> Response:
        body = await _body()
        everything = _flag(body, "all")
        return _ok(
            await service.purge(iid, body.get("ids"), everything=everything, caller=_caller())
        )

    # An id beyond what the store can hold matches no route: 404, as an unknown id.
    @app.post(f"/admin/reveal/<kind>/<int(max={MAX_INT}):item_id>")
    async def reveal(kind: str, item_id: int) -> Response:
        return _ok(await service.reveal(kind, item_id, caller=_caller()))

    @app.get("/metrics")
    async def metrics() -> Response:
        if context.metrics is None:
            return json_error(404)
        return Response(await context.metrics(), 200, content_type=METRICS_CONTENT_TYPE)

    install_console(
        app,
        service=service,
        token=context.token,
        readonly_token=context.readonly_token,
        limiter=context.limiter,
        session_idle_seconds=context.session_idle_seconds,
        cookie_secure=context.cookie_secure,
    )


def create_admin_app(context: AdminContext) -> QuartTrio:
    """The quart-trio app of the admin listener (ADMIN_HOST:ADMIN_PORT)."""
    app = QuartTrio("shopimind-sidecar-admin")
    app.config["MAX_CONTENT_LENGTH"] = _BODY_LIMIT
    trust_proxies(app, context.trusted_proxies)
    install_error_handlers(app)
    install_access_log(app)
    install_admin_routes(app, context)
    return app
