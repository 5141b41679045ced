"""`Metrics` on prometheus_client, in a registry of our own, rendered for `GET /metrics`.

No global state: each `PrometheusMetrics` owns its `CollectorRegistry` (prometheus_client's
module-level default registry is never touched), so two sidecars in one test process, or
one test after another, never share a counter.

Counters and histograms are updated by the hooks as things happen; the state gauges
(`GaugeSnapshot`) are read by the caller just before rendering and served by a collector
of their own, so a gauge that does not apply (the app is not probed) is simply absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

from sidecar.metrics.gauges import GaugeSnapshot

__all__ = ["CONTENT_TYPE", "NAMESPACE", "PrometheusMetrics"]

NAMESPACE: Final = "shopimind_sidecar"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The content type of the text exposition format."""

_SYNC_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
_PUSH_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_KINDS: Final = ("incremental", "full")
_RUN_STATUSES: Final = ("ok", "partial", "failed", "cancelled", "interrupted", "skipped")


class _StateCollector:
    """Serves the last `GaugeSnapshot` handed to `PrometheusMetrics.render`."""

    def __init__(self) -> None:
        self.snapshot = GaugeSnapshot()

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)

        yield gauge("store_up", "1 when the store answered the last scrape", float(s.store_up))
        if s.store_up:
            yield gauge("outbox_depth", "Inbound events waiting for delivery", s.outbox_depth)
            yield gauge(
                "outbox_oldest_age_seconds",
                "Age of the oldest inbound event waiting for delivery (0 when none)",
                s.outbox_oldest_age_seconds,
            )
            yield gauge(
                "cursors_in_error", "Sync cursors whose last step failed", s.cursors_in_error
            )
            yield gauge("dead_letter_items", "Items in the dead-letter", s.dead_letter_items)
            yield gauge(
                "replicas_alive", "Replicas of this database heartbeating", s.replicas_alive
            )
        yield gauge("sync_workers_in_use", "Sync capacity in use", s.workers_in_use)
        yield gauge("sync_workers", "Sync capacity (SYNC_WORKERS)", s.workers_total)
        yield gauge("sync_workers_waiting", "Syncs waiting for capacity", s.workers_waiting)
        yield gauge(
            "sync_overdue_installations",
            "Installations due for a scheduled sync and not started yet",
            s.sync_overdue,
        )
        yield gauge(
            "sync_oldest_lag_seconds",
            "How long the installation waiting longest for its sync has been due (0 when none)",
            s.sync_oldest_lag_seconds,
        )
        yield gauge("sqlite_file_bytes", "Size of the SQLite database file", s.database_bytes)
        yield gauge("sqlite_wal_bytes", "Size of the SQLite write-ahead log", s.wal_bytes)
        if s.database_pool is not None:
            pool = s.database_pool
            yield gauge("database_pool_size", "PostgreSQL connections in the pool", pool.size)
            yield gauge("database_pool_in_use", "PostgreSQL connections in use", pool.in_use)
            yield gauge(
                "database_pool_waiting", "Store operations waiting for a connection", pool.waiting
            )
        if s.app_healthy is not None:
            yield gauge(
                "app_healthy",
                "1 when the vendor app answers its health probe (APP_HEALTH_PATH)",
                float(s.app_healthy),
            )
        if s.circuits:
            circuit = GaugeMetricFamily(
                f"{NAMESPACE}_peer_circuit_open",
                "1 while calls to the peer are paused by its circuit breaker (open or probing)",
                labels=["peer"],
            )
            for peer, state in sorted(s.circuits.items()):
                circuit.add_metric([peer], float(state != "closed"))
            yield circuit


class PrometheusMetrics:
    """The sidecar's metrics, counted in a registry of its own."""

    def __init__(self, *, process: bool = True) -> None:
        """`process` adds the process collector (memory, CPU, open files) on Linux."""
        self.registry = CollectorRegistry()
        registry = self.registry

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, namespace=NAMESPACE, registry=registry)

        def histogram(
            name: str, documentation: str, label: str, buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(
                name,
                documentation,
                (label,),
                namespace=NAMESPACE,
                registry=registry,
                buckets=buckets,
            )

        self._webhooks = counter(
            "webhooks",
            "Lifecycle webhooks answered, by event and outcome (ok or the error code)",
            "event",
            "outcome",
        )
        self._inbound = counter(
            "inbound_calls",
            "Inbound calls of the vendor app answered, by action and HTTP status",
            "action",
            "status",
        )
        self._runs = counter(
            "sync_runs",
            "Sync runs closed, by kind and status",
            "kind",
            "status",
        )
        self._run_seconds = histogram(
            "sync_run_duration_seconds",
            "Duration of sync runs",
            "kind",
            _SYNC_BUCKETS,
        )
        self._pushed = counter(
            "items_pushed",
            "Items ShopiMind accepted, by entity",
            "entity",
        )
        self._rejected = counter(
            "items_rejected",
            "Items ShopiMind rejected, by entity",
            "entity",
        )
        self._push_seconds = histogram(
            "push_duration_seconds",
            "Duration of one page's push to ShopiMind, by entity",
            "entity",
            _PUSH_BUCKETS,
        )
        self._calls = counter(
            "outbound_calls",
            "Calls to the ShopiMind API and to the vendor app, by peer and outcome",
            "peer",
            "outcome",
        )
        self._lease_acquisitions = counter(
            "lease_acquisitions", "Leases acquired (installations, outboxes, singletons)"
        )
        self._lease_takeovers = counter(
            "lease_takeovers",
            "Leases acquired from a holder that had not released them (expired, or dead)",
        )
        self._lease_renew_failures = counter(
            "lease_renew_failures", "Lease renewals that failed or found the lease lost"
        )
        self._lease_fenced_writes = counter(
            "lease_fenced_writes",
            "Writes refused because their lease had passed to another holder (a stale epoch)",
        )
        # Series that exist from the start, so a rate() over them never starts from nothing.
        for kind in _RUN_KINDS:
            self._run_seconds.labels(kind=kind)
            for status in _RUN_STATUSES:
                self._runs.labels(kind=kind, status=status)
        self._state = _StateCollector()
        registry.register(self._state)
        if process:
            ProcessCollector(namespace=NAMESPACE, registry=registry)

    # --- hooks (sidecar.metrics.hooks.Metrics) -------------------------------------------

    def webhook(self, *, event: str, outcome: str) -> None:
        """Count one lifecycle webhook."""
        self._webhooks.labels(event=event, outcome=outcome).inc()

    def inbound_call(self, *, action: str, status: int) -> None:
        """Count one inbound call."""
        self._inbound.labels(action=action, status=str(status)).inc()

    def sync_run(self, *, kind: str, status: str, seconds: float) -> None:
        """Count one closed sync run and its duration."""
        self._runs.labels(kind=kind, status=status).inc()
        self._run_seconds.labels(kind=kind).observe(max(0.0, seconds))

    def push(self, *, entity: str, sent: int, rejected: int, seconds: float) -> None:
        """Count one page pushed to ShopiMind."""
        self._pushed.labels(entity=entity).inc(max(0, sent))
        self._rejected.labels(entity=entity).inc(max(0, rejected))
        self._push_seconds.labels(entity=entity).observe(max(0.0, seconds))

    def outbound_call(self, peer: str, outcome: str) -> None:
        """Count one outbound call."""
        self._calls.labels(peer=peer, outcome=outcome).inc()

    def lease_acquired(self, took_over: bool) -> None:
        """Count one lease acquired, and a takeover when it was one."""
        self._lease_acquisitions.inc()
        if took_over:
            self._lease_takeovers.inc()

    def lease_renew_failed(self) -> None:
        """Count one failed lease renewal."""
        self._lease_renew_failures.inc()

    def lease_fenced_write(self) -> None:
        """Count one fenced write refused."""
        self._lease_fenced_writes.inc()

    # --- exposition -----------------------------------------------------------------------

    def render(self, snapshot: GaugeSnapshot) -> bytes:
        """Everything, in the Prometheus text format, with `snapshot` as the state gauges."""
        self._state.snapshot = snapshot
        return generate_latest(self.registry)
