"""Token-bucket rate limits keyed by client IP or installation (PROTOCOL §1.1, §5, §9).

Each key has a bucket holding up to `burst` tokens, refilled at `per_second`; a request
spends one. Buckets live in memory, bounded by `max_keys` (least recently used go first),
so a flood from many addresses cannot grow the process without limit. Time comes from
trio's clock, so tests drive it with MockClock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio

__all__ = ["RateLimiter"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows `burst` requests at once per key, then `per_second` on average."""

    def __init__(
        self,
        *,
        burst: float,
        per_second: float,
        max_keys: int = 10_000,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if burst < 1 or per_second <= 0 or max_keys < 1:
            raise ValueError("a rate limit needs burst >= 1, per_second > 0 and max_keys >= 1")
        self._burst = float(burst)
        self._rate = float(per_second)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Spend one token of `key`'s bucket; False when it is empty."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def retry_after_seconds(self, key: str) -> float:
        """How long until `key` may send again (0 when it may now)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self._rate
