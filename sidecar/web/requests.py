"""Reading what a route needs from a request: the client's address and a bounded JSON body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from quart import Quart, Request, current_app
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from sidecar.client_address import FORWARDED_FOR, Network, client_address

__all__ = ["KIB", "MIB", "client_ip", "read_json_body", "trust_proxies"]

KIB = 1024
MIB = 1024 * KIB
_TRUSTED_PROXIES: Final = "SIDECAR_TRUSTED_PROXIES"


def trust_proxies(app: Quart, networks: Sequence[Network]) -> None:
    """Have `client_ip` read X-Forwarded-For of requests coming through these proxies."""
    app.config[_TRUSTED_PROXIES] = tuple(networks)


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy the one it forwarded
    (`sidecar.client_address`, the rule of every door)."""
    trusted: tuple[Network, ...] = current_app.config.get(_TRUSTED_PROXIES, ())
    return client_address(request.remote_addr, request.headers.getlist(FORWARDED_FOR), trusted)


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
