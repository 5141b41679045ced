"""Back-pressure toward a peer: rate limits per installation and overall, and the circuit
breaker that pauses calls to a failing peer until a probe succeeds (virtual time)."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from sidecar.logs import get_logger
from sidecar.outbound import RetryPolicy, send
from sidecar.peer_guard import CircuitOpenError, PeerGuard
from tests.harness import lifecycle, sidecar_stack
from tests.test_outbound import Script, _client

URL = "https://api.example.test/v1/things"
NO_RETRY = RetryPolicy(max_retries=0)
_log = get_logger("test")


async def _call(
    guard: PeerGuard, script: Script, installation_id: str | None = None
) -> httpx.Response:
    async with _client(script) as client:
        response = await send(
            client,
            "GET",
            URL,
            headers={},
            replayable=True,
            policy=NO_RETRY,
            log=_log,
            guard=guard,
            installation_id=installation_id,
        )
    return httpx.Response(response.status)


def _state(guard: PeerGuard) -> str:
    """Read afresh each time (mypy would narrow a property read twice)."""
    return guard.state


async def _paced(guard: PeerGuard, calls: list[str]) -> list[tuple[str, float]]:
    """Make the calls (one per installation id listed) at once; when each was sent."""
    sent: list[tuple[str, float]] = []

    async def one(installation_id: str) -> None:
        await guard.admit(installation_id)
        sent.append((installation_id, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for installation_id in calls:
            nursery.start_soon(one, installation_id)
    return sent


async def test_overall_rate_paces_every_installation(
    mock_clock: trio.testing.MockClock,
) -> None:
    guard = PeerGuard("shopimind", rate_per_second=10)
    start = trio.current_time()
    sent = await _paced(guard, ["a", "b"] * 15)
    times = sorted(t - start for _, t in sent)
    assert times[9] == pytest.approx(0, abs=1e-6)  # a second's burst at once
    assert times[-1] == pytest.approx(2.0, abs=1e-6)  # then 10 per second
    assert all(b - a <= 0.1 + 1e-6 for a, b in itertools.pairwise(times[10:]))


async def test_installation_rate_is_per_installation(mock_clock: trio.testing.MockClock) -> None:
    guard = PeerGuard("shopimind", rate_per_installation=5)
    start = trio.current_time()
    sent = await _paced(guard, ["a"] * 10 + ["b"] * 5)
    last = {key: max(t for k, t in sent if k == key) - start for key in ("a", "b")}
    assert last["a"] == pytest.approx(1.0, abs=1e-6)
    assert last["b"] == pytest.approx(0.0, abs=1e-6)  # not held back by a's backlog


async def test_no_limit_by_default(mock_clock: trio.testing.MockClock) -> None:
    guard = PeerGuard("shopimind")
    start = trio.current_time()
    sent = await _paced(guard, ["a"] * 1000)
    assert max(t for _, t in sent) == start


async def test_circuit_opens_probes_and_closes(mock_clock: trio.testing.MockClock) -> None:
    guard = PeerGuard("shopimind", failure_threshold=3, cool_down_seconds=30)
    failing = Script(*[httpx.Response(503)] * 4, httpx.Response(200), httpx.Response(200))
    for _ in range(3):
        assert (await _call(guard, failing)).status_code == 503
    assert _state(guard) == "open"
    with pytest.raises(CircuitOpenError, match="shopimind failed 3 times in a row"):
        await _call(guard, failing)
    assert len(failing.calls) == 3  # refused without being sent

    await trio.sleep(30)
    assert _state(guard) == "half_open"
    assert (await _call(guard, failing)).status_code == 503
    assert _state(guard) == "open"  # the probe failed: another cool-down
    with pytest.raises(CircuitOpenError):
        await _call(guard, failing)

    await trio.sleep(30)
    assert (await _call(guard, failing)).status_code == 200
    assert _state(guard) == "closed"
    assert (await _call(guard, failing)).status_code == 200
    assert len(failing.calls) == 6


async def test_paused_for_tells_how_long_the_open_circuit_refuses(
    mock_clock: trio.testing.MockClock,
) -> None:
    guard = PeerGuard("shopimind", failure_threshold=2, cool_down_seconds=30)
    assert guard.paused_for() == 0.0
    (await guard.admit()).finish(failed=True)
    assert guard.paused_for() == 0.0  # one failure: still closed
    (await guard.admit()).finish(failed=True)
    assert guard.paused_for() == pytest.approx(30)
    await trio.sleep(20)
    assert guard.paused_for() == pytest.approx(10)
    await trio.sleep(10)
    assert guard.paused_for() == 0.0  # half-open: the next call probes
    probe = await guard.admit()
    probe.finish(failed=True)
    assert guard.paused_for() == pytest.approx(30)  # the probe failed: another cool-down


async def test_one_probe_at_a_time_and_a_cancelled_probe_frees_the_slot(
    mock_clock: trio.testing.MockClock,
) -> None:
    guard = PeerGuard("app", failure_threshold=1, cool_down_seconds=5)
    attempt = await guard.admit()
    attempt.finish(failed=True)
    await trio.sleep(5)
    probe = await guard.admit()
    assert probe.probe
    with pytest.raises(CircuitOpenError, match="a probe in flight"):
        await guard.admit()
    probe.finish(failed=None)  # cancelled: says nothing about the peer
    assert _state(guard) == "half_open"
    again = await guard.admit()
    again.finish(failed=False)
    assert _state(guard) == "closed"


async def test_client_errors_do_not_open_the_circuit(mock_clock: trio.testing.MockClock) -> None:
    guard = PeerGuard("shopimind", failure_threshold=2)
    refusing = Script(*[httpx.Response(422)] * 5)
    for _ in range(5):
        await _call(guard, refusing)
    assert _state(guard) == "closed"


async def test_health_metrics_and_overview_show_an_open_circuit(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    env = {
        "CIRCUIT_FAILURE_THRESHOLD": "2",
        "CIRCUIT_COOL_DOWN_SECONDS": "60",
        "ADMIN_TOKEN": "t" * 32,
        "SYNC_INTERVAL_MINUTES": "0",
    }
    async with sidecar_stack(tmp_path, env=env) as stack:
        health = (await stack.http.get(stack.url + "/health")).json()
        assert health["circuits"] == {"shopimind": "closed", "app": "closed"}
        stack.shopimind.fail_next(50, status=503)
        for event in ("installed", "activated"):  # activation fails: provisioning cannot run
            await stack.webhook(lifecycle(event, "inst_1"))
        health = (await stack.http.get(stack.url + "/health")).json()
        assert health["circuits"]["shopimind"] == "open"
        headers = {"x-admin-token": "t" * 32}
        metrics = (await stack.http.get(stack.url + "/metrics", headers=headers)).text
        assert 'shopimind_sidecar_peer_circuit_open{peer="shopimind"} 1.0' in metrics
        assert 'shopimind_sidecar_peer_circuit_open{peer="app"} 0.0' in metrics
        overview = (await stack.http.get(stack.url + "/admin/overview", headers=headers)).json()
        assert overview["circuits"] == {"shopimind": "open", "app": "closed"}


async def test_a_probe_cancelled_while_waiting_for_the_rate_frees_its_slot(
    mock_clock: trio.testing.MockClock,
) -> None:
    guard = PeerGuard("shopimind", rate_per_second=1, failure_threshold=1, cool_down_seconds=5)
    (await guard.admit()).finish(failed=True)  # the circuit opens
    await trio.sleep(5)
    (await guard.admit()).finish(failed=None)  # a probe that took the bucket's one token
    with trio.move_on_after(0.5) as waiting:
        await guard.admit()  # the next probe waits a second for the rate: cancelled there
    assert waiting.cancelled_caught
    assert _state(guard) == "half_open"
    probe = await guard.admit()  # not refused as "a probe in flight"
    assert probe.probe
    probe.finish(failed=False)
    assert _state(guard) == "closed"
