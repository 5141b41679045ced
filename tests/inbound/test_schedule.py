"""The deliverer's memory: which installation gets a lane, and when."""

from __future__ import annotations

from sidecar.inbound.schedule import Schedule


def test_a_hinted_installation_is_ready_at_once() -> None:
    schedule = Schedule()
    assert schedule.hint("a")
    assert schedule.ready(now=0) == ["a"]
    assert schedule.ready(now=0) == []  # a hint is used once


def test_a_waiting_installation_is_ready_when_due_and_ignores_hints() -> None:
    schedule = Schedule()
    schedule.wait("a", 10)
    assert not schedule.hint("a")  # its new event queues behind the one waiting
    assert schedule.ready(now=5) == []
    assert schedule.next_due() == 10
    assert schedule.ready(now=10) == ["a"]
    assert schedule.next_due() is None


def test_a_later_wait_supersedes_an_earlier_one() -> None:
    schedule = Schedule()
    schedule.wait("a", 10)
    schedule.wait("a", 30)
    assert schedule.next_due() == 30
    assert schedule.ready(now=20) == []
    assert schedule.ready(now=30) == ["a"]


def test_a_busy_installation_is_looked_at_again_when_its_lane_ends() -> None:
    schedule = Schedule()
    schedule.hint("a")
    [ready] = schedule.ready(now=0)
    schedule.start(ready)
    assert schedule.is_busy("a")
    assert schedule.lanes_running == 1
    assert not schedule.hint("a")  # queued while its lane runs
    assert schedule.ready(now=0) == []
    schedule.finish("a", None)
    assert schedule.ready(now=0) == ["a"]  # the event queued meanwhile is not forgotten


def test_a_lane_ending_on_a_failure_waits_even_if_hinted_meanwhile() -> None:
    schedule = Schedule()
    schedule.start("a")
    schedule.hint("a")
    schedule.finish("a", 60)
    assert schedule.ready(now=0) == []
    assert schedule.next_due() == 60
    schedule.finish("b", None)  # a lane that ends with nothing pending
    assert schedule.ready(now=0) == []


def test_many_installations_in_due_order() -> None:
    schedule = Schedule()
    for n in range(100):
        schedule.wait(f"i{n}", 100 - n)
    assert schedule.next_due() == 1
    assert schedule.ready(now=3) == ["i99", "i98", "i97"]
    assert schedule.next_due() == 4
