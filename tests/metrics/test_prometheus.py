"""`PrometheusMetrics`: the hooks count, `render` serves them with the state gauges, and the
text parses with Prometheus's own parser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.metrics import GaugeSnapshot, read_gauges
from sidecar.metrics.prometheus import CONTENT_TYPE, NAMESPACE, PrometheusMetrics
from sidecar.store.records import PoolStatistics
from sidecar.store.sqlite import SqliteStore

N = NAMESPACE
STORE_GAUGES = (
    "outbox_depth",
    "outbox_oldest_age_seconds",
    "cursors_in_error",
    "dead_letter_items",
    "replicas_alive",
)


class Scrape:
    """One rendering, parsed: sample values by name and labels, and the families' types."""

    def __init__(self, text: bytes) -> None:
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text.decode("utf-8")):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `<namespace>_<name>` with exactly these labels, or None."""
        return self.samples.get((f"{N}_{name}", frozenset(labels.items())))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(metrics: PrometheusMetrics, snapshot: GaugeSnapshot | None = None) -> Scrape:
    return Scrape(metrics.render(snapshot or GaugeSnapshot()))


@pytest.fixture
def metrics() -> PrometheusMetrics:
    return PrometheusMetrics(process=False)


def test_webhooks_and_inbound_calls_are_counted_by_their_labels(
    metrics: PrometheusMetrics,
) -> None:
    metrics.webhook(event="installed", outcome="ok")
    metrics.webhook(event="installed", outcome="ok")
    metrics.webhook(event="activated", outcome="invalid_signature")
    metrics.inbound_call(action="sale", status=202)
    metrics.inbound_call(action="sale", status=401)
    metrics.inbound_call(action="sale", status=401)
    metrics.inbound_call(action="unknown", status=404)
    got = scrape(metrics)
    assert got.types[f"{N}_webhooks"] == "counter"
    assert got.value("webhooks_total", event="installed", outcome="ok") == 2
    assert got.value("webhooks_total", event="activated", outcome="invalid_signature") == 1
    assert got.value("webhooks_total", event="activated", outcome="ok") is None
    assert got.types[f"{N}_inbound_calls"] == "counter"
    assert got.value("inbound_calls_total", action="sale", status="202") == 1
    assert got.value("inbound_calls_total", action="sale", status="401") == 2
    assert got.value("inbound_calls_total", action="unknown", status="404") == 1


def test_sync_runs_are_counted_by_kind_and_status_with_their_durations(
    metrics: PrometheusMetrics,
) -> None:
    metrics.sync_run(kind="full", status="ok", seconds=3.0)
    metrics.sync_run(kind="full", status="ok", seconds=120.0)
    metrics.sync_run(kind="incremental", status="failed", seconds=0.5)
    got = scrape(metrics)
    assert got.value("sync_runs_total", kind="full", status="ok") == 2
    assert got.value("sync_runs_total", kind="incremental", status="failed") == 1
    assert got.value("sync_runs_total", kind="incremental", status="ok") == 0
    assert got.types[f"{N}_sync_run_duration_seconds"] == "histogram"
    assert got.value("sync_run_duration_seconds_count", kind="full") == 2
    assert got.value("sync_run_duration_seconds_sum", kind="full") == pytest.approx(123.0)
    assert got.value("sync_run_duration_seconds_bucket", kind="full", le="5.0") == 1
    assert got.value("sync_run_duration_seconds_bucket", kind="full", le="300.0") == 2
    assert got.value("sync_run_duration_seconds_bucket", kind="incremental", le="1.0") == 1
    assert got.value("sync_run_duration_seconds_bucket", kind="incremental", le="+Inf") == 1


def test_pushed_and_rejected_items_per_entity_and_push_durations(
    metrics: PrometheusMetrics,
) -> None:
    metrics.push(entity="orders", sent=100, rejected=2, seconds=0.2)
    metrics.push(entity="orders", sent=50, rejected=0, seconds=3.0)
    metrics.push(entity="customers", sent=7, rejected=1, seconds=0.01)
    got = scrape(metrics)
    assert got.value("items_pushed_total", entity="orders") == 150
    assert got.value("items_rejected_total", entity="orders") == 2
    assert got.value("items_pushed_total", entity="customers") == 7
    assert got.value("items_rejected_total", entity="customers") == 1
    assert got.types[f"{N}_push_duration_seconds"] == "histogram"
    assert got.value("push_duration_seconds_count", entity="orders") == 2
    assert got.value("push_duration_seconds_bucket", entity="orders", le="0.25") == 1
    assert got.value("push_duration_seconds_bucket", entity="orders", le="5.0") == 2
    assert got.value("push_duration_seconds_bucket", entity="customers", le="0.05") == 1


def test_hooks_never_raise_on_negative_numbers(metrics: PrometheusMetrics) -> None:
    # A counter refuses to go down: the hooks clamp instead of raising into the caller.
    metrics.push(entity="orders", sent=-3, rejected=-1, seconds=-2.0)
    metrics.sync_run(kind="full", status="ok", seconds=-1.0)
    got = scrape(metrics)
    assert got.value("items_pushed_total", entity="orders") == 0
    assert got.value("items_rejected_total", entity="orders") == 0
    assert got.value("push_duration_seconds_sum", entity="orders") == 0
    assert got.value("sync_run_duration_seconds_sum", kind="full") == 0
    assert got.value("sync_run_duration_seconds_bucket", kind="full", le="1.0") == 1


def test_outbound_calls_by_peer_and_outcome(metrics: PrometheusMetrics) -> None:
    metrics.outbound_call("shopimind", "2xx")
    metrics.outbound_call("shopimind", "2xx")
    metrics.outbound_call("shopimind", "5xx")
    metrics.outbound_call("app", "error")
    got = scrape(metrics)
    assert got.value("outbound_calls_total", peer="shopimind", outcome="2xx") == 2
    assert got.value("outbound_calls_total", peer="shopimind", outcome="5xx") == 1
    assert got.value("outbound_calls_total", peer="app", outcome="error") == 1
    assert got.value("outbound_calls_total", peer="app", outcome="2xx") is None


def test_run_series_exist_at_zero_before_any_run(metrics: PrometheusMetrics) -> None:
    got = scrape(metrics)
    for kind in ("incremental", "full"):
        for status in ("ok", "partial", "failed", "cancelled"):
            assert got.value("sync_runs_total", kind=kind, status=status) == 0, (kind, status)
        assert got.value("sync_run_duration_seconds_count", kind=kind) == 0
        assert got.value("sync_run_duration_seconds_bucket", kind=kind, le="+Inf") == 0
    # The other counters have no series until something happens (their labels are open).
    assert not any(name.startswith(f"{N}_webhooks") for name in got.names())


def test_state_gauges_come_from_the_snapshot(metrics: PrometheusMetrics) -> None:
    snapshot = GaugeSnapshot(
        outbox_depth=12,
        outbox_oldest_age_seconds=93.5,
        cursors_in_error=2,
        dead_letter_items=40,
        replicas_alive=2,
        workers_in_use=3,
        workers_total=4,
        workers_waiting=1,
        sync_overdue=7,
        sync_oldest_lag_seconds=61.25,
        database_bytes=4096,
        wal_bytes=8192,
        app_healthy=False,
    )
    got = scrape(metrics, snapshot)
    expected = {
        "store_up": 1,
        "outbox_depth": 12,
        "outbox_oldest_age_seconds": 93.5,
        "cursors_in_error": 2,
        "dead_letter_items": 40,
        "replicas_alive": 2,
        "sync_workers_in_use": 3,
        "sync_workers": 4,
        "sync_workers_waiting": 1,
        "sync_overdue_installations": 7,
        "sync_oldest_lag_seconds": 61.25,
        "sqlite_file_bytes": 4096,
        "sqlite_wal_bytes": 8192,
        "app_healthy": 0,
    }
    assert {name: got.value(name) for name in expected} == expected
    assert all(got.types[f"{N}_{name}"] == "gauge" for name in expected)


def test_each_render_serves_its_own_snapshot(metrics: PrometheusMetrics) -> None:
    assert scrape(metrics, GaugeSnapshot(outbox_depth=5)).value("outbox_depth") == 5
    assert scrape(metrics, GaugeSnapshot(outbox_depth=0)).value("outbox_depth") == 0


def test_a_store_that_is_down_hides_the_store_gauges(metrics: PrometheusMetrics) -> None:
    got = scrape(
        metrics,
        GaugeSnapshot(store_up=False, outbox_depth=3, replicas_alive=1, workers_total=4),
    )
    assert got.value("store_up") == 0
    for name in STORE_GAUGES:
        assert got.value(name) is None, name
    # What does not come from the store is still served.
    assert got.value("sync_workers") == 4
    assert got.value("sqlite_file_bytes") == 0


@pytest.mark.parametrize(("healthy", "expected"), [(None, None), (True, 1.0), (False, 0.0)])
def test_app_healthy_is_absent_when_the_app_is_not_probed(
    metrics: PrometheusMetrics, healthy: bool | None, expected: float | None
) -> None:
    got = scrape(metrics, GaugeSnapshot(app_healthy=healthy))
    assert got.value("app_healthy") == expected
    assert (f"{N}_app_healthy" in got.types) is (healthy is not None)


def test_without_the_process_collector_there_are_no_process_metrics(
    metrics: PrometheusMetrics,
) -> None:
    assert not any(name.startswith(f"{N}_process_") for name in scrape(metrics).names())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process metrics need /proc")
def test_the_process_collector_adds_process_metrics() -> None:
    got = scrape(PrometheusMetrics())
    assert got.value("process_resident_memory_bytes") is not None
    assert got.value("process_cpu_seconds_total") is not None


def test_two_instances_count_apart_and_leave_the_default_registry_alone() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()  # with process collectors, too
    first.webhook(event="installed", outcome="ok")
    second.webhook(event="installed", outcome="ok")
    second.webhook(event="installed", outcome="ok")
    assert scrape(first).value("webhooks_total", event="installed", outcome="ok") == 1
    assert scrape(second).value("webhooks_total", event="installed", outcome="ok") == 2
    assert first.registry is not second.registry
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert N not in default


def test_the_content_type_is_the_text_format() -> None:
    assert CONTENT_TYPE.startswith("text/plain")
    assert "version=" in CONTENT_TYPE


def test_the_postgresql_pool_gauges_appear_with_a_pool(metrics: PrometheusMetrics) -> None:
    assert scrape(metrics).value("database_pool_size") is None  # SQLite: no pool
    got = scrape(metrics, GaugeSnapshot(database_pool=PoolStatistics(size=8, in_use=3, waiting=2)))
    assert got.value("database_pool_size") == 8
    assert got.value("database_pool_in_use") == 3
    assert got.value("database_pool_waiting") == 2


async def test_the_pool_gauges_are_read_from_the_pool_at_each_scrape(
    store: SqliteStore,
) -> None:
    reads = iter([PoolStatistics(size=8, in_use=1, waiting=0)])
    snapshot = await read_gauges(store, database_pool=lambda: next(reads))
    assert snapshot.database_pool == PoolStatistics(size=8, in_use=1, waiting=0)


def test_lease_hooks_count_acquisitions_takeovers_renew_failures_and_fenced_writes(
    metrics: PrometheusMetrics,
) -> None:
    metrics.lease_acquired(took_over=False)
    metrics.lease_acquired(took_over=True)
    metrics.lease_acquired(took_over=False)
    metrics.lease_renew_failed()
    metrics.lease_fenced_write()
    metrics.lease_fenced_write()
    got = scrape(metrics)
    assert got.value("lease_acquisitions_total") == 3
    assert got.value("lease_takeovers_total") == 1
    assert got.value("lease_renew_failures_total") == 1
    assert got.value("lease_fenced_writes_total") == 2
    assert got.types[f"{N}_lease_takeovers"] == "counter"


def test_the_lease_counters_exist_from_the_start(metrics: PrometheusMetrics) -> None:
    got = scrape(metrics)
    for name in ("acquisitions", "takeovers", "renew_failures", "fenced_writes"):
        assert got.value(f"lease_{name}_total") == 0, name


def test_counting_does_not_load_prometheus_client_and_the_first_scrape_does() -> None:
    code = (
        "import sys\n"
        "from sidecar.metrics.gauges import GaugeSnapshot\n"
        "from sidecar.metrics.prometheus import PrometheusMetrics\n"
        "m = PrometheusMetrics()\n"
        "m.webhook(event='installed', outcome='ok')\n"
        "m.sync_run(kind='full', status='ok', seconds=2.0)\n"
        "m.lease_acquired(True)\n"
        "print('prometheus_client' in sys.modules)\n"
        "m.render(GaugeSnapshot())\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True"]


def _masked(text: str, families: tuple[str, ...]) -> list[str]:
    """The lines of these families, with the `_created` timestamps (times of creation,
    which differ between two instances) masked."""
    lines = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("#") else line.split("{", 1)[0]
        name = name.split(" ", 1)[0]
        if any(name == f or name.startswith(f + "_") for f in families):
            lines.append(re.sub(r"_created(\{[^}]*\})? \S+$", r"_created\1 T", line))
    return lines


def test_the_counts_render_exactly_as_prometheus_client_counters_and_histograms() -> None:
    # The same families built with prometheus_client's own Counter and Histogram.
    registry = prometheus_client.CollectorRegistry()
    webhooks = prometheus_client.Counter(
        "webhooks",
        "Lifecycle webhooks answered, by event and outcome (ok or the error code)",
        ("event", "outcome"),
        namespace=N,
        registry=registry,
    )
    pushes = prometheus_client.Histogram(
        "push_duration_seconds",
        "Duration of one page's push to ShopiMind, by entity",
        ("entity",),
        namespace=N,
        registry=registry,
        buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    )
    leases = prometheus_client.Counter(
        "lease_acquisitions",
        "Leases acquired (installations, outboxes, singletons)",
        namespace=N,
        registry=registry,
    )
    ours = PrometheusMetrics(process=False)
    for seconds in (0.05, 0.3, 2.0, 75.0):
        ours.push(entity="orders", sent=1, rejected=0, seconds=seconds)
        pushes.labels(entity="orders").observe(seconds)
    ours.webhook(event="installed", outcome="ok")
    webhooks.labels(event="installed", outcome="ok").inc()
    ours.lease_acquired(False)
    leases.inc()
    families = tuple(
        f"{N}_{name}" for name in ("webhooks", "push_duration_seconds", "lease_acquisitions")
    )
    expected = _masked(prometheus_client.generate_latest(registry).decode(), families)
    got = _masked(ours.render(GaugeSnapshot()).decode(), families)
    assert len(expected) > 20
    assert got == expected
