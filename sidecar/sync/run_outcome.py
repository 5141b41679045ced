"""Why a sync run ended, in words an operator understands (the CLI and the admin API).

The run row holds a status and a JSON summary; this turns both into one sentence that says
what happened and, when something is left to do, what happens next — e.g.

    interrupted   "interrupted: the process running it stopped (killed or crashed); the
                   next run continues where it stopped"
    skipped       "nothing synced: every cursor is waiting out its backoff after failures
                   (see the cursors' last errors)"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from sidecar.store.records import SyncRun

__all__ = ["describe_run"]

_MAX_ERROR_CHARS: Final = 300


def _summary(run: SyncRun) -> Mapping[str, object]:
    try:
        value = json.loads(run.summary_json or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _count(summary: Mapping[str, object], key: str) -> int:
    value = summary.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _cursor_total(summary: Mapping[str, object], key: str) -> int:
    cursors = summary.get("cursors")
    if not isinstance(cursors, list):
        return 0
    return sum(_count(c, key) for c in cursors if isinstance(c, Mapping))


def _errors(summary: Mapping[str, object]) -> list[str]:
    errors = summary.get("errors")
    found = [e for e in errors if isinstance(e, str)] if isinstance(errors, list) else []
    single = summary.get("error")
    if isinstance(single, str):
        found.insert(0, single)
    return found


def _first_error(errors: list[str]) -> str:
    first = errors[0][:_MAX_ERROR_CHARS]
    more = len(errors) - 1
    return first + (f" (and {more} more)" if more > 0 else "")


def _done(summary: Mapping[str, object]) -> str:
    items = _count(summary, "items")
    parts = [f"{items} item(s) synced"]
    rejected = _cursor_total(summary, "rejected")
    if rejected:
        parts.append(f"{rejected} rejected (see the dead-letter)")
    skipped = _count(summary, "skipped")
    if skipped:
        parts.append(f"{skipped} cursor(s) skipped while waiting out a backoff")
    text = ", ".join(parts)
    if summary.get("resumed") is True:
        text += "; it continued a backfill an earlier run did not finish"
    return text


def describe_run(run: SyncRun) -> str:
    """One sentence: how the run ended and what comes next."""
    summary = _summary(run)
    errors = _errors(summary)
    status = run.status
    if status == "running":
        return f"running since {run.started_at}"
    if status == "ok":
        return f"completed: {_done(summary)}"
    if status == "partial":
        problem = _first_error(errors) if errors else "some steps did not finish"
        return (
            f"completed with problems: {problem}; {_done(summary)}; the cursors concerned "
            "were held and are tried again"
        )
    if status == "skipped":
        return (
            "nothing synced: every cursor is waiting out its backoff after failures "
            "(see the cursors' last errors); they are tried again when it ends"
        )
    if status == "interrupted":
        return (
            "interrupted: the process running it stopped (killed or crashed); the next run "
            "continues where it stopped"
        )
    if status == "cancelled":
        return (
            "stopped before the end because the sidecar was shutting down; the next run "
            "continues where it stopped"
        )
    problem = _first_error(errors) if errors else "no reason recorded"
    return f"failed: {problem}"
