"""An operator's sync in the runtime's nursery: started or refused at once, on the
workers' capacity, and every slot given back — failed, finished or cancelled."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from sidecar.admin.errors import UnavailableError
from sidecar.admin.syncs import BackgroundSyncs
from sidecar.sync.cursor_sync import Progress
from sidecar.sync.engine import RunReport
from sidecar.sync.leases import LeaseBusyError


class FakeEngine:
    """Reports the run started, then waits for `finish` (or fails where told)."""

    def __init__(self, *, before: Exception | None = None, after: Exception | None = None) -> None:
        self.before = before
        self.after = after
        self.finish = trio.Event()
        self.ended: list[str] = []

    async def sync(
        self,
        installation_id: str,
        *,
        full: bool = False,
        progress: Progress | None = None,
        task_status: trio.TaskStatus[RunReport] = trio.TASK_STATUS_IGNORED,
    ) -> RunReport:
        await trio.lowlevel.checkpoint()  # as a lease is taken: Cancelled may land here
        if self.before is not None:
            raise self.before
        report = RunReport(
            run_id=7, installation_id=installation_id, kind="full" if full else "incremental"
        )
        task_status.started(report)
        try:
            await self.finish.wait()
        except BaseException:
            self.ended.append("cancelled")
            raise
        if self.after is not None:
            raise self.after
        report.status = "ok"
        self.ended.append("ok")
        return report


async def test_started_at_once_on_one_slot_given_back_at_the_end() -> None:
    engine, limiter = FakeEngine(), trio.CapacityLimiter(2)
    syncs = BackgroundSyncs(engine, limiter)
    async with trio.open_nursery() as nursery:
        syncs.attach(nursery)
        report = await syncs("inst_1", full=True)
        assert (report.run_id, report.kind, report.status) == (7, "full", "running")
        assert limiter.borrowed_tokens == 1
        engine.finish.set()
    assert engine.ended == ["ok"]
    assert limiter.borrowed_tokens == 0


async def test_a_refusal_before_the_start_reaches_the_caller() -> None:
    limiter = trio.CapacityLimiter(1)
    syncs = BackgroundSyncs(FakeEngine(before=LeaseBusyError("installation:i", "x")), limiter)
    async with trio.open_nursery() as nursery:
        syncs.attach(nursery)
        with pytest.raises(LeaseBusyError):
            await syncs("i", full=False)
    assert limiter.borrowed_tokens == 0


async def test_a_failure_after_the_start_does_not_take_the_nursery_down() -> None:
    engine, limiter = FakeEngine(after=RuntimeError("the app vanished")), trio.CapacityLimiter(1)
    syncs = BackgroundSyncs(engine, limiter)
    async with trio.open_nursery() as nursery:
        syncs.attach(nursery)
        await syncs("i", full=False)
        engine.finish.set()
    assert limiter.borrowed_tokens == 0


async def test_no_free_worker_and_not_attached_are_unavailable() -> None:
    engine, limiter = FakeEngine(), trio.CapacityLimiter(1)
    syncs = BackgroundSyncs(engine, limiter)
    with pytest.raises(UnavailableError):
        await syncs("i", full=False)  # not attached yet
    async with trio.open_nursery() as nursery:
        syncs.attach(nursery)
        await syncs("a", full=False)
        with pytest.raises(UnavailableError):
            await syncs("b", full=False)  # the only slot is taken
        syncs.close()
        with pytest.raises(UnavailableError):
            await syncs("c", full=False)  # stopping
        engine.finish.set()
    assert limiter.borrowed_tokens == 0


async def test_cancelled_while_running_or_while_starting_gives_the_slot_back() -> None:
    engine, limiter = FakeEngine(), trio.CapacityLimiter(1)
    syncs = BackgroundSyncs(engine, limiter)
    async with trio.open_nursery() as nursery:
        syncs.attach(nursery)
        await syncs("i", full=False)
        nursery.cancel_scope.cancel()  # the drain deadline passed
    assert engine.ended == ["cancelled"]
    assert limiter.borrowed_tokens == 0

    starting = BackgroundSyncs(FakeEngine(), limiter)
    async with trio.open_nursery() as nursery:
        starting.attach(nursery)
        with trio.CancelScope() as caller:
            caller.cancel()  # the request went away before the run started
            await starting("i", full=False)
    assert caller.cancelled_caught
    assert limiter.borrowed_tokens == 0
