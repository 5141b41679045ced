"""Scale: 10,000 installations, SYNC_INTERVAL_MINUTES=15, SYNC_WORKERS=8, 10 items each,
with 300,000 outbox rows in the store.

Real process, real clock: `python -m sidecar serve` on a database seeded with 10,000
active installations, each with the sync request an activation records (a full backfill,
written straight to the store rather than through 10,000 signed webhooks), and 300,000
outbox rows (delivered, dead, failed-with-a-retry-tomorrow) plus 5,000 dead-letter items.
The fake app (10 customers per installation) and the fake ShopiMind run in a process of
their own. From its start, `serve` must sweep every installation:

- sweep wall time and the largest lag (a run's start minus the moment it became due),
  against the interval;
- whether a worker ever idled while an installation waited (the overview's
  `sync_workers.in_use` and `sync_lag`, sampled) and the workers' busy share, from the
  run rows;
- latency of `/health`, `/admin/overview` and `/metrics` during the sweep and idle after
  it, and the store time of the backlog reads at 300,000 rows (measured on the same file
  once `serve` has stopped);
- the process's RSS.

    make bench BENCH=scale                                # full size (~3 minutes here)
    BENCH_SCALE_INSTALLATIONS=1000 make bench BENCH=scale # a quick run
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import trio

from benchmarks.bench_sync import peers
from sidecar.clock import format_timestamp, parse_timestamp
from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store import InstallationUpsert, Store, open_store
from sidecar.sync.requests import DurableSyncRequests

ROOT = Path(__file__).resolve().parents[1]
INSTALLATIONS = int(os.environ.get("BENCH_SCALE_INSTALLATIONS", "10000"))
OUTBOX_ROWS = int(os.environ.get("BENCH_SCALE_OUTBOX_ROWS", "300000"))
DEAD_LETTER_ROWS = 5_000
WORKERS = 8
INTERVAL_MINUTES = 15
ITEMS = 10
KEY_HEX = "5e" * 32
ADMIN_TOKEN = "bench-admin-token-" + "x" * 32
SAMPLE_SECONDS = 2.5  # two admin calls a sample: within the admin rate limit (1/s)
IDLE_ROUNDS = 5  # ten admin calls: the rate limit's burst, refilled by a 10 s pause
STARTUP_TIMEOUT_SECONDS = 60.0
SWEEP_TIMEOUT_SECONDS = INTERVAL_MINUTES * 60 * 2
DECLARATION = """\
slug = "bench-scale"

[meta]
name = "Bench scale"
version = "1.0.0"

[[sync]]
entity = "customers"
target = "customers"
"""


async def seed(database: Path, token: str) -> None:
    """Active installations, each with a token and an activation's sync request."""
    store = await open_store(database, cipher=AesGcmCipher(bytes.fromhex(KEY_HEX)))
    requests = DurableSyncRequests(store.state)

    async def one(installation_id: str) -> None:
        await store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )
        await store.state.write_many(installation_id, secrets={ACCESS_TOKEN: token})
        await store.state.set_json(
            installation_id, PROVISIONING_IDS, {"sourceIds": {}, "defIds": {}}
        )
        await requests.request(installation_id, full=True)

    try:
        for start in range(0, INSTALLATIONS, 200):  # 200 at once: group commits
            async with trio.open_nursery() as nursery:
                for n in range(start, min(start + 200, INSTALLATIONS)):
                    nursery.start_soon(one, f"inst-{n:05d}")
    finally:
        await store.aclose()


def seed_backlog(database: Path) -> None:
    """Outbox rows and dead-letter items, written in one transaction (the triggers that keep
    the tallies run as for any write)."""
    now = datetime.now(UTC)
    later = format_timestamp(now + timedelta(days=1))
    with sqlite3.connect(database, isolation_level=None) as connection:
        connection.execute("BEGIN")
        for n in range(OUTBOX_ROWS):
            iid = f"inst-{n % INSTALLATIONS:05d}"
            at = format_timestamp(now - timedelta(seconds=OUTBOX_ROWS - n))
            status = "failed" if n % 150 == 0 else "dead" if n % 100 == 1 else "delivered"
            connection.execute(
                "INSERT INTO inbound_events (id, installation_id, dedup_key, action, status, "
                "received_at) VALUES (?, ?, ?, 'sale', 'done', ?)",
                (n + 1, iid, f"k{n}", at),
            )
            connection.execute(
                "INSERT INTO inbound_outbox (event_id, installation_id, action, target, route, "
                "payload_json, idempotency_key, status, attempts, next_attempt_at, created_at, "
                "updated_at, delivered_at) VALUES (?, ?, 'sale', 'trigger_event:sale', "
                "'event:sale', '{\"amount\": 1}', ?, ?, 1, ?, ?, ?, ?)",
                (
                    n + 1,
                    iid,
                    f"inbound-{n}",
                    status,
                    later if status == "failed" else at,
                    at,
                    at,
                    at if status == "delivered" else None,
                ),
            )
        for n in range(DEAD_LETTER_ROWS):
            connection.execute(
                "INSERT INTO rejected_items (installation_id, entity, target, item_json, reason, "
                "created_at) VALUES (?, 'customers', 'customers', '{}', 'invalid email', ?)",
                (f"inst-{n % INSTALLATIONS:05d}", format_timestamp(now)),
            )
        connection.execute("COMMIT")


def sidecar_env(folder: Path, peer: dict[str, str]) -> dict[str, str]:
    declaration = folder / "integration.toml"
    declaration.write_text(DECLARATION, encoding="utf-8")
    return {
        "PATH": os.environ.get("PATH", ""),
        "INTEGRATION_FILE": str(declaration),
        "DATABASE_PATH": str(folder / "scale.sqlite"),
        "WEBHOOK_SECRET": "whsec_bench",
        "CREDENTIALS_KEY": KEY_HEX,
        "APP_BASE_URL": peer["app"],
        "APP_SECRET": peer["secret"],
        "SHOPIMIND_CORE_API_BASE": peer["api"],
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "PORT": "0",
        "SYNC_INTERVAL_MINUTES": str(INTERVAL_MINUTES),
        "SYNC_WORKERS": str(WORKERS),
        "LOG_LEVEL": "info",
    }


async def wait_for_line(path: Path, needle: str) -> str:
    """The first line of a growing log file that holds `needle` (another process writes it:
    there is nothing to wait on but the file)."""
    log = trio.Path(path)
    with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
        while True:
            if await log.exists():
                for line in (await log.read_text(encoding="utf-8")).splitlines():
                    if needle in line:
                        return line
            await trio.sleep(0.05)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await call()
    return (time.perf_counter() - started) * 1000, response


class Samples:
    """What the sampler saw during the sweep."""

    def __init__(self) -> None:
        self.health: list[float] = []
        self.overview: list[float] = []
        self.metrics: list[float] = []
        self.lags: list[float] = []
        self.idle_while_waiting = 0
        self.samples = 0
        self.rss: list[float] = []


async def sample_until_swept(client: httpx.AsyncClient, pid: int, samples: Samples) -> None:
    """Sample every SAMPLE_SECONDS until nothing is due and no worker is busy."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    with trio.fail_after(SWEEP_TIMEOUT_SECONDS):
        while True:
            ms, health = await timed(lambda: client.get("/health"))
            samples.health.append(ms)
            health.raise_for_status()
            ms, answer = await timed(lambda: client.get("/admin/overview", headers=headers))
            samples.overview.append(ms)
            overview = answer.json()
            ms, scrape = await timed(lambda: client.get("/metrics", headers=headers))
            samples.metrics.append(ms)
            scrape.raise_for_status()
            samples.rss.append(rss_mib(pid))
            lag, workers = overview["sync_lag"], overview["sync_workers"]
            samples.samples += 1
            samples.lags.append(float(lag["oldest_lag_seconds"]))
            if lag["overdue"] > 0 and workers["in_use"] < workers["total"]:
                samples.idle_while_waiting += 1
            if lag["overdue"] == 0 and workers["in_use"] == 0:
                ran = sum(overview["last_runs"].values())
                if ran >= INSTALLATIONS:
                    return
            await trio.sleep(SAMPLE_SECONDS)


async def idle_latencies(client: httpx.AsyncClient) -> dict[str, list[float]]:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    measured: dict[str, list[float]] = {"health": [], "overview": [], "metrics": []}
    await trio.sleep(10)
    for _ in range(IDLE_ROUNDS):
        for name, path in (
            ("health", "/health"),
            ("overview", "/admin/overview"),
            ("metrics", "/metrics"),
        ):
            ms, response = await timed(functools.partial(client.get, path, headers=headers))
            response.raise_for_status()
            measured[name].append(ms)
    return measured


def run_figures(database: Path) -> dict[str, float]:
    """From the run rows: sweep span, largest lag, workers' busy share, runs per install."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT installation_id, started_at, finished_at, status FROM sync_runs"
        ).fetchall()
    starts = [parse_timestamp(started) for _, started, _, _ in rows]
    ends = [parse_timestamp(finished) for _, _, finished, _ in rows]
    busy = sum((end - start).total_seconds() for start, end in zip(starts, ends, strict=True))
    span = (max(ends) - min(starts)).total_seconds()
    return {
        "runs": len(rows),
        "installations": len({iid for iid, _, _, _ in rows}),
        "ok": sum(1 for *_, status in rows if status == "ok"),
        "first_start": min(starts).timestamp(),
        "last_start": max(starts).timestamp(),
        "span": span,
        "busy_share": busy / (WORKERS * span),
    }


async def store_times(database: Path) -> dict[str, float]:
    """Median store time (ms) of each read the overview and /metrics make, 20 times."""
    store = await open_store(database, cipher=AesGcmCipher(bytes.fromhex(KEY_HEX)))
    reads: dict[str, Callable[[Store], Awaitable[object]]] = {
        "outbox.counts()": lambda s: s.outbox.counts(),
        "outbox.oldest_pending_at()": lambda s: s.outbox.oldest_pending_at(),
        "outbox.pending_count()": lambda s: s.outbox.pending_count(),
        "dead_letter.count()": lambda s: s.dead_letter.count(),
        "cursors.count_in_error()": lambda s: s.cursors.count_in_error(),
        "installations.count() ×3": lambda s: _counts(s),
        "runs.latest_statuses() (overview)": lambda s: s.runs.latest_statuses(),
        "runs.latest(1,000 ids) (/health)": lambda s: s.runs.latest(
            [f"inst-{n:05d}" for n in range(min(1000, INSTALLATIONS))]
        ),
        "runs.latest() of all (no longer read by either)": lambda s: s.runs.latest(),
    }
    times: dict[str, float] = {}
    try:
        for name, read in reads.items():
            measured = []
            for _ in range(20):
                started = time.perf_counter()
                await read(store)
                measured.append((time.perf_counter() - started) * 1000)
            times[name] = statistics.median(measured)
    finally:
        await store.aclose()
    return times


async def _counts(store: Store) -> None:
    for status in ("active", "inactive", "uninstalled"):
        await store.installations.count(status=status)


async def bench(peer: dict[str, str]) -> str:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = sidecar_env(folder, peer)
        database = Path(env["DATABASE_PATH"])
        seeding = time.perf_counter()
        await seed(database, peer["token"])
        seed_backlog(database)
        seed_seconds = time.perf_counter() - seeding
        log_path = folder / "serve.log"
        with log_path.open("wb") as log:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "sidecar", "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=ROOT,
            )
        try:
            ready = json.loads(await wait_for_line(log_path, '"sidecar ready"'))
            samples = Samples()
            async with httpx.AsyncClient(base_url=ready["listen"][0], timeout=60) as client:
                await sample_until_swept(client, process.pid, samples)
                idle = await idle_latencies(client)
                idle_rss = rss_mib(process.pid)
        finally:
            process.terminate()
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                await process.wait()
        figures = run_figures(database)
        ready_at = parse_timestamp(ready["ts"]).timestamp()
        stored = await store_times(database)
    return report(samples, idle, idle_rss, figures, ready_at, stored, seed_seconds, began)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(values):.1f} / {p95:.1f} / {max(values):.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(
    samples: Samples,
    idle: dict[str, list[float]],
    idle_rss: float,
    figures: dict[str, float],
    ready_at: float,
    stored: dict[str, float],
    seed_seconds: float,
    began: float,
) -> str:
    interval = INTERVAL_MINUTES * 60
    all_synced = figures["installations"] >= INSTALLATIONS
    max_lag = figures["last_start"] - ready_at
    backlog_ms = sum(
        stored[name]
        for name in (
            "outbox.counts()",
            "outbox.oldest_pending_at()",
            "outbox.pending_count()",
            "dead_letter.count()",
        )
    )
    overview_idle = statistics.median(idle["overview"])
    health_idle = statistics.median(idle["health"])
    lines = [
        "## Scale: 10,000 installations",
        "",
        f"{INSTALLATIONS:,} active installations, each with an activation's sync request (a "
        f"full backfill of {ITEMS} customers), `SYNC_INTERVAL_MINUTES={INTERVAL_MINUTES}`, "
        f"`SYNC_WORKERS={WORKERS}`; {OUTBOX_ROWS:,} outbox rows and {DEAD_LETTER_ROWS:,} "
        "dead-letter items in the store (seeded straight into SQLite, in "
        f"{seed_seconds:.0f} s). The real `python -m sidecar serve`, **real clock**; the fake "
        "app and fake ShopiMind in another process on loopback (no added latency). The "
        f"sampler asks `/health`, `/admin/overview` and `/metrics` every {SAMPLE_SECONDS} s.",
        "",
        "| measurement | value |",
        "|---|---:|",
        f"| installations synced / runs / runs `ok` | {figures['installations']:,.0f} / "
        f"{figures['runs']:,.0f} / {figures['ok']:,.0f} |",
        f"| sweep: first run start → last run end | {figures['span']:.1f} s |",
        f"| largest lag (last first-run start − ready) | {max_lag:.1f} s of {interval} s |",
        f"| largest `sync_lag.oldest_lag_seconds` sampled | {max(samples.lags):.1f} s |",
        f"| workers' busy share over the sweep (Σ run time ÷ 8 × span) | "
        f"{figures['busy_share']:.0%} |",
        f"| samples with a worker idle while an installation waited | "
        f"{samples.idle_while_waiting} of {samples.samples} |",
        f"| `/health` ms during the sweep: median / p95 / max | {_ms(samples.health)} |",
        f"| `/admin/overview` ms during the sweep | {_ms(samples.overview)} |",
        f"| `/metrics` ms during the sweep | {_ms(samples.metrics)} |",
        f"| `/health` ms idle after it ({IDLE_ROUNDS} calls) | {_ms(idle['health'])} |",
        f"| `/admin/overview` ms idle | {_ms(idle['overview'])} |",
        f"| `/metrics` ms idle | {_ms(idle['metrics'])} |",
        f"| RSS during the sweep, max / idle after it | {max(samples.rss):.1f} / "
        f"{idle_rss:.1f} MiB |",
        "",
        f"Store time of each read at {OUTBOX_ROWS:,} outbox rows (median of 20, same file, "
        "`serve` stopped):",
        "",
        "| read | ms |",
        "|---|---:|",
        *(f"| `{name}` | {ms:.2f} |" for name, ms in stored.items()),
        "",
        f"- every installation synced within the interval: max lag {max_lag:.0f} s ≤ "
        f"{interval} s: {verdict(max_lag <= interval and all_synced)}",
        f"- backlog figures (outbox counts, oldest pending, pending, dead-letter): "
        f"**{backlog_ms:.2f} ms** of store time (target < 10 ms: {verdict(backlog_ms < 10)})",
        f"- `/health` {health_idle:.1f} ms and admin overview {overview_idle:.1f} ms idle "
        f"(target < 100 ms: {verdict(max(health_idle, overview_idle) < 100)})",
        f"- a worker idled while an installation waited in {samples.idle_while_waiting} of "
        f"{samples.samples} samples (target 0: "
        f"{verdict(samples.idle_while_waiting == 0)}; a worker keeps its place from one "
        "queued job to the next, so one counted free has nothing to do)",
        "",
        f"_Run took {time.perf_counter() - began:.0f} s._",
    ]
    return "\n".join(lines)


def main() -> None:
    with peers(ITEMS) as peer:
        print(trio.run(bench, peer))


if __name__ == "__main__":
    main()
