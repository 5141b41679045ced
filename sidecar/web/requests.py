"""Reading what a route needs from a request: the client's address and a bounded JSON body."""

from __future__ import annotations

from quart import Request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

__all__ = ["KIB", "MIB", "client_ip", "read_json_body"]

KIB = 1024
MIB = 1024 * KIB


def client_ip(request: Request) -> str:
    """The peer's address (the reverse proxy's, when there is one in front)."""
    return request.remote_addr or "unknown"


async def read_json_body(request: Request, *, limit: int) -> bytes:
    """The raw body of a JSON request, at most `limit` bytes.

    Raises the HTTP errors the route answers with: 415 when the body is not declared as
    JSON, 413 when it is larger than the limit (refused from Content-Length when possible,
    without reading it).
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    raw = await request.get_data(False, False, False)  # no cache, bytes, no form parsing
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw
