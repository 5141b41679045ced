"""What `app-check` found: one `Check` per property of the contract, and how to show it.

A check passed, failed (with one sentence per problem a person can act on) or was
skipped (with the reason). A failed check carries the exact request that showed the
problem, so the vendor can replay it against their app.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TextIO

__all__ = ["Check", "CheckStatus", "Report", "ShownRequest", "dumps", "render_text"]

CheckStatus = Literal["passed", "failed", "skipped"]

MAX_PROBLEMS_SHOWN: Final = 10
"""Per check in the text report; the JSON report has them all."""
_BODY_CHARS_SHOWN: Final = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class ShownRequest:
    """A request app-check sent, as a vendor would replay it (secrets in the body masked)."""

    method: str
    url: str
    signing: str
    """How it was signed: `signed with APP_SECRET`, `unsigned`, `signed with another secret`…"""
    body: str

    def as_dict(self) -> dict[str, str]:
        """The JSON report's form."""
        return {"method": self.method, "url": self.url, "signing": self.signing, "body": self.body}


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One property of the contract, checked against the app."""

    name: str
    status: CheckStatus
    problems: tuple[str, ...] = ()
    note: str | None = None
    """A detail worth reading even when the check passed (e.g. `3 pages, 45 items`)."""
    request: ShownRequest | None = None

    @classmethod
    def passed(cls, name: str, note: str | None = None) -> Check:
        """A check that passed."""
        return cls(name=name, status="passed", note=note)

    @classmethod
    def failed(
        cls, name: str, problems: Iterable[str], request: ShownRequest | None = None
    ) -> Check:
        """A check that failed, with its problems and the request that showed them."""
        return cls(name=name, status="failed", problems=tuple(problems), request=request)

    @classmethod
    def skipped(cls, name: str, reason: str) -> Check:
        """A check that could not be made, and why."""
        return cls(name=name, status="skipped", note=reason)

    def as_dict(self) -> dict[str, object]:
        """The JSON report's form."""
        return {
            "name": self.name,
            "status": self.status,
            "problems": list(self.problems),
            "note": self.note,
            "request": self.request.as_dict() if self.request is not None else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Every check made against one app."""

    app_base_url: str
    integration_file: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not fail the run)."""
        return all(check.status != "failed" for check in self.checks)

    def count(self, status: CheckStatus) -> int:
        """How many checks ended with `status`."""
        return sum(1 for check in self.checks if check.status == status)

    def as_dict(self) -> dict[str, object]:
        """The `--json` report."""
        return {
            "ok": self.ok,
            "app_base_url": self.app_base_url,
            "integration_file": self.integration_file,
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "checks": [check.as_dict() for check in self.checks],
        }


_MARKS: Final[Mapping[CheckStatus, str]] = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}


def _shortened(text: str) -> str:
    return text if len(text) <= _BODY_CHARS_SHOWN else text[:_BODY_CHARS_SHOWN] + "…"


def render_text(report: Report, out: TextIO) -> None:
    """The report as a person reads it: a line per check, problems and request under it."""
    lines = [f"app-check: {report.app_base_url} against {report.integration_file}"]
    for check in report.checks:
        line = f"  {_MARKS[check.status]}  {check.name}"
        if check.note and check.status != "failed":
            line += f"  ({check.note})"
        lines.append(line)
        lines += [f"          - {problem}" for problem in check.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(check.problems) - MAX_PROBLEMS_SHOWN
        if hidden > 0:
            lines.append(f"          … and {hidden} more (see --json)")
        if check.request is not None:
            request = check.request
            lines.append(f"          request: {request.method} {request.url}  ({request.signing})")
            if request.body:
                lines.append(f"                   {_shortened(request.body)}")
    verdict = "the app follows the contract" if report.ok else "the app breaks the contract"
    lines.append(
        f"{len(report.checks)} checks: {report.count('passed')} passed, "
        f"{report.count('failed')} failed, {report.count('skipped')} skipped: {verdict}"
    )
    out.write("\n".join(lines) + "\n")


def dumps(report: Report) -> str:
    """The `--json` report as text."""
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)
