"""Facts about ShopiMind's bulk endpoints (PROTOCOL §6): paths, chunk sizes, delete keys.

A leaf module: the declaration validates sync and inbound targets against it, and the
API client chunks pushes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

__all__ = [
    "BULK_RESOURCES",
    "CUSTOM_DATA_CHUNK",
    "CUSTOM_DATA_PREFIX",
    "DEFAULT_PUSH_CONCURRENCY",
    "BulkResource",
    "chunk_size_for",
    "custom_records_path",
]


@dataclass(frozen=True, slots=True)
class BulkResource:
    """A bulk endpoint: POST saves, PUT updates, POST `<path>/bulk-delete` deletes."""

    path: str
    chunk_size: int
    delete_key: str | None = None
    """The id list's name in a bulk-delete body (e.g. `customer_ids`); None when unsupported."""


DEFAULT_PUSH_CONCURRENCY: Final = 5
"""Chunks of one page in flight at once (PUSH_CONCURRENCY): a push is latency-bound. Five
send a 500-item page of 50-item chunks in two waves (four would take three), and the
default four workers then hold 20 connections, what the client keeps alive."""
CUSTOM_DATA_PREFIX: Final = "custom_data:"
CUSTOM_DATA_CHUNK: Final = 20
"""`custom-data-records/{id_definition}` takes 20 records a request."""

BULK_RESOURCES: Final[dict[str, BulkResource]] = {
    resource.path: resource
    for resource in (
        BulkResource("customers", 50, "customer_ids"),
        BulkResource("customers/addresses/bulk", 50),
        BulkResource("customers-groups", 100, "customer_group_ids"),
        BulkResource("newsletter-subscribers", 50, "newsletter_subscriber_ids"),
        BulkResource("products", 50, "product_ids"),
        BulkResource("products/images/bulk", 50),
        BulkResource("products/variations/bulk", 50),
        BulkResource("products-categories", 100, "product_category_ids"),
        BulkResource("products-manufacturers", 100, "product_manufacturer_ids"),
        BulkResource("orders", 50, "order_ids"),
        BulkResource("orders-carriers", 100, "order_carrier_ids"),
        BulkResource("orders-statuses", 100, "order_status_ids"),
        BulkResource("vouchers", 50, "voucher_ids"),
    )
}
"""Bulk resources a sync step or an inbound action may target, by path."""

_PER_PARENT_CHUNKS: Final = (
    (re.compile(r"customers/[^/]+/addresses"), 50),
    (re.compile(r"products/[^/]+/images"), 50),
    (re.compile(r"products/[^/]+/variations"), 50),
    (re.compile(r"custom-data-records/[^/]+"), CUSTOM_DATA_CHUNK),
)
"""Bulk endpoints under one parent (`customers/{id}/addresses`...), whose paths hold an id."""


def chunk_size_for(path: str) -> int | None:
    """Items per request for the bulk endpoint at `path` (no `/v1/` prefix), or None if unknown."""
    path = path.strip("/")
    known = BULK_RESOURCES.get(path)
    if known is not None:
        return known.chunk_size
    for pattern, size in _PER_PARENT_CHUNKS:
        if pattern.fullmatch(path):
            return size
    return None


def custom_records_path(definition_id: str | int) -> str:
    """The bulk endpoint of one custom data definition's records."""
    return f"custom-data-records/{quote(str(definition_id), safe='')}"
