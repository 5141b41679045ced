"""`POST /inbound/{action}` on raw ASGI, in front of the public quart app.

The inbound intake is the public listener's hot route: the vendor's app calls it for every
sale. Quart's request and response objects cost about as much per call as the inbound
rules themselves, so this route is answered here, on the ASGI messages, doing what the
quart route of `sidecar.web.public` does, in the same order:

    per-IP token bucket            429 rate_limited (+ Retry-After), before any HMAC
    JSON content type              415 unsupported_media_type
    64 KiB body (Content-Length,   413 payload_too_large, refused before reading when the
    else while reading)                length is declared
    `InboundService.receive`       every rule of PROTOCOL §5: the one place they live
    a JSON body over the policy    400 invalid_json with its rule (sidecar.payloads)
    an unexpected exception        500 internal_error (traceback in the server log only)

then the answer as quart's `jsonify` writes it, and the same access log line. A refusal
(4xx, 5xx) ends the connection, as `install_error_handlers` has quart do: its body may be
unread, and would stall the client's next request on a kept-alive connection. Anything
else (another method, another path, `GET /inbound/events/{id}`) goes to quart untouched;
the quart route stays declared there, so other methods on the path keep their 405.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import trio

from sidecar.client_address import Network
from sidecar.inbound import InboundRequest, InboundService
from sidecar.lifecycle.answers import Answer
from sidecar.payloads import InvalidJsonError
from sidecar.web.json_wire import invalid_json_answer, json_error_code, log_unexpected
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.raw import ASGIApp, answer_json, read_head

__all__ = ["BODY_TIMEOUT_SECONDS", "LeanInbound"]

BODY_TIMEOUT_SECONDS: Final = 60.0
"""Quart's default BODY_TIMEOUT: a client that stops sending its body mid-way gets a 408."""

_PREFIX: Final = "/inbound/"


class _DisconnectedError(Exception):
    """The client went away before its body arrived: there is no one to answer."""


class LeanInbound:
    """An ASGI app answering `POST /inbound/{action}` itself and passing the rest to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        inbound: InboundService,
        per_ip: RateLimiter,
        limit_bytes: int,
        body_timeout: Callable[[], float] = lambda: BODY_TIMEOUT_SECONDS,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        """`body_timeout` is read at each request: the quart app's BODY_TIMEOUT, which the
        server may set after this is built. `trusted_proxies`: whose X-Forwarded-For names
        the client (TRUSTED_PROXIES)."""
        self._app = app
        self._inbound = inbound
        self._per_ip = per_ip
        self._limit = limit_bytes
        self._body_timeout = body_timeout
        self._trusted = trusted_proxies

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            # `<action>` is one path segment, as quart's route has it.
            if (
                path.startswith(_PREFIX)
                and len(path) > len(_PREFIX)
                and "/" not in path[len(_PREFIX) :]
            ):
                await self._serve(scope, receive, send, path[len(_PREFIX) :])
                return
        await self._app(scope, receive, send)

    async def _serve(self, scope: Any, receive: Any, send: Any, action: str) -> None:
        head = read_head(scope, self._trusted)
        try:
            answer, extra = await self._answer(receive, head.headers, head.client, action)
        except _DisconnectedError:
            return
        await answer_json(send, head, answer.status, answer.body, extra)

    async def _answer(
        self, receive: Any, headers: Mapping[str, str], ip: str, action: str
    ) -> tuple[Answer, list[tuple[bytes, bytes]]]:
        if not self._per_ip.allow(ip):
            retry = max(1, round(self._per_ip.retry_after_seconds(ip)))
            return _error(429, "rate_limited"), [(b"retry-after", str(retry).encode())]
        mimetype = headers.get("content-type", "").partition(";")[0].strip().lower()
        if mimetype != "application/json":
            return _error(415), []
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            return _error(413), []
        raw = await self._body(receive)
        if raw is None:
            return _error(413), []
        if isinstance(raw, Answer):
            return raw, []
        call = InboundRequest.from_headers(headers, raw)
        try:
            return await self._inbound.receive(action, call), []
        except InvalidJsonError as exc:  # as quart's error handler answers it
            return Answer(400, invalid_json_answer(exc)), []
        except Exception as exc:  # noqa: BLE001 - a bug, not the caller's: an opaque 500
            log_unexpected(exc)  # (trio.Cancelled is no Exception: it passes)
            return _error(500), []

    async def _body(self, receive: Any) -> bytes | Answer | None:
        """The whole body; None when it is over the limit; a 408 when it stalls."""
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self._body_timeout()):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _DisconnectedError
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > self._limit:
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        return _error(408)


def _error(status: int, code: str | None = None) -> Answer:
    return Answer(status, {"success": False, "error": code or json_error_code(status)})
