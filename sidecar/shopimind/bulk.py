"""Bulk pushes: what one push achieved, and how a chunk's answer is read (PROTOCOL §6, §8).

Two kinds of trouble must never be confused, because they decide whether a sync cursor
may move:

- a **transport failure** (a non-2xx answer, no answer at all, or a 2xx reporting
  `failed_count > 0`): the chunk may not have been stored, the caller must replay it and
  must not advance its cursor (`BulkResult.transport_failed`);
- a **rejection** (`rejected_count > 0`): ShopiMind received the chunk and refused some
  items, typically for invalid data. Replaying would not help; the items are counted,
  logged and dead-lettered, and the step's `tolerate_rejects` decides about the cursor.

ShopiMind does not document the shape of `rejected_items`, so each entry is matched back to
the item that was sent as well as the entry allows (an `index`, an embedded `item`, or the
fields it repeats); when nothing matches, the raw entry is kept rather than lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sidecar.shopimind._wire import text_of
from sidecar.store.records import RejectedItemInput

__all__ = ["BulkResult", "ChunkAnswer", "map_rejected_items", "read_chunk_answer"]

DEFAULT_REJECTION_REASON: Final = "rejected by ShopiMind (no reason given)"
_REASON_KEYS: Final = ("reason", "message", "error", "errors", "error_message")
_INDEX_KEYS: Final = ("index", "position", "item_index")
_ITEM_KEYS: Final = ("item", "data", "payload")
_COUNT_KEYS: Final = ("sent_count", "rejected_count", "failed_count", "rejected_items")


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkResult:
    """What one bulk push achieved, summed over its chunks."""

    sent: int = 0
    """Items ShopiMind accepted."""
    rejected: int = 0
    """Items ShopiMind received and refused (see `rejected_items`)."""
    failed: int = 0
    """Items that may not have arrived: in a chunk that failed in transport, or never sent."""
    rejected_items: tuple[RejectedItemInput, ...] = ()
    errors: tuple[str, ...] = ()
    """One message per chunk that failed in transport."""
    retry_after_seconds: float | None = None
    """The longest `Retry-After` of a chunk that failed in transport (retry no sooner)."""

    @property
    def transport_failed(self) -> bool:
        """True when some chunk failed in transport: replay, and do not advance any cursor."""
        return self.failed > 0 or bool(self.errors)

    def __add__(self, other: BulkResult) -> BulkResult:
        """Both results summed, e.g. over the pages of one sync step."""
        return BulkResult(
            sent=self.sent + other.sent,
            rejected=self.rejected + other.rejected,
            failed=self.failed + other.failed,
            rejected_items=(*self.rejected_items, *other.rejected_items),
            errors=(*self.errors, *other.errors),
            retry_after_seconds=_longest(self.retry_after_seconds, other.retry_after_seconds),
        )


def _longest(first: float | None, second: float | None) -> float | None:
    if first is None or second is None:
        return second if first is None else first
    return max(first, second)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkAnswer:
    """The counts of one chunk's 2xx answer."""

    sent: int
    rejected: int
    failed: int
    rejected_items: tuple[RejectedItemInput, ...]


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _counts_holder(body: object) -> Mapping[str, object] | None:
    if not isinstance(body, Mapping):
        return None
    if any(key in body for key in _COUNT_KEYS):
        return body
    data = body.get("data")
    if isinstance(data, Mapping) and any(key in data for key in _COUNT_KEYS):
        return data
    return None


def read_chunk_answer(body: object, chunk: Sequence[Mapping[str, object]]) -> ChunkAnswer:
    """Read a bulk answer `{sent_count, rejected_count, rejected_items}` for `chunk`.

    The counts may also sit under `data`. A 2xx answer without any count means the chunk
    was accepted whole: the status is ShopiMind's word, the counts only refine it.
    """
    holder = _counts_holder(body)
    if holder is None:
        return ChunkAnswer(sent=len(chunk), rejected=0, failed=0, rejected_items=())
    raw = holder.get("rejected_items")
    entries: Sequence[object] = raw if isinstance(raw, list) else ()
    rejected = _count(holder.get("rejected_count"))
    if rejected is None:
        rejected = len(entries)
    failed = _count(holder.get("failed_count")) or 0
    sent = _count(holder.get("sent_count"))
    if sent is None:
        sent = max(0, len(chunk) - rejected - failed)
    return ChunkAnswer(
        sent=sent,
        rejected=rejected,
        failed=failed,
        rejected_items=map_rejected_items(entries, chunk),
    )


def _reason(entry: Mapping[str, object]) -> str:
    for key in _REASON_KEYS:
        text = text_of(entry.get(key))
        if text:
            return text
    return DEFAULT_REJECTION_REASON


def _by_index(entry: Mapping[str, object], chunk: Sequence[Mapping[str, object]]) -> object:
    for key in _INDEX_KEYS:
        index = entry.get(key)
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(chunk):
            return chunk[index]
    return None


def _by_fields(entry: Mapping[str, object], chunk: Sequence[Mapping[str, object]]) -> object:
    """The one sent item whose fields the entry repeats (the entry minus its reason)."""
    fields = {k: v for k, v in entry.items() if k not in _REASON_KEYS and k not in _INDEX_KEYS}
    if not fields:
        return None
    matches = [item for item in chunk if all(k in item and item[k] == v for k, v in fields.items())]
    return matches[0] if len(matches) == 1 else None


def _rejected_item(entry: object, chunk: Sequence[Mapping[str, object]]) -> RejectedItemInput:
    if not isinstance(entry, Mapping):
        return RejectedItemInput(item=entry, reason=DEFAULT_REJECTION_REASON)
    reason = _reason(entry)
    item = _by_index(entry, chunk)
    if item is None:
        item = next((entry[k] for k in _ITEM_KEYS if isinstance(entry.get(k), Mapping)), None)
    if item is None:
        item = _by_fields(entry, chunk)
    return RejectedItemInput(item=entry if item is None else item, reason=reason)


def map_rejected_items(
    entries: Sequence[object], chunk: Sequence[Mapping[str, object]]
) -> tuple[RejectedItemInput, ...]:
    """Each `rejected_items` entry as the item that was sent and the API's reason."""
    return tuple(_rejected_item(entry, chunk) for entry in entries)
