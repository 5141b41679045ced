"""The admin console: what the engineer on call looks at, in a browser (`/admin/ui`).

A view over the admin service (`sidecar.admin`), the one the admin API and the CLI call:
server-rendered pages (quart's Jinja templates, autoescaped), one stylesheet and one
small script served from the package, no inline script, no CDN. Sign-in exchanges the
admin token (or the read-only one) for a session cookie; see `access` for the checks.
"""

from __future__ import annotations

from quart import Blueprint, Quart

from sidecar.admin.service import AdminService
from sidecar.security.tokens import TokenMatcher
from sidecar.web.console.access import (
    CONSOLE_PREFIX,
    PAGE_RATE_BURST,
    PAGE_RATE_PER_SECOND,
    ConsoleAccess,
    install_access,
)
from sidecar.web.console.actions import install_actions
from sidecar.web.console.pages import install_pages
from sidecar.web.console.rendering import pretty
from sidecar.web.console.sessions import Sessions
from sidecar.web.rate_limit import RateLimiter

__all__ = ["CONSOLE_PREFIX", "install_console"]


def install_console(
    app: Quart,
    *,
    service: AdminService,
    token: TokenMatcher | None,
    readonly_token: TokenMatcher | None,
    limiter: RateLimiter,
    session_idle_seconds: float,
    cookie_secure: bool = False,
) -> None:
    """Serve the console on `app` under /admin/ui; `limiter` is the admin API's own."""
    access = ConsoleAccess(
        service=service,
        token=token,
        readonly_token=readonly_token,
        sign_in_limiter=limiter,
        page_limiter=RateLimiter(burst=PAGE_RATE_BURST, per_second=PAGE_RATE_PER_SECOND),
        sessions=Sessions(idle_seconds=session_idle_seconds),
        cookie_secure=cookie_secure,
    )
    console = Blueprint(
        "console",
        __name__,
        url_prefix=CONSOLE_PREFIX,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    console.add_app_template_filter(pretty, "pretty")
    install_pages(console, service)
    install_actions(console, service)
    app.register_blueprint(console)
    install_access(app, access)
