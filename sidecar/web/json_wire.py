"""JSON answers as bytes on the wire, without a framework: the error codes of every status,
the encoding quart's `jsonify` uses, and how a refused body and an unexpected error are
answered and logged.

Shared by the routes answered on raw ASGI (`sidecar.web.raw`: inbound calls, probes) and
by the quart apps (`sidecar.web.responses`), so both write the same bytes. Importing this
loads no web framework: the raw routes serve before quart is loaded (`sidecar.web.front`).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from typing import Final

from sidecar.logs import get_logger
from sidecar.payloads import InvalidJsonError

__all__ = [
    "closes_after_refusal",
    "invalid_json_answer",
    "json_bytes",
    "json_error_code",
    "log_unexpected",
]

_log = get_logger("web")

_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def json_error_code(status: int) -> str:
    """The error code answered with `status` when the route names none."""
    return _CODES.get(status, "error")


def closes_after_refusal(status: int, method: str) -> bool:
    """Whether an answer ends its connection: a refusal of a request that carries a body.
    A refusal is often answered before the body is read (a rate limit runs before the
    HMAC, a 413 never reads it): on a kept-alive connection the unread body would stall
    the client's next request."""
    return status >= 400 and method not in _BODYLESS_METHODS


def json_bytes(body: Mapping[str, object]) -> bytes:
    """`body` encoded exactly as quart's `jsonify` encodes it (sorted keys, compact, ASCII,
    a final newline): for the routes answered without quart."""
    return (json.dumps(dict(body), sort_keys=True, separators=(",", ":")) + "\n").encode()


def invalid_json_answer(error: InvalidJsonError) -> dict[str, object]:
    """The body of the 400 refusing a body that is not acceptable JSON, logged as a
    client's mistake: a warning with the rule, never a traceback."""
    _log.warning("refused a body that is not acceptable JSON", rule=error.rule)
    return {"success": False, "error": "invalid_json", "rule": error.rule, "message": str(error)}


def log_unexpected(error: Exception) -> None:
    """An exception a route did not expect: its traceback goes to the server log only."""
    _log.error(
        "unhandled error in a route",
        error=f"{type(error).__name__}: {error}",
        traceback="".join(traceback.format_exception(error)),
    )
