"""Pages rendered with quart's Jinja templates (autoescaped: every value is text)."""

from __future__ import annotations

import json
from typing import Final

from quart import Response, g, render_template

__all__ = ["pretty", "render", "see_other"]

_HTML: Final = "text/html; charset=utf-8"


async def render(template: str, code: int = 200, /, **context: object) -> Response:
    """`template` rendered with `context`, the session's CSRF token, whether it is
    read-only, and its pending notice."""
    session = getattr(g, "console_session", None)
    if session is not None and "notice" not in context:
        context["notice"] = session.take_notice()
    body = await render_template(
        template,
        signed_in=session is not None,
        csrf="" if session is None else session.csrf,
        read_only=session is not None and session.read_only,
        **context,
    )
    return Response(body, code, content_type=_HTML)


def see_other(location: str) -> Response:
    """A redirect after a POST (or to the sign-in form): 303, the next request a GET."""
    return Response("", 303, headers={"Location": location})


def pretty(value: object, compact: bool = False) -> str:
    """A stored value as readable JSON text (escaped like any other text when rendered)."""
    if compact:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
