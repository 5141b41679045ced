"""Metrics: the hooks parts report to, and their Prometheus implementation (`/metrics`).

hooks       the `Metrics` interface every part takes, and `NO_METRICS` (the default)
gauges      the state gauges read at scrape time (outbox, cursors, workers, SQLite sizes)
prometheus  `PrometheusMetrics`: a registry of its own, rendered in the text format;
            imported by the runtime only (`sidecar.metrics.prometheus`), so the rules
            and the CLI never load prometheus_client
"""

from sidecar.metrics.gauges import GaugeSnapshot, read_gauges
from sidecar.metrics.hooks import (
    NO_METRICS,
    UNKNOWN_LABEL,
    CallObserver,
    Metrics,
    NoMetrics,
    call_outcome,
)

__all__ = [
    "NO_METRICS",
    "UNKNOWN_LABEL",
    "CallObserver",
    "GaugeSnapshot",
    "Metrics",
    "NoMetrics",
    "call_outcome",
    "read_gauges",
]
