"""`Metrics` counted here, rendered by prometheus_client for `GET /metrics`.

The hooks count in plain dictionaries (`_Counter`, `_Histogram`: what prometheus_client's
`Counter` and `Histogram` keep, a value and a creation time per label set, and bucket
counts); prometheus_client is imported, and its registry built, at the first scrape only,
which renders these counts as metric families in the text format. A sidecar nobody
scrapes never loads it (~0.5 MiB and its import time at every start).

No global state: each `PrometheusMetrics` owns its `CollectorRegistry` (prometheus_client's
module-level default registry is never touched), so two sidecars in one test process, or
one test after another, never share a counter.

The state gauges (`GaugeSnapshot`) are read by the caller just before rendering and
served with the counters, so a gauge that does not apply (the app is not probed) is
simply absent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final, cast

from sidecar.metrics.gauges import GaugeSnapshot

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = ["CONTENT_TYPE", "NAMESPACE", "PrometheusMetrics"]

NAMESPACE: Final = "shopimind_sidecar"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The content type of the text exposition format (the one `render` writes)."""

_SYNC_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
_PUSH_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_KINDS: Final = ("incremental", "full")
_RUN_STATUSES: Final = ("ok", "partial", "failed", "cancelled", "interrupted", "skipped")


class _Counter:
    """A counter family: per label values, its total and when the series was created."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name = f"{NAMESPACE}_{name}"
        self.documentation = documentation
        self.labels = labels
        self.series: dict[tuple[str, ...], list[float]] = {}
        """label values → [total, created (epoch seconds)]"""
        if not labels:
            self.touch(())  # an unlabelled counter exists from the start, at 0

    def touch(self, values: tuple[str, ...]) -> list[float]:
        """The series of these label values, created at 0 when new."""
        series = self.series.get(values)
        if series is None:
            series = self.series[values] = [0.0, time.time()]
        return series

    def inc(self, values: tuple[str, ...], amount: float = 1.0) -> None:
        """Add `amount` (≥ 0) to the series."""
        self.touch(values)[0] += amount

    def family(self) -> Metric:
        """As prometheus_client's `Counter` collects itself."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, (total, created) in self.series.items():
            family.add_metric(values, total, created=created)
        return family


class _HistogramSeries:
    """One label set of a histogram: counts per bucket (not cumulative), sum, creation."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.total = 0.0
        self.created = time.time()


class _Histogram:
    """A histogram family with one label, its buckets ending with +Inf."""

    def __init__(
        self, name: str, documentation: str, label: str, buckets: tuple[float, ...]
    ) -> None:
        self.name = f"{NAMESPACE}_{name}"
        self.documentation = documentation
        self.label = label
        self.bounds = (*buckets, float("inf"))
        self.series: dict[str, _HistogramSeries] = {}

    def touch(self, value: str) -> _HistogramSeries:
        """The series of this label value, created empty when new."""
        series = self.series.get(value)
        if series is None:
            series = self.series[value] = _HistogramSeries(len(self.bounds))
        return series

    def observe(self, value: str, amount: float) -> None:
        """Count one observation in the first bucket that holds it."""
        series = self.touch(value)
        series.total += amount
        for index, bound in enumerate(self.bounds):
            if amount <= bound:
                series.counts[index] += 1
                break

    def family(self) -> Metric:
        """As prometheus_client's `Histogram` collects itself (`_created` included)."""
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.samples import Sample
        from prometheus_client.utils import floatToGoString

        go_string = cast(Callable[[float], str], floatToGoString)  # untyped upstream

        family = HistogramMetricFamily(self.name, self.documentation, labels=(self.label,))
        for value, series in self.series.items():
            cumulative, buckets = 0, []
            for bound, count in zip(self.bounds, series.counts, strict=True):
                cumulative += count
                buckets.append((go_string(bound), float(cumulative)))
            family.add_metric((value,), buckets, series.total)
            family.samples.append(
                Sample(f"{self.name}_created", {self.label: value}, series.created)
            )
        return family


def _state_families(s: GaugeSnapshot) -> Iterator[Metric]:
    """The state gauges of the snapshot handed to `PrometheusMetrics.render`."""
    from prometheus_client.core import GaugeMetricFamily

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
        yield gauge("cursors_in_error", "Sync cursors whose last step failed", s.cursors_in_error)
        yield gauge("dead_letter_items", "Items in the dead-letter", s.dead_letter_items)
        yield gauge("replicas_alive", "Replicas of this database heartbeating", s.replicas_alive)
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


class _Collector:
    """What the registry collects: the counts of `PrometheusMetrics`, then the gauges."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        with metrics.lock:
            families = [family.family() for family in metrics.families]
        yield from families
        yield from _state_families(metrics.snapshot)


class PrometheusMetrics:
    """The sidecar's metrics, counted in memory, rendered in a registry of its own."""

    def __init__(self, *, process: bool = True) -> None:
        """`process` adds the process collector (memory, CPU, open files) on Linux."""
        self._process = process
        self._registry: CollectorRegistry | None = None
        self.lock = threading.Lock()
        """Held while counting and while the counts are read for a scrape."""
        self.snapshot = GaugeSnapshot()
        """The state gauges of the scrape under way."""
        self._webhooks = _Counter(
            "webhooks",
            "Lifecycle webhooks answered, by event and outcome (ok or the error code)",
            ("event", "outcome"),
        )
        self._inbound = _Counter(
            "inbound_calls",
            "Inbound calls of the vendor app answered, by action and HTTP status",
            ("action", "status"),
        )
        self._runs = _Counter(
            "sync_runs", "Sync runs closed, by kind and status", ("kind", "status")
        )
        self._run_seconds = _Histogram(
            "sync_run_duration_seconds", "Duration of sync runs", "kind", _SYNC_BUCKETS
        )
        self._pushed = _Counter("items_pushed", "Items ShopiMind accepted, by entity", ("entity",))
        self._rejected = _Counter(
            "items_rejected", "Items ShopiMind rejected, by entity", ("entity",)
        )
        self._push_seconds = _Histogram(
            "push_duration_seconds",
            "Duration of one page's push to ShopiMind, by entity",
            "entity",
            _PUSH_BUCKETS,
        )
        self._calls = _Counter(
            "outbound_calls",
            "Calls to the ShopiMind API and to the vendor app, by peer and outcome",
            ("peer", "outcome"),
        )
        self._lease_acquisitions = _Counter(
            "lease_acquisitions", "Leases acquired (installations, outboxes, singletons)", ()
        )
        self._lease_takeovers = _Counter(
            "lease_takeovers",
            "Leases acquired from a holder that had not released them (expired, or dead)",
            (),
        )
        self._lease_renew_failures = _Counter(
            "lease_renew_failures", "Lease renewals that failed or found the lease lost", ()
        )
        self._lease_fenced_writes = _Counter(
            "lease_fenced_writes",
            "Writes refused because their lease had passed to another holder (a stale epoch)",
            (),
        )
        self.families: tuple[_Counter | _Histogram, ...] = (
            self._webhooks,
            self._inbound,
            self._runs,
            self._run_seconds,
            self._pushed,
            self._rejected,
            self._push_seconds,
            self._calls,
            self._lease_acquisitions,
            self._lease_takeovers,
            self._lease_renew_failures,
            self._lease_fenced_writes,
        )
        """In the order they are rendered."""
        # Series that exist from the start, so a rate() over them never starts from nothing.
        for kind in _RUN_KINDS:
            self._run_seconds.touch(kind)
            for status in _RUN_STATUSES:
                self._runs.touch((kind, status))

    @property
    def registry(self) -> CollectorRegistry:
        """This instance's registry, built (prometheus_client imported) at first use."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.process_collector import ProcessCollector

            registry = CollectorRegistry()
            registry.register(_Collector(self))
            if self._process:
                ProcessCollector(namespace=NAMESPACE, registry=registry)
            self._registry = registry
        return self._registry

    # --- hooks (sidecar.metrics.hooks.Metrics) -------------------------------------------

    def webhook(self, *, event: str, outcome: str) -> None:
        """Count one lifecycle webhook."""
        with self.lock:
            self._webhooks.inc((event, outcome))

    def inbound_call(self, *, action: str, status: int) -> None:
        """Count one inbound call."""
        with self.lock:
            self._inbound.inc((action, str(status)))

    def sync_run(self, *, kind: str, status: str, seconds: float) -> None:
        """Count one closed sync run and its duration."""
        with self.lock:
            self._runs.inc((kind, status))
            self._run_seconds.observe(kind, max(0.0, seconds))

    def push(self, *, entity: str, sent: int, rejected: int, seconds: float) -> None:
        """Count one page pushed to ShopiMind."""
        with self.lock:
            self._pushed.inc((entity,), max(0, sent))
            self._rejected.inc((entity,), max(0, rejected))
            self._push_seconds.observe(entity, max(0.0, seconds))

    def outbound_call(self, peer: str, outcome: str) -> None:
        """Count one outbound call."""
        with self.lock:
            self._calls.inc((peer, outcome))

    def lease_acquired(self, took_over: bool) -> None:
        """Count one lease acquired, and a takeover when it was one."""
        with self.lock:
            self._lease_acquisitions.inc(())
            if took_over:
                self._lease_takeovers.inc(())

    def lease_renew_failed(self) -> None:
        """Count one failed lease renewal."""
        with self.lock:
            self._lease_renew_failures.inc(())

    def lease_fenced_write(self) -> None:
        """Count one fenced write refused."""
        with self.lock:
            self._lease_fenced_writes.inc(())

    # --- exposition -----------------------------------------------------------------------

    def render(self, snapshot: GaugeSnapshot) -> bytes:
        """Everything, in the Prometheus text format, with `snapshot` as the state gauges."""
        from prometheus_client import generate_latest

        registry = self.registry
        self.snapshot = snapshot
        return generate_latest(registry)
