"""Outbound HTTP, one policy for every peer (PROTOCOL §6): the ShopiMind API and the app.

- every attempt has a hard deadline (a peer that drips bytes cannot hold a worker);
- answers are read with a size cap, never more;
- redirects are never followed (a redirect could carry the API key elsewhere);
- transient failures are retried with capped exponential backoff and jitter, honouring
  `Retry-After`. A request that may have reached the peer is replayed only when it is
  safe to (`replayable`: a read, or a write carrying an `Idempotency-Key`); a connection
  that never opened is always safe to retry.
"""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx
import trio

from sidecar import __version__
from sidecar.clock import Clock, system_clock
from sidecar.logs import BoundLogger
from sidecar.metrics.hooks import CallObserver, call_outcome
from sidecar.payloads import parse_json
from sidecar.peer_guard import PeerGuard

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_SCHEDULED_RETRY_AFTER_SECONDS",
    "NO_RETRY",
    "RETRYABLE_STATUSES",
    "BodyTooLargeError",
    "HttpResponse",
    "RetryPolicy",
    "new_http_client",
    "parse_retry_after",
    "scheduled_retry_after",
    "send",
    "user_agent",
]

DEFAULT_TIMEOUT_SECONDS: Final = 30.0
DEFAULT_MAX_BODY_BYTES: Final = 25 * 1024 * 1024
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_SERVER_ERROR: Final = 500
"""From this status on, an answer counts as a failure of the peer (its circuit breaker)."""


class BodyTooLargeError(httpx.TransportError):
    """The peer's answer exceeded the size cap; it was not read further."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request."""

    max_retries: int = 3
    base_seconds: float = 1.0
    cap_seconds: float = 10.0
    max_retry_after_seconds: float = 60.0
    """A `Retry-After` longer than this is not waited for: the request fails now."""
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def backoff_seconds(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based): exponential, capped, jittered."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (retry - 1))
        return float(ceiling / 2 + self.jitter() * ceiling / 2)


NO_RETRY: Final = RetryPolicy(max_retries=0)

MAX_SCHEDULED_RETRY_AFTER_SECONDS: Final = 24 * 3600.0
"""A `Retry-After` too long to wait for in the request is honoured by scheduling the work
(a sync cursor's, an outbox event's next attempt) that much later — a day at most, so a
peer's mistake cannot park work for years."""


def scheduled_retry_after(seconds: float | None) -> float | None:
    """How long to put work off for a peer's `Retry-After` (None: it gave none)."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_SCHEDULED_RETRY_AFTER_SECONDS)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete answer: status, headers, and the body (already read, within the cap)."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def json(self) -> object:
        """The body parsed under the JSON policy of every door (`sidecar.payloads`);
        InvalidJsonError (a ValueError) naming the rule when it breaks it."""
        return parse_json(self.body)


def tls_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context httpx would make for each client: loading the
    CA bundle takes ~60 ms and ~1 MiB, so the clients of one process share one."""
    return httpx.create_ssl_context()


def user_agent(replica_id: str | None = None) -> str:
    """`shopimind-sidecar/<version> (replica/<REPLICA_ID>)`: a peer (and a test's fake)
    can tell which replica sent a call."""
    product = f"shopimind-sidecar/{__version__}"
    return product if replica_id is None else f"{product} (replica/{replica_id})"


def new_http_client(
    *,
    max_connections: int = 100,
    tls: ssl.SSLContext | None = None,
    replica_id: str | None = None,
) -> httpx.AsyncClient:
    """An httpx client for one peer: no redirects, no cookies kept between calls; `tls`
    (from `tls_context()`) verifies certificates, a new context when not given. Every
    request carries `user_agent(replica_id)`."""
    return httpx.AsyncClient(
        headers={"user-agent": user_agent(replica_id)},
        verify=tls if tls is not None else True,
        follow_redirects=False,
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
    )


async def _send_once(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    content: bytes | None,
    timeout_seconds: float,
    max_body_bytes: int,
) -> HttpResponse:
    with trio.move_on_after(timeout_seconds) as deadline:
        # follow_redirects=False here too: the policy must hold whatever client is passed in.
        async with client.stream(
            method,
            url,
            headers=headers,
            content=content,
            timeout=timeout_seconds,
            follow_redirects=False,
        ) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_body_bytes:
                raise BodyTooLargeError(f"answer of {declared} bytes exceeds {max_body_bytes}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_body_bytes:
                    raise BodyTooLargeError(f"answer exceeds {max_body_bytes} bytes")
                chunks.append(chunk)
            return HttpResponse(response.status_code, response.headers, b"".join(chunks))
    if deadline.cancelled_caught:
        raise httpx.ReadTimeout(f"no complete answer within {timeout_seconds:g} s")
    raise AssertionError("unreachable")  # pragma: no cover


def _never_sent(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
    content: bytes | None = None,
    replayable: bool,
    policy: RetryPolicy,
    log: BoundLogger,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Clock = system_clock,
    observe: CallObserver | None = None,
    guard: PeerGuard | None = None,
    installation_id: str | None = None,
) -> HttpResponse:
    """Send one request, retrying transient failures as the policy allows.

    `headers` may be a function, called for each attempt: a signed request carries a fresh
    timestamp on every retry instead of one that ages past the peer's tolerance.
    Returns the last answer, even a failing one (the caller decides what a 4xx means).
    Raises the last `httpx.TransportError` when no answer could be had. `log` lines name
    the method, URL and status, never headers or bodies (they hold keys and customer data).
    `observe` is told the outcome of the call once, after its last attempt (`call_outcome`:
    the status class, or `error` when no answer could be had): every call to a peer goes
    through here, so this is where they are counted. `guard` (the peer's rate limit and
    circuit breaker, per `installation_id`) admits every attempt: an open circuit raises
    `CircuitOpenError` (a transport error) at once, without retrying.
    """
    try:
        response = await _send_retrying(
            client,
            method,
            url,
            headers=headers,
            content=content,
            replayable=replayable,
            policy=policy,
            log=log,
            timeout_seconds=timeout_seconds,
            max_body_bytes=max_body_bytes,
            clock=clock,
            guard=guard,
            installation_id=installation_id,
        )
    except httpx.TransportError:
        if observe is not None:
            observe(call_outcome(None))
        raise
    if observe is not None:
        observe(call_outcome(response.status))
    return response


async def _send_retrying(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | Callable[[], Mapping[str, str]],
    content: bytes | None,
    replayable: bool,
    policy: RetryPolicy,
    log: BoundLogger,
    timeout_seconds: float,
    max_body_bytes: int,
    clock: Clock,
    guard: PeerGuard | None,
    installation_id: str | None,
) -> HttpResponse:
    retry = 0
    while True:
        attempt = None if guard is None else await guard.admit(installation_id)
        try:
            response = await _send_once(
                client,
                method,
                url,
                headers=headers() if callable(headers) else headers,
                content=content,
                timeout_seconds=timeout_seconds,
                max_body_bytes=max_body_bytes,
            )
        except httpx.TransportError as exc:
            if attempt is not None:
                attempt.finish(failed=not isinstance(exc, BodyTooLargeError))
            may_retry = (replayable or _never_sent(exc)) and not isinstance(exc, BodyTooLargeError)
            if retry >= policy.max_retries or not may_retry:
                raise
            retry += 1
            delay = policy.backoff_seconds(retry)
            log.warning(
                "request failed, retrying",
                method=method,
                url=url,
                error=f"{type(exc).__name__}: {exc}",
                retry=retry,
                delay_seconds=round(delay, 3),
            )
            await trio.sleep(delay)
            continue
        else:
            if attempt is not None:
                attempt.finish(failed=response.status >= _SERVER_ERROR)
        finally:
            if attempt is not None:
                attempt.finish(failed=None)  # cancelled mid-attempt: says nothing of the peer
        if response.status not in RETRYABLE_STATUSES or not replayable:
            return response
        if retry >= policy.max_retries:
            return response
        wait = parse_retry_after(response.headers.get("retry-after"), now=clock())
        if wait is not None and (math.isnan(wait) or wait > policy.max_retry_after_seconds):
            return response  # too long to hold a worker: fail now, the caller retries later
        retry += 1
        delay = wait if wait is not None else policy.backoff_seconds(retry)
        log.warning(
            "transient answer, retrying",
            method=method,
            url=url,
            status=response.status,
            retry=retry,
            delay_seconds=round(delay, 3),
        )
        await trio.sleep(delay)
