"""The bounds of an admin listing (`limit`, `offset`): parsed once, clamped, never refused
for being large — an absurd value is brought back into range, a non-number is an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sidecar.admin.errors import InvalidRequestError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_OFFSET", "Page"]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500
MAX_OFFSET: Final = 1_000_000
_MAX_DIGITS: Final = 20


def _integer(name: str, raw: str | int | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, int):
        return raw
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        raise InvalidRequestError(f"{name} must be an integer; got {raw[:40]!r}")
    if len(digits) > _MAX_DIGITS:  # absurd, but a number: clamped like any other
        return -MAX_OFFSET - 1 if text.startswith("-") else MAX_OFFSET + 1
    return int(text)


@dataclass(frozen=True, slots=True)
class Page:
    """Which rows of a listing to return: `limit` in 1..MAX_LIMIT, `offset` in 0..MAX_OFFSET."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def parse(cls, limit: str | int | None = None, offset: str | int | None = None) -> Page:
        """From query-string values (or ints); InvalidRequestError for a non-number."""
        wanted_limit = _integer("limit", limit, DEFAULT_LIMIT)
        wanted_offset = _integer("offset", offset, 0)
        return cls(
            limit=max(1, min(wanted_limit, MAX_LIMIT)),
            offset=max(0, min(wanted_offset, MAX_OFFSET)),
        )

    def body(self, items: list[dict[str, object]]) -> dict[str, object]:
        """A listing's answer: its items and the bounds actually used."""
        return {"items": items, "limit": self.limit, "offset": self.offset, "count": len(items)}
