"""Answering a request on the ASGI messages themselves, as the quart apps would answer it.

The routes served without quart (`sidecar.web.lean_inbound`, `sidecar.web.probes`) read
the request head and write their JSON answer and access log line through these, so a
client and the log cannot tell them from quart's: the same headers (a refusal of a
request with a body closes the connection, as `install_error_handlers` has quart do), the
same encoding, the same line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio

from sidecar.client_address import FORWARDED_FOR, Network, client_address
from sidecar.logs import get_logger
from sidecar.web.json_wire import closes_after_refusal, json_bytes

__all__ = ["ASGIApp", "RequestHead", "answer_json", "read_head"]

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_JSON_HEADER: Final = (b"content-type", b"application/json")
_CLOSE_HEADER: Final = (b"connection", b"close")
_FORWARDED: Final = FORWARDED_FOR.encode()

_access = get_logger("access")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What a raw route reads of a request before its body."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Lower-cased names; the first of repeated headers wins, as werkzeug's `get` has it."""
    client: str
    """The client's address (TRUSTED_PROXIES applied: `sidecar.client_address`)."""
    started: float
    """trio's clock when the route took the request: the access line's duration."""


def read_head(scope: Any, trusted_proxies: Sequence[Network]) -> RequestHead:
    """The method, path, headers and client of an HTTP scope."""
    headers: dict[str, str] = {}
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        if name.lower() == _FORWARDED:  # every one of them, in order
            forwarded.append(value.decode("latin-1"))
    peer = scope.get("client")
    return RequestHead(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        client=client_address(str(peer[0]) if peer else None, forwarded, trusted_proxies),
        started=trio.current_time(),
    )


async def answer_json(
    send: Any,
    head: RequestHead,
    status: int,
    body: Mapping[str, object],
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Log the access line (before the answer leaves, as quart's after_request does), then
    send `body` as JSON with `status`; a HEAD request gets the headers only."""
    _access.info(
        "request",
        method=head.method,
        path=head.path,
        status=status,
        duration_ms=round((trio.current_time() - head.started) * 1000, 2),
        client=head.client,
    )
    encoded = json_bytes(body)
    headers = [_JSON_HEADER, (b"content-length", b"%d" % len(encoded)), *extra_headers]
    if closes_after_refusal(status, head.method):
        headers.append(_CLOSE_HEADER)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    payload = b"" if head.method == "HEAD" else encoded
    await send({"type": "http.response.body", "body": payload, "more_body": False})
