"""What app-check reads in an item: the fields naming it, and when it was updated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from sidecar.clock import parse_timestamp
from sidecar.shopimind.item_shapes import ItemShape

__all__ = ["identity_of", "shown_identity", "updated_at_of"]

_SHOWN_ID_CHARS: Final = 64


def identity_of(item: Mapping[str, object], shape: ItemShape | None) -> tuple[object, ...] | None:
    """The values of the item's identifying fields, or None when it cannot be told."""
    if shape is None or not shape.identity:
        return None
    values = tuple(item.get(key) for key in shape.identity)
    if any(value is None or isinstance(value, dict | list) for value in values):
        return None
    return values


def shown_identity(shape: ItemShape, identity: tuple[object, ...]) -> str:
    """`order_id 'o-3'`: how a report names an item."""
    return ", ".join(
        f"{key} {str(value)[:_SHOWN_ID_CHARS]!r}"
        for key, value in zip(shape.identity, identity, strict=True)
    )


def updated_at_of(item: Mapping[str, object]) -> datetime | str | None:
    """The item's `updated_at`: a datetime, None when absent, or why it is unreadable."""
    value = item.get("updated_at")
    if value is None:
        return None
    if not isinstance(value, str):
        return "`updated_at` is not a string"
    try:
        return parse_timestamp(value)
    except ValueError:
        return "`updated_at` is not an ISO-8601 timestamp with a time zone"
