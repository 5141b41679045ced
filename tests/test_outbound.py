"""The outbound HTTP policy: deadlines, body cap, no redirects, retries with backoff."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import trio
import trio.testing

from sidecar.logs import get_logger
from sidecar.outbound import (
    BodyTooLargeError,
    RetryPolicy,
    new_http_client,
    parse_retry_after,
    send,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
URL = "https://api.example.test/v1/things"
NO_JITTER = RetryPolicy(jitter=lambda: 0.0)


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)


class Script:
    """A MockTransport handler answering from a list: responses or exceptions to raise."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[float, httpx.Request]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((trio.current_time(), request))
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step

    @property
    def times(self) -> list[float]:
        return [at for at, _ in self.calls]


async def _send(
    script: Script,
    *,
    method: str = "GET",
    replayable: bool = True,
    policy: RetryPolicy = NO_JITTER,
    **kwargs: object,
) -> httpx.Response | object:
    async with _client(script) as client:
        return await send(
            client,
            method,
            URL,
            headers={"accept": "application/json"},
            replayable=replayable,
            policy=policy,
            log=get_logger("test"),
            clock=lambda: NOW,
            **kwargs,  # type: ignore[arg-type]
        )


async def test_a_success_is_returned_with_its_body(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(200, json={"ok": True}))
    response = await _send(script)
    assert response.status == 200  # type: ignore[union-attr]
    assert response.json() == {"ok": True}  # type: ignore[union-attr]
    assert len(script.calls) == 1


async def test_transient_statuses_are_retried_with_exponential_backoff(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    start = trio.current_time()
    response = await _send(script)
    assert response.status == 200  # type: ignore[union-attr]
    # jitter 0 waits half the ceiling: 1 s then 2 s ceilings → 0.5 s, 1 s.
    assert [round(t - start, 3) for t in script.times] == [0.0, 0.5, 1.5]


async def test_retries_stop_after_the_policy_and_return_the_last_answer(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(500))
    response = await _send(script, policy=RetryPolicy(max_retries=3, jitter=lambda: 1.0))
    assert response.status == 500  # type: ignore[union-attr]
    assert len(script.calls) == 4
    assert [round(b - a, 3) for a, b in itertools.pairwise(script.times)] == [
        1.0,
        2.0,
        4.0,
    ]


async def test_retry_after_in_seconds_is_honoured(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200))
    await _send(script)
    assert script.times[1] - script.times[0] == pytest.approx(7.0)


async def test_retry_after_as_an_http_date_is_honoured(mock_clock: trio.testing.MockClock) -> None:
    when = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    script = Script(httpx.Response(503, headers={"retry-after": when}), httpx.Response(200))
    await _send(script)
    assert script.times[1] - script.times[0] == pytest.approx(12.0)


async def test_a_retry_after_beyond_the_limit_fails_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(429, headers={"retry-after": "3600"}), httpx.Response(200))
    response = await _send(script)
    assert response.status == 429  # type: ignore[union-attr]
    assert len(script.calls) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after(" 12 ", now=NOW) == 12.0
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("1e3", now=NOW) is None
    past = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=NOW) is None  # no zone


@pytest.mark.parametrize("retry", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("jitter", [0.0, 0.37, 1.0])
def test_backoff_is_capped_and_jittered_within_half_to_full_ceiling(
    retry: int, jitter: float
) -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=10.0, jitter=lambda: jitter)
    ceiling = min(10.0, 2 ** (retry - 1))
    delay = policy.backoff_seconds(retry)
    assert ceiling / 2 <= delay <= ceiling
    assert delay == pytest.approx(ceiling / 2 + jitter * ceiling / 2)


async def test_a_post_without_idempotency_is_not_replayed_after_a_503(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(503), httpx.Response(200))
    response = await _send(script, method="POST", replayable=False)
    assert response.status == 503  # type: ignore[union-attr]
    assert len(script.calls) == 1


async def test_a_post_is_not_replayed_after_a_read_error(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ReadError("connection reset"), httpx.Response(200))
    with pytest.raises(httpx.ReadError):
        await _send(script, method="POST", replayable=False)
    assert len(script.calls) == 1


async def test_a_connection_that_never_opened_is_retried_even_for_a_post(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(201))
    response = await _send(script, method="POST", replayable=False)
    assert response.status == 201  # type: ignore[union-attr]
    assert len(script.calls) == 2


async def test_a_replayable_request_is_retried_after_a_read_error_then_gives_up(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.ReadError("reset"))
    with pytest.raises(httpx.ReadError):
        await _send(script, policy=RetryPolicy(max_retries=2, jitter=lambda: 0.0))
    assert len(script.calls) == 3


async def test_a_declared_body_over_the_cap_is_refused_unread_and_not_retried(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(httpx.Response(200, content=b"x" * 2048))
    with pytest.raises(BodyTooLargeError):
        await _send(script, max_body_bytes=1024)
    assert len(script.calls) == 1


# Leaving httpx's nested body generators early leaves the inner ones for trio's finalizer,
# which warns (httpx issue #3686, unfixed in 0.28); the answer itself is refused correctly.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_streamed_body_over_the_cap_is_cut(mock_clock: trio.testing.MockClock) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 100

    script = Script(httpx.Response(200, content=chunks()))
    with pytest.raises(BodyTooLargeError, match="exceeds 1000 bytes"):
        await _send(script, max_body_bytes=1000)


async def test_redirects_are_not_followed(mock_clock: trio.testing.MockClock) -> None:
    script = Script(httpx.Response(302, headers={"location": "https://elsewhere.test/"}))
    response = await _send(script)
    assert response.status == 302  # type: ignore[union-attr]
    assert len(script.calls) == 1
    async with new_http_client() as client:
        assert client.follow_redirects is False


async def test_redirects_are_not_followed_even_by_a_client_that_would(
    mock_clock: trio.testing.MockClock,
) -> None:
    script = Script(
        httpx.Response(307, headers={"location": "https://elsewhere.test/"}),
        httpx.Response(200),
    )
    transport = httpx.MockTransport(script)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        response = await send(
            client,
            "GET",
            URL,
            headers={},
            replayable=True,
            policy=NO_JITTER,
            log=get_logger("test"),
        )
    assert response.status == 307
    assert len(script.calls) == 1


async def test_a_peer_dripping_bytes_hits_the_whole_attempt_deadline(
    mock_clock: trio.testing.MockClock,
) -> None:
    async def drip() -> AsyncIterator[bytes]:
        while True:
            await trio.sleep(5)
            yield b"."

    script = Script(httpx.Response(200, content=drip()))
    start = trio.current_time()
    with pytest.raises(httpx.ReadTimeout, match="within 30 s"):
        await _send(script, method="POST", replayable=False, timeout_seconds=30.0)
    assert trio.current_time() - start == pytest.approx(30.0)
