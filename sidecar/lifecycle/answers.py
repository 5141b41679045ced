"""What the sidecar answers ShopiMind: a status code and a JSON body (PROTOCOL §1.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sidecar.payloads import InvalidJsonError

__all__ = ["Answer"]


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status and the JSON body to send."""

    status: int
    body: Mapping[str, object] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """ShopiMind counts only `success: true` as success."""
        return self.body.get("success") is True

    @classmethod
    def ok(cls, **extra: object) -> Answer:
        """`200 {"success": true}`."""
        return cls(200, {"success": True, **extra})

    @classmethod
    def failure(cls, error: str, status: int = 200) -> Answer:
        """`{"success": false, "error": error}` (200 by default, as ShopiMind expects)."""
        return cls(status, {"success": False, "error": error})

    @classmethod
    def invalid_json(cls, error: InvalidJsonError) -> Answer:
        """`400 {"success": false, "error": "invalid_json", "rule": …}`: PROTOCOL's code,
        and the rule of the JSON policy the body broke (`sidecar.payloads`)."""
        return cls(400, {"success": False, "error": "invalid_json", "rule": error.rule})
