"""Windows and the cursor's golden rule: every branch (PROTOCOL §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sidecar.declaration.model import MaxRatio
from sidecar.store.records import Cursor, ResumePoint
from sidecar.sync.cursor_rules import (
    WindowOutcome,
    backoff_until,
    decide,
    should_skip,
)
from sidecar.sync.windows import Window, resumed_window, window_for

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def cursor(**changes: object) -> Cursor:
    values: dict[str, object] = {
        "installation_id": "i",
        "entity": "orders",
        "source_key": "",
        "last_synced_at": "2026-11-26T11:00:00.000Z",
        "last_status": "ok",
        "last_error": None,
        "items": 0,
        "consecutive_failures": 0,
        "updated_at": "2026-11-26T11:00:00.000Z",
    }
    values.update(changes)
    return Cursor(**values)  # type: ignore[arg-type]


def test_first_run_backfills() -> None:
    window = window_for(None, full=False, now=NOW, backfill_days=365, overlap_seconds=0)
    assert window == Window(since=NOW - timedelta(days=365), until=NOW)


def test_never_synced_cursor_backfills() -> None:
    window = window_for(
        cursor(last_synced_at=None), full=False, now=NOW, backfill_days=30, overlap_seconds=0
    )
    assert window.since == NOW - timedelta(days=30)


def test_full_ignores_the_cursor() -> None:
    window = window_for(cursor(), full=True, now=NOW, backfill_days=7, overlap_seconds=60)
    assert window == Window(since=NOW - timedelta(days=7), until=NOW)


def test_incremental_starts_at_the_cursor_minus_overlap() -> None:
    window = window_for(cursor(), full=False, now=NOW, backfill_days=365, overlap_seconds=120)
    assert window == Window(since=datetime(2026, 11, 26, 10, 58, tzinfo=UTC), until=NOW)


def test_a_cursor_ahead_of_the_clock_gives_an_empty_window_not_an_inverted_one() -> None:
    ahead = cursor(last_synced_at="2026-11-26T13:00:00.000Z")
    window = window_for(ahead, full=False, now=NOW, backfill_days=365, overlap_seconds=0)
    assert window.since == window.until == NOW


def test_resumed_window_is_the_saved_one() -> None:
    point = ResumePoint(
        installation_id="i",
        entity="orders",
        source_key="",
        run_kind="full",
        window_since="2025-01-01T00:00:00.000Z",
        window_until="2025-06-01T00:00:00.000Z",
        next_token="t",
    )
    assert resumed_window(point) == Window(
        since=datetime(2025, 1, 1, tzinfo=UTC), until=datetime(2025, 6, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("failures", "minutes"), [(1, 1), (2, 2), (3, 4), (4, 8), (11, 1024), (12, 1440), (40, 1440)]
)
def test_backoff_doubles_and_caps_at_a_day(failures: int, minutes: int) -> None:
    failed = cursor(consecutive_failures=failures, last_status="error")
    until = backoff_until(failed)
    assert until == datetime(2026, 11, 26, 11, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_skip_only_incremental_runs_inside_the_backoff() -> None:
    failed = cursor(consecutive_failures=3, updated_at="2026-11-26T11:58:00.000Z")  # until 12:02
    assert should_skip(failed, full=False, now=NOW)
    assert not should_skip(failed, full=True, now=NOW)  # a full backfill ignores the backoff
    assert not should_skip(failed, full=False, now=NOW + timedelta(minutes=2))
    assert not should_skip(cursor(), full=False, now=NOW)
    assert not should_skip(None, full=False, now=NOW)
    assert backoff_until(cursor()) is None


def test_clean_window_advances() -> None:
    decision = decide(WindowOutcome(complete=True, sent=10, rejected=0), False)
    assert decision.advance
    assert decision.errors == ()


def test_an_error_holds_and_keeps_progress() -> None:
    decision = decide(WindowOutcome(complete=False, sent=10, rejected=0, errors=("503",)), True)
    assert not decision.advance
    assert decision.errors == ("503",)
    assert not decision.replay_window


def test_an_unfinished_window_without_an_error_still_holds() -> None:
    decision = decide(WindowOutcome(complete=False, sent=10, rejected=0), False)
    assert not decision.advance
    assert decision.errors == ("the window did not finish",)


def test_rejections_hold_by_default_and_replay_the_window() -> None:
    decision = decide(WindowOutcome(complete=True, sent=98, rejected=2), False)
    assert not decision.advance
    assert decision.replay_window
    assert decision.errors == ("2 item(s) rejected (cursor held; set tolerate_rejects to advance)",)


def test_tolerated_rejections_advance() -> None:
    assert decide(WindowOutcome(complete=True, sent=0, rejected=5), True).advance


@pytest.mark.parametrize(
    ("sent", "rejected", "advance"), [(99, 1, True), (990, 10, True), (98, 2, False), (0, 1, False)]
)
def test_max_ratio(sent: int, rejected: int, advance: bool) -> None:
    decision = decide(
        WindowOutcome(complete=True, sent=sent, rejected=rejected), MaxRatio(max_ratio=0.01)
    )
    assert decision.advance is advance
    if not advance:
        assert "above max_ratio 1.00%" in decision.errors[0]
        assert decision.replay_window
