"""Back-pressure toward one peer (the ShopiMind API, the app): a rate limit and a circuit
breaker, consulted before every attempt that `outbound.send` makes.

- **Rate limit**: token buckets, one for the whole process and one per installation,
  so a backfill of many shops stays under what the peer accepts instead of earning 429s.
  A caller over the rate waits for its turn (a reservation: callers are served in the
  order they came); a rate of 0 disables that bucket.
- **Circuit breaker**: after `failure_threshold` consecutive failures (no answer, or a
  5xx) the circuit opens and every call fails at once with `CircuitOpenError` for
  `cool_down_seconds`: a peer that is down is not hammered by every worker's retries.
  Then one call, the probe, goes through (half-open) while the others still fail fast;
  its success closes the circuit, its failure opens it again for another cool-down.

Time is trio's clock (`trio.current_time`), so tests run it on a MockClock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

import httpx
import trio

from sidecar.config import DEFAULT_COOL_DOWN_SECONDS, DEFAULT_FAILURE_THRESHOLD
from sidecar.logs import get_logger

__all__ = [
    "DEFAULT_COOL_DOWN_SECONDS",
    "DEFAULT_FAILURE_THRESHOLD",
    "Attempt",
    "CircuitOpenError",
    "CircuitState",
    "PeerGuard",
    "circuit_states",
]

_IDLE_BUCKETS_KEPT: Final = 10_000
"""Per-installation buckets beyond this many are pruned when full (idle)."""

CircuitState = Literal["closed", "open", "half_open"]

_log = get_logger("outbound")


class CircuitOpenError(httpx.TransportError):
    """The peer failed repeatedly: calls are refused without being sent until a probe
    succeeds. Retrying at once is pointless; the work is retried later.

    `retry_after_seconds`: how long the circuit stays open (no call before then can go
    through); None while a probe is in flight (it may close the circuit at any moment)."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def reserve(self, now: float) -> float:
        """Take one token (possibly in advance); the seconds to wait before using it."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def idle(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.burst


def _bucket(rate: float, now: float) -> _Bucket:
    burst = max(1.0, rate)  # one second's worth at once
    return _Bucket(rate=rate, burst=burst, tokens=burst, updated=now)


@dataclass(slots=True)
class Attempt:
    """One admitted attempt; `finish` tells the breaker how it went (once)."""

    _guard: PeerGuard
    probe: bool
    _done: bool = False

    def finish(self, *, failed: bool | None) -> None:
        """Record the outcome: True a failure, False a success, None neither (cancelled,
        or a refusal that says nothing about the peer's health)."""
        if self._done:
            return
        self._done = True
        self._guard._record(self, failed)


class PeerGuard:
    """The rate limit and the circuit breaker of one peer."""

    def __init__(
        self,
        peer: str,
        *,
        rate_per_second: float = 0.0,
        rate_per_installation: float = 0.0,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cool_down_seconds: float = DEFAULT_COOL_DOWN_SECONDS,
    ) -> None:
        """`rate_per_second` for the whole process and `rate_per_installation` for one
        installation (requests per second; 0: unlimited)."""
        self.peer = peer
        self.rate_per_second = rate_per_second
        self.rate_per_installation = rate_per_installation
        self.failure_threshold = failure_threshold
        self.cool_down_seconds = cool_down_seconds
        self._overall: _Bucket | None = None
        self._per_installation: dict[str, _Bucket] = {}
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    def __repr__(self) -> str:
        return f"PeerGuard({self.peer!r})"

    @property
    def state(self) -> CircuitState:
        """`closed` (calls go), `open` (refused), `half_open` (the next call probes)."""
        if self._opened_at is None:
            return "closed"
        if self._probing or trio.current_time() - self._opened_at >= self.cool_down_seconds:
            return "half_open"
        return "open"

    def paused_for(self) -> float:
        """Seconds the open circuit still refuses every call unsent (0: a call may go, or
        probe). What a caller with nothing but calls to make waits for, instead of having
        each of its calls refused."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cool_down_seconds - trio.current_time())

    async def admit(self, installation_id: str | None = None) -> Attempt:
        """Wait for the rate limit, then pass the breaker; raise `CircuitOpenError` when the
        circuit refuses the call."""
        probe = self._pass_breaker()
        attempt = Attempt(self, probe)
        try:
            delay = self._reserve(installation_id)
            if delay > 0:
                await trio.sleep(delay)
        except BaseException:
            attempt.finish(failed=None)
            raise
        return attempt

    def _pass_breaker(self) -> bool:
        if self._opened_at is None:
            return False
        remaining = self._opened_at + self.cool_down_seconds - trio.current_time()
        if remaining > 0 or self._probing:
            wait = f"{max(remaining, 0):.0f} s" if remaining > 0 else "a probe in flight"
            raise CircuitOpenError(
                f"{self.peer} failed {self.failure_threshold} times in a row; calls are "
                f"paused ({wait})",
                retry_after_seconds=remaining if remaining > 0 else None,
            )
        self._probing = True
        return True

    def _reserve(self, installation_id: str | None) -> float:
        now = trio.current_time()
        delay = 0.0
        if self.rate_per_second > 0:
            if self._overall is None:
                self._overall = _bucket(self.rate_per_second, now)
            delay = self._overall.reserve(now)
        if self.rate_per_installation > 0 and installation_id is not None:
            buckets = self._per_installation
            bucket = buckets.get(installation_id)
            if bucket is None:
                if len(buckets) >= _IDLE_BUCKETS_KEPT:
                    for key in [k for k, b in buckets.items() if b.idle(now)]:
                        del buckets[key]
                bucket = buckets[installation_id] = _bucket(self.rate_per_installation, now)
            delay = max(delay, bucket.reserve(now))
        return delay

    def _record(self, attempt: Attempt, failed: bool | None) -> None:
        if attempt.probe:
            self._probing = False
        if failed is None:
            return
        if not failed:
            if self._opened_at is not None:
                _log.warning("peer answers again: calls resume", peer=self.peer)
            self._failures, self._opened_at = 0, None
            return
        self._failures += 1
        if attempt.probe or (self._opened_at is None and self._failures >= self.failure_threshold):
            if self._opened_at is None:
                _log.error(
                    "peer keeps failing: calls paused",
                    peer=self.peer,
                    failures=self._failures,
                    cool_down_seconds=self.cool_down_seconds,
                )
            self._opened_at = trio.current_time()


def circuit_states(guards: Iterable[PeerGuard]) -> dict[str, CircuitState]:
    """Each peer's circuit state, by peer name (for /health, /metrics, the overview)."""
    return {guard.peer: guard.state for guard in guards}
