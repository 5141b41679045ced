"""A webhook claim left behind by a killed process does not lose the webhook.

The claim is committed before processing: a process killed mid-run leaves it neither
released nor completed. ShopiMind's resend is answered as a replay while that claim may
still be a live run's, and processed once its replica is dead (heartbeat lapsed, stopped,
restarted), or else once it is stale (WEBHOOK_CLAIM_STALE_SECONDS). A live run cannot
outlast its deadline, which is shorter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.clock import format_timestamp, system_clock
from sidecar.lifecycle.answers import Answer
from sidecar.lifecycle.dispatcher import (
    WEBHOOK_CLAIM_STALE_SECONDS,
    WEBHOOK_PROCESSING_TIMEOUT_SECONDS,
    LifecycleDispatcher,
)
from sidecar.logs import BoundLogger
from tests.harness import Stack, lifecycle, sidecar_stack, signed_headers


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


def _claims(stack: Stack) -> list[tuple[object, ...]]:
    return stack.query("SELECT installation_id, completed_at IS NOT NULL FROM webhook_claims")


def _ago(seconds: float) -> str:
    return format_timestamp(system_clock() - timedelta(seconds=seconds))


def _leave_a_claim(
    stack: Stack, signature: str, *, age_seconds: float, by: str | None = None
) -> None:
    """The claim a process killed mid-run leaves: taken `age_seconds` ago by `by`, not
    completed."""
    with stack.writable() as connection:
        connection.execute(
            "INSERT INTO webhook_claims (installation_id, dedup_key, claimed_at, claimed_by) "
            "VALUES ('inst_1', ?, ?, ?) ON CONFLICT DO UPDATE "
            "SET claimed_at = excluded.claimed_at, claimed_by = excluded.claimed_by",
            (signature, _ago(age_seconds), by),
        )


def _replica(stack: Stack, replica_id: str, *, alive_for_seconds: float) -> None:
    """Another replica's row: registered a minute ago, alive for `alive_for_seconds` more
    (negative: its heartbeat lapsed that long ago)."""
    with stack.writable() as connection:
        connection.execute(
            "INSERT INTO replicas (id, version, host, pid, alive_seconds, started_at, "
            "heartbeat_at, alive_until, stopped_at) VALUES (?, '1', 'web-2', 2, 30, ?, ?, ?, "
            "NULL) ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
            (replica_id, _ago(60), _ago(30), _ago(-alive_for_seconds)),
        )


def test_a_live_run_ends_long_before_its_claim_goes_stale() -> None:
    assert WEBHOOK_CLAIM_STALE_SECONDS > WEBHOOK_PROCESSING_TIMEOUT_SECONDS + 30
    with pytest.raises(ValueError, match="stale"):
        LifecycleDispatcher(None, timeout_seconds=120, stale_after_seconds=120)  # type: ignore[arg-type]


async def test_a_claim_left_by_a_killed_process_is_processed_once_stale(stack: Stack) -> None:
    body = json.dumps(lifecycle("installed")).encode()
    headers = signed_headers(body)
    signature = headers["x-shopimind-signature"]

    # Younger than the stale time: maybe a live run elsewhere; answered as a replay.
    _leave_a_claim(stack, signature, age_seconds=WEBHOOK_CLAIM_STALE_SECONDS - 60)
    replayed = await stack.post("/webhook/receive", body, headers)
    assert replayed.json() == {"success": True}
    assert stack.query("SELECT COUNT(*) FROM installations") == [(0,)]
    assert stack.vendor.lifecycle_calls == []
    assert _claims(stack) == [("inst_1", 0)]

    # Stale: nobody is running it; the resend is processed, and its claim completed.
    _leave_a_claim(stack, signature, age_seconds=WEBHOOK_CLAIM_STALE_SECONDS + 1)
    processed = await stack.post("/webhook/receive", body, headers)
    assert processed.json() == {"success": True}
    assert stack.status() == "inactive"
    assert [c.event for c in stack.vendor.lifecycle_calls] == ["installed"]
    assert _claims(stack) == [("inst_1", 1)]

    # Completed: never processed again, however old.
    with stack.writable() as connection:
        connection.execute("UPDATE webhook_claims SET claimed_at = '2000-01-01T00:00:00.000Z'")
    assert (await stack.post("/webhook/receive", body, headers)).json() == {"success": True}
    assert len(stack.vendor.lifecycle_calls) == 1


async def test_a_claim_left_by_a_dead_replica_is_processed_at_once(stack: Stack) -> None:
    body = json.dumps(lifecycle("installed")).encode()
    headers = signed_headers(body)
    signature = headers["x-shopimind-signature"]

    # Its replica still heartbeats: maybe still running it; answered as a replay.
    _replica(stack, "web-2", alive_for_seconds=20)
    _leave_a_claim(stack, signature, age_seconds=30, by="web-2")
    replayed = await stack.post("/webhook/receive", body, headers)
    assert replayed.json() == {"success": True}
    assert stack.vendor.lifecycle_calls == []
    assert _claims(stack) == [("inst_1", 0)]

    # Its heartbeat lapsed (killed, host gone): processed at once, long before stale.
    _replica(stack, "web-2", alive_for_seconds=-1)
    processed = await stack.post("/webhook/receive", body, headers)
    assert processed.json() == {"success": True}
    assert stack.status() == "inactive"
    assert [c.event for c in stack.vendor.lifecycle_calls] == ["installed"]
    assert _claims(stack) == [("inst_1", 1)]
    assert (await stack.post("/webhook/receive", body, headers)).json() == {"success": True}
    assert len(stack.vendor.lifecycle_calls) == 1


async def test_a_successful_webhook_completes_its_claim_and_a_failed_one_releases_it(
    stack: Stack,
) -> None:
    await stack.activate()
    assert _claims(stack) == [("inst_1", 1), ("inst_1", 1)]
    stack.vendor.lifecycle_answer = {"ok": False, "error": "account suspended"}
    refused = await stack.webhook(lifecycle("activated", "inst_2"))
    assert refused.json() == {"success": False, "error": "internal_error"}
    assert len(_claims(stack)) == 2  # released


async def test_a_run_past_its_deadline_answers_internal_error_and_releases_its_claim(
    mock_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hang(
        self: LifecycleDispatcher,
        installation_id: str | None,
        payload: Mapping[str, object],
        log: BoundLogger,
    ) -> Answer:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    monkeypatch.setattr(LifecycleDispatcher, "_installed", hang)
    async with sidecar_stack(tmp_path) as stack:
        started = trio.current_time()
        answer = await stack.webhook(lifecycle("installed"))
        waited = trio.current_time() - started
        assert answer.json() == {"success": False, "error": "internal_error"}
        assert WEBHOOK_PROCESSING_TIMEOUT_SECONDS <= waited < WEBHOOK_CLAIM_STALE_SECONDS
        assert _claims(stack) == []  # released: the resend is processed
