"""Why a run ended, in words: one sentence per status, built from the run's summary."""

from __future__ import annotations

import json

import pytest

from sidecar.store.records import RunStatus, SyncRun
from sidecar.sync.run_outcome import describe_run


def _run(status: RunStatus, summary: object = None) -> SyncRun:
    return SyncRun(
        id=1,
        installation_id="i",
        kind="full",
        status=status,
        summary_json=None if summary is None else json.dumps(summary),
        started_at="2026-11-26T09:00:00.000Z",
        finished_at=None,
    )


@pytest.mark.parametrize(
    ("status", "summary", "words"),
    [
        ("running", None, "running since 2026-11-26T09:00:00.000Z"),
        ("ok", {"items": 25}, "completed: 25 item(s) synced"),
        (
            "ok",
            {"items": 9, "skipped": 1, "resumed": True, "cursors": [{"rejected": 2}]},
            "completed: 9 item(s) synced, 2 rejected (see the dead-letter), 1 cursor(s) skipped "
            "while waiting out a backoff; it continued a backfill an earlier run did not finish",
        ),
        (
            "partial",
            {"items": 3, "errors": ["customers: app down", "orders: app down"]},
            "completed with problems: customers: app down (and 1 more); 3 item(s) synced; "
            "the cursors concerned were held and are tried again",
        ),
        (
            "skipped",
            {"items": 0, "skipped": 2},
            "nothing synced: every cursor is waiting out its backoff after failures (see the "
            "cursors' last errors); they are tried again when it ends",
        ),
        (
            "interrupted",
            {"error": "interrupted: the process running it stopped"},
            "interrupted: the process running it stopped (killed or crashed); the next run "
            "continues where it stopped",
        ),
        (
            "cancelled",
            {},
            "stopped before the end because the sidecar was shutting down; the next run "
            "continues where it stopped",
        ),
        (
            "failed",
            {"errors": ["run failed: StoreError: disk I/O error"]},
            ("failed: run failed: StoreError: disk I/O error"),
        ),
        ("failed", "not an object", "failed: no reason recorded"),
    ],
)
def test_each_ending_in_words(status: RunStatus, summary: object, words: str) -> None:
    assert describe_run(_run(status, summary)) == words
