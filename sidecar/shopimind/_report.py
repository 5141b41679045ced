"""What a provisioning run found wrong, collected per resource instead of raised (PROTOCOL §4).

One resource failing must never abort the plan: the others still converge, and the
caller decides from the whole picture (nothing provisioned at all fails an activation;
partial errors are warnings).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sidecar.errors import ShopimindError
from sidecar.logs import BoundLogger

__all__ = ["Report"]


class Report:
    """Errors and warnings of one provisioning run, each prefixed with its resource."""

    __slots__ = ("errors", "log", "warnings")

    def __init__(self, log: BoundLogger) -> None:
        self.log = log
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, subject: str, message: str) -> None:
        """Record that `subject` (e.g. `data source 'main'`) could not be provisioned fully."""
        self.errors.append(f"{subject}: {message}")
        self.log.warning("provisioning error", resource=subject, error=message)

    def warning(self, subject: str, message: str) -> None:
        """Record something the operator should know that did not stop `subject`."""
        self.warnings.append(f"{subject}: {message}")
        self.log.warning("provisioning warning", resource=subject, detail=message)

    @contextmanager
    def collect(self, subject: str) -> Iterator[None]:
        """Run a step for `subject`; a failure is recorded as its error and goes no further.

        Cancellation (a BaseException) passes through untouched.
        """
        try:
            yield
        except ShopimindError as exc:
            self.error(subject, str(exc))
        except Exception as exc:
            self.log.exception("provisioning step crashed", resource=subject)
            self.error(subject, f"unexpected {type(exc).__name__}: {exc}")
