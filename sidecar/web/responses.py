"""JSON answers, and JSON for every error quart or werkzeug would answer in HTML.

Callers always get `{"success": false, "error": "<code>"}` with the right status: never
a traceback, never an HTML page, never a detail that helps an attacker.
"""

from __future__ import annotations

from collections.abc import Mapping

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sidecar.payloads import InvalidJsonError
from sidecar.web.json_wire import (
    closes_after_refusal,
    invalid_json_answer,
    json_bytes,
    json_error_code,
    log_unexpected,
)

__all__ = [
    "install_error_handlers",
    "invalid_json_answer",
    "json_bytes",
    "json_error",
    "json_error_code",
    "json_response",
    "log_unexpected",
]


def json_response(body: Mapping[str, object], status: int = 200) -> Response:
    """`body` as a JSON response."""
    response = jsonify(dict(body))
    response.status_code = status
    return response


def json_error(status: int, code: str | None = None, **extra: object) -> Response:
    """`{"success": false, "error": code}` with `status`."""
    return json_response(
        {"success": False, "error": code or json_error_code(status), **extra}, status
    )


def install_error_handlers(app: Quart) -> None:
    """Answer every HTTP error and unexpected exception of `app` in JSON, on a connection
    closed after a refusal of a request that carries a body."""

    @app.after_request
    async def _close_after_refusal(response: Response) -> Response:
        if closes_after_refusal(response.status_code, request.method):
            response.headers["Connection"] = "close"
        return response

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        response = json_error(status)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(InvalidJsonError)
    async def _invalid_json(error: InvalidJsonError) -> Response:
        return json_response(invalid_json_answer(error), 400)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        # The traceback goes to the server log; the caller learns nothing but the status.
        log_unexpected(error)
        return json_error(500)
