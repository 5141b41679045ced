"""A `Retry-After` longer than the client may wait within a request: the run does not wait
for it, and the cursor's next attempt is scheduled no sooner than it asked."""

from __future__ import annotations

from sidecar.outbound import MAX_SCHEDULED_RETRY_AFTER_SECONDS
from sidecar.testing.vendor_app import Dataset, HttpStatus
from tests.sync.conftest import INSTALLATION, SyncEnv, step


async def test_a_long_retry_after_reschedules_the_cursor(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    await env.activate()
    engine = env.engine(step())
    env.api.fail_next(1, status=429, retry_after=7200, path="customers")  # two hours

    held = await engine.sync(INSTALLATION)

    assert held.status == "partial"
    assert held.cursors[0].retry_after_seconds == 7200
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert cursor.retry_at == "2026-11-26T11:00:00.000Z"  # the clock said 09:00
    assert env.api.count("customers") == 0

    env.clock.advance(minutes=5)  # past the 1-minute backoff, not past Retry-After
    for full in (False, True):  # a full run honours it too: ShopiMind asked for quiet
        waiting = await engine.sync(INSTALLATION, full=full)
        assert waiting.cursors[0].skipped
        assert env.api.count("customers") == 0

    env.clock.advance(hours=2)
    done = await engine.sync(INSTALLATION)
    assert done.status == "ok"
    assert env.api.count("customers") == 3
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert cursor.retry_at is None


async def test_an_absurd_retry_after_waits_a_day_at_most(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=1))
    await env.activate()
    env.api.fail_next(1, status=503, retry_after=10**9, path="customers")
    await env.engine(step()).sync(INSTALLATION)
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert MAX_SCHEDULED_RETRY_AFTER_SECONDS == 24 * 3600
    assert cursor.retry_at == "2026-11-27T09:00:00.000Z"


async def test_the_apps_long_retry_after_reschedules_the_cursor_too(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=2))
    await env.activate()
    env.app.inject(HttpStatus(status=503, retry_after="3600"), path="/sync/customers")
    held = await env.engine(step()).sync(INSTALLATION)
    assert held.status == "partial"
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert cursor.retry_at == "2026-11-26T10:00:00.000Z"
