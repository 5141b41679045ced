"""The app bridge: the sidecar's calls to the vendor's app (DESIGN "The app bridge").

Every call is a JSON `POST` to `APP_BASE_URL + path`, signed exactly like ShopiMind signs
its calls to the sidecar, so the vendor verifies with the same few lines it would write
for ShopiMind. In PHP:

    $ts   = $_SERVER['HTTP_X_SIDECAR_TIMESTAMP'] ?? '';
    $sig  = $_SERVER['HTTP_X_SIDECAR_SIGNATURE'] ?? '';
    $body = file_get_contents('php://input');      // the raw bytes, before json_decode
    if (!ctype_digit($ts) || abs(time() - (int) $ts) > 300) {
        http_response_code(401); exit;             // missing, malformed or stale timestamp
    }
    $expected = hash_hmac('sha256', $ts . '.' . $body, getenv('APP_SECRET'));
    if (!hash_equals($expected, $sig)) {
        http_response_code(401); exit;             // constant-time comparison
    }
    $request = json_decode($body, true);

That is: hex(HMAC-SHA256(APP_SECRET, "<x-sidecar-timestamp>.<raw body>")) compared in
constant time with `x-sidecar-signature`, and a timestamp no more than five minutes old.

Every bridge call is safe to replay (a read, or a notification the app must treat as
idempotent), so 429, 5xx and connection failures are retried with the one outbound policy
(`sidecar.outbound.send`). Whatever goes wrong after that — the app unreachable, a non-2xx
status, a body that is not JSON, an answer that breaks the contract — is one
`BridgeError` whose message names the call and the problem. Messages and logs carry the
call path, the status and the duration; never the secret, the settings or the items.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import trio

from sidecar.bridge.answers import (
    ConnectionCheck,
    LifecycleAnswer,
    MalformedAnswerError,
    RemoteOption,
    SyncPage,
    parse_connection_check,
    parse_lifecycle_answer,
    parse_provisioning,
    parse_remote_options,
    parse_sources,
    parse_sync_page,
)
from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.declaration.model import LifecycleEvent
from sidecar.errors import BridgeError
from sidecar.logs import get_logger
from sidecar.metrics.hooks import CallObserver
from sidecar.outbound import (
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLargeError,
    HttpResponse,
    RetryPolicy,
    parse_retry_after,
    send,
)
from sidecar.payloads import InvalidJsonError, parse_json
from sidecar.peer_guard import CircuitOpenError, PeerGuard
from sidecar.security.signature import sign

__all__ = [
    "DEFAULT_BRIDGE_TIMEOUT_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AppBridge",
]

DEFAULT_BRIDGE_TIMEOUT_SECONDS: Final = 30.0
TIMESTAMP_HEADER: Final = "x-sidecar-timestamp"
SIGNATURE_HEADER: Final = "x-sidecar-signature"

_APP_MESSAGE_CHARS: Final = 200
"""How much of the app's own `error` text a BridgeError quotes: enough to act on."""

_DEFAULT_POLICY: Final = RetryPolicy()

_T = TypeVar("_T")


def _segment(what: str, value: str) -> str:
    """One path segment, quoted so that a name can never reach another route."""
    if value in ("", ".", ".."):
        raise ValueError(f"{what} must be a name, not {value!r}")
    return quote(value, safe="")


def _encode(payload: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON: serialized once, so the bytes signed are the bytes sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _app_message(response: HttpResponse) -> str:
    """The app's own explanation of a failure (`error` or `message`), shortened; or ''."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    for key in ("error", "message"):
        text = answer.get(key)
        if isinstance(text, str) and text.strip():
            shown = text.strip()
            if len(shown) > _APP_MESSAGE_CHARS:
                shown = shown[:_APP_MESSAGE_CHARS] + "…"
            return f"; the app said {shown!r}"
    return ""


class AppBridge:
    """A client of the vendor's app. Stateless between calls: share one per process."""

    __slots__ = (
        "_base_url",
        "_clock",
        "_guard",
        "_http",
        "_log",
        "_max_body_bytes",
        "_observe",
        "_policy",
        "_secret",
        "_timeout_seconds",
    )

    def __init__(
        self,
        *,
        base_url: str,
        secret: str,
        http: httpx.AsyncClient,
        policy: RetryPolicy = _DEFAULT_POLICY,
        clock: Clock = system_clock,
        timeout_seconds: float = DEFAULT_BRIDGE_TIMEOUT_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        observe: CallObserver | None = None,
        guard: PeerGuard | None = None,
    ) -> None:
        """Point the bridge at `base_url` (APP_BASE_URL, e.g. `http://127.0.0.1:8000/shopimind`).

        `http` belongs to the caller, who closes it. `timeout_seconds` bounds each attempt
        and `policy` decides the retries, as for every outbound call (`sidecar.outbound`).
        `observe` is told the outcome of every call (metrics); `guard` is the app's circuit
        breaker, shared by every bridge of the process.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the app's base URL must be an absolute http:// or https:// URL")
        if parts.username or parts.password:
            # The URL is logged; calls are authenticated by their signature instead.
            raise ValueError("the app's base URL must not embed credentials (user:password@)")
        if not secret:
            raise ValueError("the app bridge needs a secret to sign its calls")
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._http = http
        self._policy = policy
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._max_body_bytes = max_body_bytes
        self._observe = observe
        self._guard = guard
        self._log = get_logger("bridge")

    def __repr__(self) -> str:
        return f"AppBridge(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The app's base URL, without a trailing slash."""
        return self._base_url

    async def test_connection(self, settings: Mapping[str, object]) -> ConnectionCheck:
        """Ask the app whether the merchant's settings work (config wizard, activation)."""
        return await self._call(
            "/test-connection", {"settings": dict(settings)}, parse_connection_check
        )

    async def remote_data(
        self, resource: str, settings: Mapping[str, object]
    ) -> tuple[RemoteOption, ...]:
        """The options of a select whose choices live in the app (e.g. its stores)."""
        path = f"/remote-data/{_segment('resource', resource)}"
        return await self._call(path, {"settings": dict(settings)}, parse_remote_options)

    async def lifecycle(
        self,
        event: LifecycleEvent,
        *,
        installation_id: str,
        settings: Mapping[str, object],
        shop_domain: str | None,
        shop_name: str | None,
        inbound_secret: str | None,
        provisioning_ids: Mapping[str, object] | None = None,
    ) -> LifecycleAnswer:
        """Tell the app an installation changed state; it may answer with its own account.

        `inbound_secret` is how the app learns to sign its inbound calls; it travels only
        in this body, over the signed call. `provisioning_ids` (on `activated`: the fresh
        `{"sourceIds": …, "defIds": …}`, PROTOCOL §1.3) is sent as null when None.
        """
        payload: dict[str, object] = {
            "installation_id": installation_id,
            "event": event,
            "settings": dict(settings),
            "shop_domain": shop_domain,
            "shop_name": shop_name,
            "inbound_secret": inbound_secret,
            "provisioning_ids": None if provisioning_ids is None else dict(provisioning_ids),
        }
        path = f"/lifecycle/{_segment('event', event)}"
        return await self._call(path, payload, parse_lifecycle_answer)

    async def provisioning(
        self, installation_id: str, settings: Mapping[str, object]
    ) -> dict[str, object]:
        """The extra provisioning plan (`dynamic = true`), as a JSON object still to validate."""
        payload = {"installation_id": installation_id, "settings": dict(settings)}
        return await self._call("/provisioning", payload, parse_provisioning)

    async def sources(
        self, entity: str, *, installation_id: str, settings: Mapping[str, object]
    ) -> tuple[str, ...]:
        """The source keys of a per-source sync step (e.g. one per store), unique."""
        path = f"/sources/{_segment('entity', entity)}"
        payload = {"installation_id": installation_id, "settings": dict(settings)}
        return await self._call(path, payload, parse_sources)

    async def sync_page(
        self,
        entity: str,
        *,
        installation_id: str,
        settings: Mapping[str, object],
        source_key: str,
        since: datetime,
        until: datetime,
        cursor: str | None,
        limit: int,
    ) -> SyncPage:
        """One page of `entity` items updated in `(since, until]`, from `cursor` (None: start).

        The app answers at most `limit` items and an opaque `next` token, None on the last
        page. Ending the pagination is the caller's business (a page cap).
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1; got {limit}")
        payload: dict[str, object] = {
            "installation_id": installation_id,
            "settings": dict(settings),
            "source_key": source_key,
            "window": {"since": format_timestamp(since), "until": format_timestamp(until)},
            "cursor": cursor,
            "limit": limit,
        }
        path = f"/sync/{_segment('entity', entity)}"
        # An item holding a number JSON cannot carry on is the item's problem, not the
        # page's: it stays in the page, marked, to be rejected alone (`sidecar.payloads`).
        return await self._call(
            path, payload, lambda answer: parse_sync_page(answer, limit=limit), numbers="mark"
        )

    async def _call(
        self,
        path: str,
        payload: Mapping[str, object],
        parse: Callable[[object], _T],
        *,
        numbers: Literal["refuse", "mark"] = "refuse",
    ) -> _T:
        try:
            body = _encode(payload)
        except ValueError as exc:  # a non-finite number in stored settings, say
            raise BridgeError(f"the app's {path} call cannot be sent as JSON ({exc})") from exc

        def headers() -> dict[str, str]:
            # Signed per attempt: a retry minutes later carries a fresh timestamp, so it is
            # never refused by the app as stale.
            timestamp = str(int(self._clock().timestamp()))
            return {
                "content-type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            }

        log = self._log.bind(call=path)
        started = trio.current_time()
        try:
            response = await send(
                self._http,
                "POST",
                self._base_url + path,
                headers=headers,
                content=body,
                replayable=True,
                policy=self._policy,
                log=log,
                timeout_seconds=self._timeout_seconds,
                max_body_bytes=self._max_body_bytes,
                clock=self._clock,
                observe=self._observe,
                guard=self._guard,
            )
        except BodyTooLargeError as exc:
            message = f"app's {path} answer is larger than {self._max_body_bytes} bytes"
            log.warning("app bridge answer refused", reason=message, duration_ms=_ms(started))
            raise BridgeError(message) from exc
        except CircuitOpenError as exc:
            message = f"app bridge call {path} not sent: {exc}"
            log.warning(message)
            raise BridgeError(message) from exc
        except httpx.TransportError as exc:
            attempts = self._policy.max_retries + 1
            message = (
                f"app bridge unreachable at {self._base_url}: {path} failed after "
                f"{attempts} attempt{'s' if attempts > 1 else ''} ({_describe(exc)})"
            )
            log.error(message, duration_ms=_ms(started))
            raise BridgeError(message) from exc
        status = response.status
        if not response.ok:
            hint = " (does APP_SECRET match the app's?)" if status in (401, 403) else ""
            message = f"app answered {path} with HTTP {status}{hint}{_app_message(response)}"
            log.warning("app bridge call failed", status=status, duration_ms=_ms(started))
            raise BridgeError(
                message,
                status=status,
                retry_after_seconds=parse_retry_after(
                    response.headers.get("retry-after"), now=self._clock()
                ),
            )
        try:
            answer = parse_json(response.body, numbers=numbers)
        except InvalidJsonError as exc:
            message = (
                f"app's {path} answer is not acceptable JSON ({exc.rule}, "
                f"{len(response.body)} bytes)"
            )
            log.warning("app bridge answer refused", status=status, reason=message)
            raise BridgeError(message, status=status) from exc
        try:
            parsed = parse(answer)
        except MalformedAnswerError as exc:
            message = f"app's {path} answer: {exc}"
            log.warning("app bridge answer refused", status=status, reason=message)
            raise BridgeError(message, status=status) from exc
        log.debug("app bridge call", status=status, duration_ms=_ms(started))
        return parsed


def _ms(started: float) -> int:
    return round((trio.current_time() - started) * 1000)
