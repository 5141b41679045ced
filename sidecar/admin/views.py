"""Rows of the store as the admin API and the CLI show them: JSON objects, stored JSON
parsed, and every payload of customer data masked (`mask_pii`) — a payload is shown
unmasked only by the audited reveal action."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sidecar.admin.masking import mask_pii
from sidecar.clock import format_timestamp
from sidecar.overview import InstallationOverview
from sidecar.store.records import (
    AuditEntry,
    Cursor,
    InboundEvent,
    Installation,
    OutboxEvent,
    RejectedItem,
    ResumePoint,
    StateEntry,
    SyncRun,
    WebhookLogEntry,
)
from sidecar.sync.cursor_rules import backoff_until
from sidecar.sync.run_outcome import describe_run

__all__ = [
    "audit_view",
    "cursor_view",
    "dead_letter_view",
    "inbound_view",
    "installation_view",
    "outbox_view",
    "parse_stored",
    "resume_point_view",
    "run_view",
    "state_key_view",
    "webhook_view",
]

JsonObject = dict[str, object]


def parse_stored(text: str | None) -> object:
    """Stored JSON as a value; text that is not JSON is returned as it is."""
    if text is None:
        return None
    try:
        value: object = json.loads(text)
    except ValueError:
        return text
    return value


def _fields(record: Any, *, drop: tuple[str, ...] = ()) -> JsonObject:
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in drop}


def installation_view(installation: Installation) -> JsonObject:
    """An installation's record."""
    return _fields(installation)


def cursor_view(cursor: Cursor) -> JsonObject:
    """A cursor, with `in_error` when its last step failed and `backoff_until`, when an
    incremental run may try it again after failures (None: at its next run)."""
    until = backoff_until(cursor)
    return {
        **_fields(cursor, drop=("installation_id",)),
        "in_error": cursor.last_status == "error",
        "backoff_until": None if until is None else format_timestamp(until),
    }


def resume_point_view(point: ResumePoint) -> JsonObject:
    """A window in progress."""
    return _fields(point, drop=("installation_id",))


def run_view(run: SyncRun) -> JsonObject:
    """A sync run with its summary parsed, and why it ended in words (`ended`)."""
    return {
        **_fields(run, drop=("summary_json",)),
        "ended": describe_run(run),
        "summary": parse_stored(run.summary_json),
    }


def overview_view(overview: InstallationOverview) -> JsonObject:
    """An installation with its cursors, windows in progress and last run."""
    return {
        **installation_view(overview.installation),
        "cursors": [cursor_view(c) for c in overview.cursors],
        "in_progress": [resume_point_view(p) for p in overview.resume_points],
        "last_run": None if overview.last_run is None else run_view(overview.last_run),
    }


def webhook_view(entry: WebhookLogEntry, *, reveal: bool = False) -> JsonObject:
    """A logged webhook; its payload (secrets already masked when logged) PII-masked."""
    payload = parse_stored(entry.payload_json)
    return {
        **_fields(entry, drop=("payload_json",)),
        "payload": payload if reveal else mask_pii(payload),
    }


def inbound_view(event: InboundEvent) -> JsonObject:
    """An inbound call as received (it holds no payload: that is in the outbox)."""
    return _fields(event)


def outbox_view(event: OutboxEvent, *, reveal: bool = False) -> JsonObject:
    """A queued inbound event; its payload PII-masked; its idempotency key left out."""
    payload = parse_stored(event.payload_json)
    return {
        **_fields(event, drop=("payload_json", "idempotency_key")),
        "payload": payload if reveal else mask_pii(payload),
    }


def dead_letter_view(item: RejectedItem, *, reveal: bool = False) -> JsonObject:
    """A dead-lettered item; the item PII-masked."""
    value = parse_stored(item.item_json)
    return {**_fields(item, drop=("item_json",)), "item": value if reveal else mask_pii(value)}


def state_key_view(entry: StateEntry) -> JsonObject:
    """A state key, never its value."""
    return _fields(entry)


def audit_view(entry: AuditEntry) -> JsonObject:
    """An audit row with its detail parsed."""
    return {**_fields(entry, drop=("detail_json",)), "detail": parse_stored(entry.detail_json)}
