"""The chunks of a page go out concurrently; the resume point and the cursor still move only
once every chunk before them is acknowledged."""

from __future__ import annotations

import trio
import trio.testing

from sidecar.declaration.model import SyncStep
from sidecar.testing.vendor_app import Dataset
from tests.sync.conftest import INSTALLATION, SyncEnv, step


def paged() -> SyncStep:
    """Pages of 10 items in chunks of 2: five chunks a page, several in flight at once."""
    return step(page_limit=10, batch_size=2)


async def test_a_failed_chunk_in_the_middle_of_a_page_holds_the_resume_point(
    env: SyncEnv,
) -> None:
    env.app.set_dataset("customers", Dataset(count=30))
    await env.activate()
    env.api.fail_next(1, status=400, path="customers", after=7)  # a chunk of the second page
    report = await env.engine(paged()).sync(INSTALLATION)
    assert report.status == "partial"
    assert await env.cursor_value("customers") is None
    point = await env.store.cursors.resume_point(INSTALLATION, "customers")
    assert point is not None
    assert (point.pages, point.items) == (1, 10)  # not past the unacknowledged chunk
    assert env.api.count("customers") < 20  # the page was cut short

    env.clock.advance(minutes=2)  # past the backoff after a failure
    again = await env.engine(paged()).sync(INSTALLATION)
    assert again.status == "ok"
    assert set(env.pushed_ids("customers")) == {f"item-{i}" for i in range(30)}
    assert await env.cursor_value("customers") is not None


async def test_a_run_cancelled_with_chunks_in_flight_resumes_after_the_last_whole_page(
    mock_clock: trio.testing.MockClock, env: SyncEnv
) -> None:
    env.app.set_dataset("customers", Dataset(count=30))
    await env.activate()
    env.api.slow_next(1, seconds=20, path="customers", after=6)  # a chunk of the second page
    engine = env.engine(paged())
    with trio.move_on_after(10) as cancelled:
        await engine.sync(INSTALLATION)
    assert cancelled.cancelled_caught
    # Other chunks of the second page were acknowledged, but one was not: the resume point
    # stays after the first page, and the cursor does not move.
    assert 10 < env.api.count("customers") < 20
    point = await env.store.cursors.resume_point(INSTALLATION, "customers")
    assert point is not None
    assert (point.pages, point.items) == (1, 10)
    assert await env.cursor_value("customers") is None
    (run,) = await env.store.runs.recent(INSTALLATION)
    assert run.status == "cancelled"

    env.clock.advance(minutes=2)
    again = await engine.sync(INSTALLATION)
    assert again.status == "ok"
    assert set(env.pushed_ids("customers")) == {f"item-{i}" for i in range(30)}
