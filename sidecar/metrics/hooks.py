"""What the sidecar's parts report as they work, for `/metrics`: one small interface.

Each counted thing happens in one place (the webhook receiver, the inbound service, the
sync engine, `outbound.send`…), and that place is handed a `Metrics` explicitly. Parts
default to `NO_METRICS`, which does nothing, so a rule's tests and the CLI need nothing
and the rules never import prometheus_client: only the runtime builds the Prometheus
implementation (`sidecar.metrics.prometheus`).

Labels are bounded by design: an event, an action or an entity that the declaration does
not know is reported as `unknown`, so a caller cannot grow the set of series at will.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

__all__ = [
    "NO_METRICS",
    "UNKNOWN_LABEL",
    "CallObserver",
    "Metrics",
    "NoMetrics",
    "call_outcome",
]

UNKNOWN_LABEL: Final = "unknown"
"""The label of anything a caller named but the declaration does not know."""

CallObserver = Callable[[str], None]
"""Told the outcome (`call_outcome`) of each outbound call, by `outbound.send`."""


def call_outcome(status: int | None) -> str:
    """The outcome label of one outbound call: `2xx`…`5xx`, or `error` (no answer at all)."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


class Metrics(Protocol):
    """The hooks every part may call; each is cheap and never raises."""

    def webhook(self, *, event: str, outcome: str) -> None:
        """A lifecycle webhook was answered: `outcome` is `ok` or the error code."""
        ...

    def inbound_call(self, *, action: str, status: int) -> None:
        """An inbound call was answered with HTTP `status`."""
        ...

    def sync_run(self, *, kind: str, status: str, seconds: float) -> None:
        """A sync run closed as `status` after `seconds`."""
        ...

    def push(self, *, entity: str, sent: int, rejected: int, seconds: float) -> None:
        """One page of `entity` was pushed to ShopiMind (accepted and rejected items)."""
        ...

    def outbound_call(self, peer: str, outcome: str) -> None:
        """One call to a peer (`shopimind` or `app`) ended with `outcome`."""
        ...

    def lease_acquired(self, took_over: bool) -> None:
        """A lease was acquired; `took_over` when from a holder that had not released it."""
        ...

    def lease_renew_failed(self) -> None:
        """A lease renewal failed (the store did not answer, or the lease was lost)."""
        ...

    def lease_fenced_write(self) -> None:
        """A fenced write was refused: its lease had passed to another holder."""
        ...


class NoMetrics:
    """Metrics that go nowhere: the default of every part."""

    def webhook(self, *, event: str, outcome: str) -> None:
        """Nothing."""

    def inbound_call(self, *, action: str, status: int) -> None:
        """Nothing."""

    def sync_run(self, *, kind: str, status: str, seconds: float) -> None:
        """Nothing."""

    def push(self, *, entity: str, sent: int, rejected: int, seconds: float) -> None:
        """Nothing."""

    def outbound_call(self, peer: str, outcome: str) -> None:
        """Nothing."""

    def lease_acquired(self, took_over: bool) -> None:
        """Nothing."""

    def lease_renew_failed(self) -> None:
        """Nothing."""

    def lease_fenced_write(self) -> None:
        """Nothing."""


NO_METRICS: Final[Metrics] = NoMetrics()
