"""The vendor app's health: two failed probes in a row pause scheduled syncs, one good probe
resumes them (and wakes the scheduler), on trio's virtual clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from sidecar.state_keys import SYNC_REQUEST
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.app_health import FAILURES_TO_PAUSE, PROBE_INTERVAL_SECONDS, AppHealth
from sidecar.sync.scheduler import SyncQueue, SyncScheduler
from tests.harness import trio_wall_clock


class ScriptedProbe:
    """Answers from a script (the last answer repeats) and records when it was asked."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers)
        self.times: list[float] = []

    async def __call__(self) -> bool:
        self.times.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Recoveries:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_the_defaults() -> None:
    assert FAILURES_TO_PAUSE == 2
    assert PROBE_INTERVAL_SECONDS > 0


def test_unknown_before_the_first_probe() -> None:
    health = AppHealth(ScriptedProbe(True))
    assert health.state == "unknown"
    assert health.healthy() is None
    assert not health.paused()


async def test_a_good_probe_is_ok_and_not_a_recovery() -> None:
    recoveries = Recoveries()
    health = AppHealth(ScriptedProbe(True), on_recovery=recoveries)
    assert await health.check() == "ok"
    assert (health.state, health.healthy(), health.paused()) == ("ok", True, False)
    assert recoveries.count == 0  # it was never unhealthy


async def test_one_failure_does_not_pause() -> None:
    health = AppHealth(ScriptedProbe(True, False, True, False))
    await health.check()
    assert await health.check() == "ok"  # a blip
    assert not health.paused()
    await health.check()
    assert await health.check() == "ok"  # the good answer in between reset the count
    assert not health.paused()


async def test_one_failure_from_the_start_is_not_yet_unhealthy() -> None:
    health = AppHealth(ScriptedProbe(False))
    await health.check()
    assert not health.paused()
    assert health.state != "unhealthy"


async def test_two_failures_in_a_row_pause() -> None:
    health = AppHealth(ScriptedProbe(True, False, False))
    await health.check()
    await health.check()
    assert await health.check() == "unhealthy"
    assert health.paused()
    assert health.healthy() is False
    assert health.state == "unhealthy"


async def test_failures_to_pause_is_configurable() -> None:
    health = AppHealth(ScriptedProbe(False), failures_to_pause=3)
    for _ in range(2):
        await health.check()
    assert not health.paused()
    await health.check()
    assert health.paused()


async def test_one_success_resumes_and_calls_on_recovery_once() -> None:
    recoveries = Recoveries()
    health = AppHealth(ScriptedProbe(False, False, False, True, True, True), on_recovery=recoveries)
    for _ in range(3):
        await health.check()
    assert health.paused()
    assert recoveries.count == 0
    assert await health.check() == "ok"
    assert not health.paused()
    assert health.healthy() is True
    assert recoveries.count == 1
    await health.check()
    await health.check()
    assert recoveries.count == 1  # staying healthy is not another recovery


async def test_each_recovery_is_reported() -> None:
    recoveries = Recoveries()
    health = AppHealth(
        ScriptedProbe(False, False, True, False, False, True), on_recovery=recoveries
    )
    for _ in range(6):
        await health.check()
    assert recoveries.count == 2


async def test_run_probes_every_interval(mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    probe = ScriptedProbe(True)
    health = AppHealth(probe, interval_seconds=30)
    async with trio.open_nursery() as nursery:
        await nursery.start(health.run)
        start = trio.current_time()
        await trio.sleep(95)  # probes at 0, 30, 60 and 90 s
        nursery.cancel_scope.cancel()
    assert [round(at - start, 6) for at in probe.times] == [0.0, 30.0, 60.0, 90.0]
    assert health.state == "ok"


async def test_run_pauses_and_resumes_by_itself(mock_clock: trio.testing.MockClock) -> None:
    mock_clock.autojump_threshold = 0
    recovered = trio.Event()
    probe = ScriptedProbe(True, False, False, False, True)
    health = AppHealth(probe, interval_seconds=10, on_recovery=recovered.set)
    states: list[str] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(health.run)
        await trio.sleep(5)  # look between probes (at 5, 15, 25 and 35 s)
        for _ in range(4):
            states.append(health.state)
            await trio.sleep(10)
        await recovered.wait()
        states.append(health.state)
        nursery.cancel_scope.cancel()
    assert states == ["ok", "ok", "unhealthy", "unhealthy", "ok"]
    assert len(probe.times) == 5


@pytest.mark.parametrize(("interval", "failures"), [(0, 2), (-1, 2), (30, 0), (30, -3)])
def test_bad_arguments_are_refused(interval: float, failures: int) -> None:
    with pytest.raises(ValueError, match="interval_seconds > 0 and failures_to_pause >= 1"):
        AppHealth(ScriptedProbe(True), interval_seconds=interval, failures_to_pause=failures)


# --- the scheduler, paused ---------------------------------------------------------------


def drain(queue: SyncQueue) -> set[str]:
    queued = set()
    while True:
        try:
            queued.add(queue.receive.receive_nowait().installation_id)
        except trio.WouldBlock:
            return queued


async def test_a_paused_scheduler_queues_nothing_and_what_was_due_stays_due(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    for iid in ("a", "b"):
        await vstore.installations.upsert(InstallationUpsert(installation_id=iid, status="active"))
    await vstore.state.set_json("b", SYNC_REQUEST, {"full": True})
    health = AppHealth(ScriptedProbe(False, False, True))
    await health.check()
    await health.check()
    queue = SyncQueue(capacity=10)
    scheduler = SyncScheduler(
        store=vstore, queue=queue, interval_minutes=15, clock=trio_wall_clock, paused=health.paused
    )
    assert await scheduler.tick() == 0
    assert drain(queue) == set()
    assert not queue.is_busy("a")
    assert await vstore.state.holders(SYNC_REQUEST) == ["b"]  # the request is kept
    await health.check()  # the app answers again
    assert await scheduler.tick() == 2
    assert drain(queue) == {"a", "b"}


async def test_recovery_wakes_a_running_scheduler(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await vstore.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
    queue = SyncQueue(capacity=10)
    probe = ScriptedProbe(False, False, True)
    scheduler: SyncScheduler | None = None

    def wake() -> None:
        assert scheduler is not None
        scheduler.wake()

    health = AppHealth(probe, interval_seconds=3600, on_recovery=wake)
    await health.check()
    await health.check()
    scheduler = SyncScheduler(
        store=vstore,
        queue=queue,
        interval_minutes=15,
        clock=trio_wall_clock,
        tick_seconds=24 * 3600,  # only a wake can make it tick again within the test
        paused=health.paused,
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        assert drain(queue) == set()  # the first tick was paused
        started = trio.current_time()
        await health.check()
        job = await queue.receive.receive()
        assert job.installation_id == "a"
        assert trio.current_time() - started < 3600  # woken, not the next tick
        stop.set()
