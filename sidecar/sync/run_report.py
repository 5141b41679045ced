"""What one sync run did: its cursors, errors and status, as stored on its run row."""

from __future__ import annotations

from dataclasses import dataclass, field

from sidecar.store.records import RunKind, RunStatus
from sidecar.sync.cursor_sync import CursorReport

__all__ = ["RunReport"]


@dataclass(slots=True, kw_only=True)
class RunReport:
    """The outcome of one run."""

    run_id: int
    installation_id: str
    kind: RunKind
    status: RunStatus = "running"
    cursors: list[CursorReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    provisioning_errors: list[str] = field(default_factory=list)
    """Errors of a provisioning run first (asked for while the installation synced)."""
    resumed: bool = False
    """It continues a full backfill that an earlier run did not finish."""

    @property
    def items(self) -> int:
        """Items pushed in this run (a resumed window counts what it had before too)."""
        return sum(cursor.items for cursor in self.cursors)

    @property
    def skipped(self) -> int:
        """Cursors left alone this run because they wait out a backoff after failures."""
        return sum(1 for cursor in self.cursors if cursor.skipped)

    def closing_status(self) -> RunStatus:
        """How a run that went to its end is closed."""
        if self.errors:
            return "partial"
        if self.cursors and self.skipped == len(self.cursors):
            return "skipped"
        return "ok"

    def summary(self) -> dict[str, object]:
        """The JSON summary stored on the run row."""
        return {
            "kind": self.kind,
            "resumed": self.resumed,
            "items": self.items,
            "skipped": self.skipped,
            "errors": self.errors,
            "provisioning_errors": self.provisioning_errors,
            "cursors": [cursor.summary() for cursor in self.cursors],
        }
