"""`send(..., observe=...)`: the observer hears the outcome of each call once, after its last
attempt, whatever the retries in between; `error` when no answer could be had."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import trio
import trio.testing

from sidecar.logs import get_logger
from sidecar.outbound import BodyTooLargeError, HttpResponse, RetryPolicy, send

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
URL = "https://api.example.test/v1/things"
POLICY = RetryPolicy(max_retries=2, jitter=lambda: 0.0)


class Script:
    """A MockTransport handler answering from a list (the last step repeats)."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.attempts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


class Observer:
    """Records each outcome with the number of attempts made when it was told."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.told: list[tuple[str, int]] = []

    def __call__(self, outcome: str) -> None:
        self.told.append((outcome, self.script.attempts))


async def call(
    script: Script,
    observe: Callable[[str], None] | None,
    *,
    method: str = "GET",
    replayable: bool = True,
    **kwargs: object,
) -> HttpResponse:
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as client:
        return await send(
            client,
            method,
            URL,
            headers={"accept": "application/json"},
            replayable=replayable,
            policy=POLICY,
            log=get_logger("test"),
            clock=lambda: NOW,
            observe=observe,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("status", "outcome"), [(200, "2xx"), (201, "2xx"), (304, "3xx"), (404, "4xx"), (422, "4xx")]
)
async def test_one_attempt_one_outcome(
    mock_clock: trio.testing.MockClock, status: int, outcome: str
) -> None:
    script = Script(httpx.Response(status))
    observer = Observer(script)
    response = await call(script, observer)
    assert response.status == status
    assert observer.told == [(outcome, 1)]


async def test_retried_transient_answers_are_one_call(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    observer = Observer(script)
    assert (await call(script, observer)).status == 200
    assert observer.told == [("2xx", 3)]  # once, after the last attempt


async def test_retries_that_run_out_report_the_last_answer(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(500))
    observer = Observer(script)
    assert (await call(script, observer)).status == 500
    assert observer.told == [("5xx", 3)]


async def test_a_transport_failure_then_an_answer_reports_the_answer(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(204))
    observer = Observer(script)
    assert (await call(script, observer)).status == 204
    assert observer.told == [("2xx", 2)]


async def test_no_answer_after_every_retry_is_one_error(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ConnectError("refused"))
    observer = Observer(script)
    with pytest.raises(httpx.ConnectError):
        await call(script, observer)
    assert observer.told == [("error", 3)]


async def test_a_failure_that_may_not_be_replayed_is_one_error(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ReadError("connection reset"), httpx.Response(200))
    observer = Observer(script)
    with pytest.raises(httpx.ReadError):
        await call(script, observer, method="POST", replayable=False)
    assert observer.told == [("error", 1)]


async def test_an_answer_over_the_cap_is_an_error(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(200, content=b"x" * 100))
    observer = Observer(script)
    with pytest.raises(BodyTooLargeError):
        await call(script, observer, max_body_bytes=10)
    assert observer.told == [("error", 1)]


async def test_a_retry_after_too_long_reports_the_answer_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": "3600"}))
    observer = Observer(script)
    assert (await call(script, observer)).status == 429
    assert observer.told == [("4xx", 1)]


async def test_a_cancelled_call_has_no_outcome(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(503))
    observer = Observer(script)
    with trio.move_on_after(0.1) as scope:  # during the first backoff (0.5 s)
        await call(script, observer)
    assert scope.cancelled_caught
    assert observer.told == []


async def test_each_call_is_reported(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(200))
    observer = Observer(script)
    for _ in range(3):
        await call(script, observer)
    assert [outcome for outcome, _ in observer.told] == ["2xx", "2xx", "2xx"]


async def test_no_observer_is_fine(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(httpx.ConnectError):
        await call(script, None)
    assert script.attempts == 3
