"""The per-item check before every push (`shopimind.undeliverable.set_aside`) against the
JSON encoding every pushed item pays anyway, on the same items in the same run.

Prints its section of BENCHMARKS.md. The check walks every value of every item; the
reference is `json.dumps(allow_nan=False)` + UTF-8 encoding of the same items, which is
what sending them costs at the least. A ratio well under 1 means the check is not what a
sync waits for.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Final

from sidecar.shopimind.undeliverable import FieldRule, ItemRules, set_aside

ITEMS: Final = 5_000
ROUNDS: Final = 15
RULES: Final = ItemRules(
    fields=(
        FieldRule(name="id", type="text", required=True),
        FieldRule(name="amount", type="decimal", required=True),
        FieldRule(name="tags", type="list"),
        FieldRule(name="address", type="json"),
    )
)


def _item(index: int) -> dict[str, object]:
    return {
        "id": f"c-{index}",
        "email": f"jane.{index}@shop.example",
        "first_name": "Jane",
        "last_name": "Doé",
        "phone": "+33 6 12 34 56 78",
        "amount": index * 1.5,
        "points": index,
        "tags": ["vip", "newsletter"],
        "address": {"city": "Paris", "zip": "75001", "lines": ["1 rue de Rivoli"]},
        "updated_at": "2026-11-26T09:00:00.000Z",
    }


def _median_ms(work: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench() -> str:
    """Measure and return the Markdown section."""
    items = [_item(i) for i in range(ITEMS)]
    encode = _median_ms(
        lambda: json.dumps(
            items, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
    )
    plain = _median_ms(lambda: set_aside(items))
    ruled = _median_ms(lambda: set_aside(items, RULES))
    poisoned = [*items[:-1], {**items[-1], "amount": float("inf")}]
    good, refused = set_aside(poisoned, RULES)
    if len(good) != ITEMS - 1 or len(refused) != 1:
        raise SystemExit("the poisoned item was not set aside")
    return "\n".join(
        [
            "## Undeliverable items: the check before every push",
            "",
            f"{ITEMS:,} customer-like items (10 fields, a nested address, a list), median of "
            f"{ROUNDS} rounds, against the JSON encoding of the same items (the least a push "
            "costs).",
            "",
            "| measurement | value | ratio to the encoding |",
            "|---|---:|---:|",
            f"| JSON encoding (reference) | {encode:.1f} ms | 1.00 |",
            f"| check, bulk resource (encodable?) | {plain:.1f} ms | {plain / encode:.2f} |",
            f"| check, custom data with 4 field rules | {ruled:.1f} ms | {ruled / encode:.2f} |",
        ]
    )


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(bench())


if __name__ == "__main__":
    main()
