"""The JSON policy every door applies (`sidecar.payloads.parse_json`) against plain
`json.loads` of the same bytes, in the same run.

Prints its section of BENCHMARKS.md. The policy adds a depth scan before parsing (three
C-level passes over the text) and a hook per number; `json.loads` is what reading a body
costs at the least. Bodies: a sync page of 500 items (the common answer), a 1 MiB webhook
of nested configs (the largest a door takes), and 25 MiB of items (the largest answer a
peer may send).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Final

from sidecar.payloads import parse_json

ROUNDS: Final = 9


def _item(index: int) -> dict[str, object]:
    return {
        "id": f"c-{index}",
        "email": f"jane.{index}@shop.example",
        "first_name": "Jane",
        "last_name": "Doé",
        "amount": index * 1.5,
        "points": index,
        "tags": ["vip", "newsletter"],
        "address": {"city": "Paris", "zip": "75001", "lines": ['1 rue de Rivoli \\ "A"']},
        "updated_at": "2026-11-26T09:00:00.000Z",
    }


def _page(items: int) -> bytes:
    return json.dumps({"items": [_item(i) for i in range(items)], "next": "t"}).encode()


def _median_ms(work: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench() -> str:
    """Measure and return the Markdown section."""
    page = _page(500)
    configs = {f"field_{i}": {"value": [i, i * 0.5, "x" * 40, {"on": True}]} for i in range(6000)}
    webhook = json.dumps({"event": "integration.config_updated", "configs": configs}).encode()
    large = _page(100_000)
    rows = []
    for name, body, rounds in (
        ("sync page, 500 items", page, ROUNDS),
        ("webhook of nested configs", webhook, ROUNDS),
        ("25 MiB-class answer, 100,000 items", large, 3),
    ):
        if parse_json(body) != json.loads(body):
            raise SystemExit(f"{name}: the policy read the body differently")
        plain = _median_ms(partial(json.loads, body), rounds)
        policy = _median_ms(partial(parse_json, body), rounds)
        rows.append(
            f"| {name} | {len(body) / 1024:,.0f} KiB | {plain:.1f} ms | {policy:.1f} ms "
            f"| {policy / plain:.2f} |"
        )
    deep = b"[" * 10_000 + b"]" * 10_000
    refused = _median_ms(lambda: _refuse(deep))
    return "\n".join(
        [
            "## JSON policy at the doors",
            "",
            f"`parse_json` against `json.loads` of the same bytes, median of {ROUNDS} rounds "
            "(3 for the largest).",
            "",
            "| body | size | json.loads | parse_json | ratio |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"- a 10,000-deep body is refused in **{refused:.2f} ms**, before any parsing",
        ]
    )


def _refuse(body: bytes) -> None:
    try:
        parse_json(body)
    except ValueError:
        return
    raise SystemExit("a 10,000-deep body was accepted")


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(bench())


if __name__ == "__main__":
    main()
