"""Token buckets per key, on trio's (mock) clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from sidecar.web.rate_limit import RateLimiter


async def test_burst_then_refill(mock_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(burst=3, per_second=2)
    assert [limiter.allow("ip") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after_seconds("ip") == pytest.approx(0.5)
    assert limiter.allow("other")  # keys are independent
    mock_clock.jump(0.5)
    assert limiter.allow("ip")
    assert not limiter.allow("ip")
    mock_clock.jump(60)
    assert [limiter.allow("ip") for _ in range(4)] == [True, True, True, False]  # capped at burst


async def test_memory_is_bounded(mock_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(burst=1, per_second=0.001, max_keys=100)
    assert limiter.allow("first")
    assert not limiter.allow("first")
    for n in range(100):
        limiter.allow(f"ip-{n}")
    assert len(limiter._buckets) == 100
    assert limiter.allow("first")  # evicted as least recently used: starts afresh


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(burst=0, per_second=1)
