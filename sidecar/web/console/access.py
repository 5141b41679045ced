"""Who may see the console and do what: sign-in and sign-out, the session cookie, the
checks every request goes through, and the security headers of every answer.

    every /admin/ui request (static files aside):
    1. the per-address limit: the admin API's own limiter (burst 10, 1/s) until signed
       in, so a token cannot be guessed faster here than through the API; a signed-in
       browser gets the page limiter (a page load and its refreshes)    429
    2. a session (cookie `sidecar_console`, sliding expiry); none or expired: a page is
       redirected to the sign-in form, a POST refused              303 / 401, audited
    3. a POST must come from the console itself: `Sec-Fetch-Site` (when sent) is
       `same-origin`, `Origin` (when sent) is this host, the form's `csrf` field is the
       session's token                                              403, audited
    4. a read-only session (ADMIN_READONLY_TOKEN) may POST nothing but its sign-out
                                                                     403, audited
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from sidecar.admin.service import AdminService, Caller
from sidecar.logs import get_logger
from sidecar.security.tokens import TokenMatcher
from sidecar.web.console.rendering import render, see_other
from sidecar.web.console.sessions import Session, Sessions
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.requests import client_ip

__all__ = [
    "CONSOLE_PREFIX",
    "CONTENT_SECURITY_POLICY",
    "COOKIE_NAME",
    "PAGE_RATE_BURST",
    "PAGE_RATE_PER_SECOND",
    "ConsoleAccess",
    "install_access",
]

CONSOLE_PREFIX: Final = "/admin/ui"
COOKIE_NAME: Final = "sidecar_console"
PAGE_RATE_BURST: Final = 120
PAGE_RATE_PER_SECOND: Final = 4.0
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SIGN_IN: Final = CONSOLE_PREFIX + "/sign-in"
_SIGN_OUT: Final = CONSOLE_PREFIX + "/sign-out"
_STATIC: Final = CONSOLE_PREFIX + "/static/"
_MAX_TOKEN: Final = 1000

_log = get_logger("admin")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleAccess:
    """What the console's checks work with."""

    service: AdminService
    token: TokenMatcher | None
    """ADMIN_TOKEN; None: nobody can sign in with full rights."""
    readonly_token: TokenMatcher | None
    sign_in_limiter: RateLimiter
    """The admin API's limiter, shared."""
    page_limiter: RateLimiter
    sessions: Sessions
    cookie_secure: bool
    """Mark the cookie Secure even over plain HTTP (TLS ends at a proxy in front)."""


def current_session() -> Session:
    """The signed-in session of this request (the guard let it through)."""
    session: Session = g.console_session
    return session


def caller() -> Caller:
    """Who acts: the console, read-only or not, and from which address."""
    session: Session | None = getattr(g, "console_session", None)
    actor = "console:read-only" if session is not None and session.read_only else "console"
    return Caller(actor=actor, client_ip=client_ip(request))


def _cross_site() -> bool:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.host


async def _csrf_ok(session: Session) -> bool:
    presented = (await request.form).get("csrf", "")
    return hmac.compare_digest(session.csrf.encode(), presented.encode("utf-8", "replace"))


def _to_sign_in(*, expired: bool) -> Response:
    response = see_other(_SIGN_IN + ("?expired=1" if expired else ""))
    response.delete_cookie(COOKIE_NAME, path=CONSOLE_PREFIX)
    return response


def install_access(app: Quart, access: ConsoleAccess) -> None:
    """Add the guard, the security headers, and the sign-in and sign-out routes."""
    service = access.service

    async def refuse(status: int, outcome: str, message: str) -> Response:
        _log.warning("console request refused", outcome=outcome, path=request.path)
        await service.record_access(
            caller(), "console.refused", outcome=outcome, target=request.path
        )
        return await render("console/error.html", status, message=message, title="Refused")

    @app.before_request
    async def _guard() -> Response | None:
        path = request.path
        if not (path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")):
            return None
        if path.startswith(_STATIC):
            return None
        ip = client_ip(request)
        presented = request.cookies.get(COOKIE_NAME)
        session = access.sessions.find(presented)
        limiter = access.page_limiter if session is not None else access.sign_in_limiter
        if not limiter.allow(ip):
            refused = await render(
                "console/error.html", 429, title="Too many requests", message="Wait a moment."
            )
            retry = limiter.retry_after_seconds(ip)
            refused.headers["Retry-After"] = str(max(1, round(retry)))
            return refused
        g.console_session = session
        g.console_session_id = presented
        if path == _SIGN_IN:
            return None
        if session is None:
            if presented:
                await service.record_access(
                    caller(), "console.refused", outcome="session_expired", target=path
                )
            if request.method == "GET":
                return _to_sign_in(expired=bool(presented))
            response = await refuse(401, "no_session", "Sign in first.")
            response.delete_cookie(COOKIE_NAME, path=CONSOLE_PREFIX)
            return response
        if request.method == "POST":
            if _cross_site():
                return await refuse(403, "cross_site", "This form was not sent by the console.")
            if not await _csrf_ok(session):
                return await refuse(403, "csrf", "The form's CSRF token is missing or wrong.")
            if session.read_only and path != _SIGN_OUT:
                return await refuse(403, "read_only", "A read-only session can change nothing.")
        unrouted = request.routing_exception
        if isinstance(unrouted, HTTPException):  # no such page (or method): say so in HTML
            code = unrouted.code or 404
            message = "No such page." if code == 404 else "Not something this page does."
            return await render("console/error.html", code, title="Not found", message=message)
        return None

    @app.after_request
    async def _headers(response: Response) -> Response:
        path = request.path
        if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
            headers = response.headers
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            headers["X-Frame-Options"] = "DENY"
            headers["X-Content-Type-Options"] = "nosniff"
            # (not no-referrer: Chromium then sends `Origin: null` with the console's own forms)
            headers["Referrer-Policy"] = "same-origin"
            headers["Cross-Origin-Opener-Policy"] = "same-origin"
            if not path.startswith(_STATIC):
                headers["Cache-Control"] = "no-store"
        return response

    @app.get(_SIGN_IN)
    async def sign_in_form() -> Response:
        if getattr(g, "console_session", None) is not None:
            return see_other(CONSOLE_PREFIX)
        expired = request.args.get("expired") == "1"
        return await render(
            "console/sign_in.html",
            notice="Your session expired; sign in again." if expired else None,
        )

    @app.post(_SIGN_IN)
    async def sign_in() -> Response:
        if _cross_site():
            return await refuse(403, "cross_site", "This form was not sent by the console.")
        token = (await request.form).get("token", "")[:_MAX_TOKEN]
        read_only: bool
        if access.token is not None and access.token.matches(token):
            read_only = False
        elif access.readonly_token is not None and access.readonly_token.matches(token):
            read_only = True
        else:
            _log.warning("console sign-in refused", client=client_ip(request))
            await service.record_access(caller(), "console.sign_in", outcome="unauthorized")
            return await render(
                "console/sign_in.html", 401, error="That token is not valid.", title="Sign in"
            )
        access.sessions.close(getattr(g, "console_session_id", None))  # never two at once
        session_id, session = access.sessions.open(read_only=read_only)
        g.console_session = session
        await service.record_access(
            caller(), "console.sign_in", outcome="ok", target="read-only" if read_only else "full"
        )
        response = see_other(CONSOLE_PREFIX)
        response.set_cookie(
            COOKIE_NAME,
            session_id,
            path=CONSOLE_PREFIX,
            httponly=True,
            samesite="Strict",
            secure=access.cookie_secure or request.scheme == "https",
        )
        return response

    @app.post(_SIGN_OUT)
    async def sign_out() -> Response:
        await service.record_access(caller(), "console.sign_out", outcome="ok")
        access.sessions.close(getattr(g, "console_session_id", None))
        response = see_other(_SIGN_IN)
        response.delete_cookie(COOKIE_NAME, path=CONSOLE_PREFIX)
        return response
