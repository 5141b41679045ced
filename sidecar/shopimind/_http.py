"""The HTTP verbs of the ShopiMind API, on top of `sidecar.outbound.send` (PROTOCOL §6).

`outbound.send` owns timeouts, the body cap, redirects and retries; this module decides
what may be replayed (reads, PUT and DELETE always; POST and PATCH only with an
`Idempotency-Key`, since a replayed create could create twice) and turns every failure —
a failing status, no answer, a body that is not JSON — into one `ShopimindError` whose
message names the request, the HTTP status text and the API's own `message`, and never
the key or a body.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlsplit

import httpx

from sidecar._env import is_loopback_host
from sidecar.clock import Clock, system_clock
from sidecar.errors import ShopimindError
from sidecar.logs import BoundLogger, get_logger
from sidecar.metrics.hooks import CallObserver
from sidecar.outbound import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    RetryPolicy,
    parse_retry_after,
    send,
)
from sidecar.payloads import InvalidJsonError
from sidecar.peer_guard import PeerGuard
from sidecar.shopimind._wire import encode_json, failure_message, rows_of, transport_message

__all__ = ["ApiResult", "ApiVerbs", "Method", "Transport", "checked_base_url"]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_REPLAYABLE: Final = frozenset({"GET", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiResult:
    """A write's answer: the HTTP status and the parsed JSON body (None when empty)."""

    status: int
    body: object

    @property
    def data(self) -> object:
        """`body["data"]` when the body is the `{statusCode, data}` envelope, else the body."""
        if isinstance(self.body, Mapping) and "data" in self.body:
            return self.body["data"]
        return self.body


def checked_base_url(base_url: str) -> str:
    """The base without a trailing slash; ValueError for `http://` on a non-loopback host."""
    text = base_url.strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        parts, host = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"the ShopiMind API base must be an absolute https:// URL; got {text!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the ShopiMind API base must not hold credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            "the ShopiMind API base must use https:// for a host other than loopback "
            f"(the API key would travel in clear); got {text!r}"
        )
    return text.rstrip("/")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transport:
    """Where and how requests go: shared by every installation of the process."""

    base_url: str
    http: httpx.AsyncClient
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = system_clock
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    observe: CallObserver | None = None
    """Told the outcome of every call (metrics)."""
    guard: PeerGuard | None = None
    """The API's rate limits (per installation and overall) and circuit breaker."""


class ApiVerbs:
    """GET/POST/PUT/PATCH/DELETE on `/v1/<path>` as one installation."""

    __slots__ = ("_headers", "_log", "_transport", "installation_id")

    def __init__(
        self, transport: Transport, access_token: str, installation_id: str | None
    ) -> None:
        self._transport = transport
        self.installation_id = installation_id
        log = get_logger("shopimind")
        self._log: BoundLogger = (
            log.bind(installation_id=installation_id) if installation_id is not None else log
        )
        self._headers: Mapping[str, str] = {
            "spm-api-key": access_token,
            "accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(installation_id={self.installation_id!r})"

    async def request(
        self,
        method: Method,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> ApiResult:
        """Send one request to `/v1/<path>`; a non-2xx status not in `accept` raises.

        `json` (None: no body) is sent as compact JSON. Raises `ShopimindError` for a
        failing status (3xx included: redirects are not followed), no answer, or a 2xx body
        that is not JSON.
        """
        path = path.strip("/")
        url = f"{self._transport.base_url}/v1/{path}"
        if params:
            url = str(httpx.URL(url, params={k: str(v) for k, v in params.items()}))
        headers = dict(self._headers)
        content = None
        if json is not None:
            try:
                content = encode_json(json)
            except (TypeError, ValueError) as exc:
                raise ShopimindError(
                    f"ShopiMind {method} /v1/{path}: the body cannot be sent as JSON ({exc})"
                ) from exc
            headers["content-type"] = "application/json"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        transport = self._transport
        try:
            response = await send(
                transport.http,
                method,
                url,
                headers=headers,
                content=content,
                replayable=method in _REPLAYABLE or idempotency_key is not None,
                policy=transport.policy,
                log=self._log,
                timeout_seconds=transport.timeout_seconds,
                max_body_bytes=transport.max_body_bytes,
                clock=transport.clock,
                observe=transport.observe,
                guard=transport.guard,
                installation_id=self.installation_id,
            )
        except httpx.HTTPError as exc:
            raise ShopimindError(transport_message(method, path, exc)) from exc
        try:
            body = response.json() if response.body.strip() else None
        except InvalidJsonError as exc:
            if response.ok:
                raise ShopimindError(
                    f"ShopiMind {method} /v1/{path}: HTTP {response.status} with a body that "
                    f"is not acceptable JSON ({exc.rule}: {exc})",
                    status=response.status,
                ) from exc
            body = None
        if not response.ok and response.status not in accept:
            raise ShopimindError(
                failure_message(method, path, response.status, body),
                status=response.status,
                retry_after_seconds=parse_retry_after(
                    response.headers.get("retry-after"), now=transport.clock()
                ),
            )
        return ApiResult(status=response.status, body=body)

    async def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> object:
        """Read `/v1/<path>` and return `data` of the `{statusCode, data}` answer."""
        result = await self.request("GET", path, params=params)
        if not isinstance(result.body, Mapping) or "data" not in result.body:
            raise ShopimindError(
                f"ShopiMind GET /v1/{path.strip('/')}: the answer is not the "
                "{statusCode, data} envelope",
                status=result.status,
            )
        return result.body["data"]

    async def post(
        self,
        path: str,
        json: object = None,
        *,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> ApiResult:
        """POST; replayed after a transient failure only with an `idempotency_key`."""
        return await self.request(
            "POST", path, json=json, idempotency_key=idempotency_key, accept=accept
        )

    async def put(
        self,
        path: str,
        json: object = None,
        *,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> ApiResult:
        """PUT (an update: always safe to replay)."""
        return await self.request(
            "PUT", path, json=json, idempotency_key=idempotency_key, accept=accept
        )

    async def patch(
        self,
        path: str,
        json: object = None,
        *,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> ApiResult:
        """PATCH; replayed after a transient failure only with an `idempotency_key`."""
        return await self.request(
            "PATCH", path, json=json, idempotency_key=idempotency_key, accept=accept
        )

    async def delete(
        self,
        path: str,
        json: object = None,
        *,
        idempotency_key: str | None = None,
        accept: Collection[int] = (),
    ) -> ApiResult:
        """DELETE (always safe to replay)."""
        return await self.request(
            "DELETE", path, json=json, idempotency_key=idempotency_key, accept=accept
        )

    async def get_rows(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> list[Mapping[str, object]]:
        """The rows of a listing; ShopimindError when `data` is not a list."""
        rows = rows_of(await self.get(path, params=params))
        if rows is None:
            raise ShopimindError(f"ShopiMind GET /v1/{path.strip('/')}: `data` is not a list")
        return rows

    async def get_object(self, path: str) -> Mapping[str, object]:
        """One object; ShopimindError when `data` is not an object."""
        data = await self.get(path)
        if not isinstance(data, Mapping):
            raise ShopimindError(f"ShopiMind GET /v1/{path.strip('/')}: `data` is not an object")
        return data
