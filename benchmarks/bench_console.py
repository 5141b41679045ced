"""Console: the time of each admin console page on a big store, against a static file.

The real `python -m sidecar serve` (admin listener on its own port) on a database of
10,000 installations, 1,000,000 sync runs and 300,000 outbox rows (with their inbound
events), 20,000 dead-lettered items, 50,000 logged webhooks and 20,000 cursors. A client
signs in and asks for every page in turn, one request at a time over keep-alive, many
times; what is reported is each page's median and p95, and its median against the
console's stylesheet (a static file through the same guard: the ceiling of the stack).
Target: every page under 200 ms.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import trio

from sidecar.security.cipher import AesGcmCipher
from sidecar.store import open_store
from sidecar.web.console.access import PAGE_RATE_PER_SECOND

ROOT = Path(__file__).resolve().parents[1]
INSTALLATIONS = 10_000
RUNS = 1_000_000
OUTBOX = 300_000
DEAD_LETTER = 20_000
WEBHOOKS = 50_000
AUDIT = 10_000
REQUESTS_PER_PAGE = 12
PACE_SECONDS = 1 / PAGE_RATE_PER_SECOND + 0.01
"""Between two requests (not timed): a signed-in browser's limit is 4 requests/s."""
TARGET_MS = 200.0
KEY_HEX = "5e" * 32
TOKEN = "adm_bench_" + "c0ffee42" * 4
STARTUP_TIMEOUT_SECONDS = 120.0
_AT = "2026-11-01T10:00:00.000Z"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
PAGES = (
    ("console.css (reference)", "/static/console.css"),
    ("overview", ""),
    ("installations", "/installations"),
    ("installations, search", "/installations?q=shop+5123"),
    ("installations, status filter", "/installations?status=inactive"),
    ("installations, page 300", "/installations?offset=7475"),
    ("one installation", "/installations/bench_05123"),
    ("cursor reset confirmation", "/installations/bench_05123/cursor-reset?entity=customers"),
    ("runs", "/runs"),
    ("runs, failed", "/runs?status=failed"),
    ("runs, page 100", "/runs?offset=2475"),
    ("one run", "/runs/500000"),
    ("outbox", "/outbox"),
    ("outbox, dead", "/outbox?status=dead"),
    ("outbox, one installation", "/outbox?installation=bench_05123"),
    ("one outbox event", "/outbox/150000"),
    ("inbound", "/inbound"),
    ("inbound, one installation", "/inbound?installation=bench_05123"),
    ("webhooks", "/webhooks"),
    ("webhooks, one installation", "/webhooks?installation=bench_05123"),
    ("dead-letter", "/dead-letter"),
    ("dead-letter, one installation", "/dead-letter?installation=bench_05123"),
    ("dead-letter replay confirmation", "/dead-letter/confirm?installation=bench_05123"),
    ("audit log", "/audit"),
)


def _iid(n: int) -> str:
    return f"bench_{n:05d}"


def _installations() -> Iterator[tuple[object, ...]]:
    statuses = ("active", "active", "active", "inactive", "uninstalled")
    for n in range(INSTALLATIONS):
        yield (_iid(n), f"shop{n}.example", f"Shop {n}", statuses[n % 5], _AT, _AT)


def _runs() -> Iterator[tuple[object, ...]]:
    statuses = ("ok",) * 17 + ("partial", "failed", "cancelled")
    summary = json.dumps({"items": 120, "errors": []})
    for n in range(RUNS):
        kind = "full" if n % 50 == 0 else "incremental"
        yield (_iid(n % INSTALLATIONS), kind, statuses[n % 20], summary, _AT, _AT)


def _events() -> Iterator[tuple[object, ...]]:
    for n in range(1, OUTBOX + 1):
        yield (n, _iid(n % INSTALLATIONS), f"key-{n}", "sale", "done", _AT, _AT)


def _outbox() -> Iterator[tuple[object, ...]]:
    payload = json.dumps({"email": "jane.doe@shop.example", "amount": 42, "lines": [1, 2, 3]})
    for n in range(1, OUTBOX + 1):
        status = "dead" if n % 100 == 0 else "delivered"
        yield (
            n,
            _iid(n % INSTALLATIONS),
            "sale",
            "event:acme_sale",
            "event:acme_sale",
            payload,
            f"idem-{n}",
            status,
            1,
            None if status == "delivered" else "422 refused",
            _AT,
            _AT,
            _AT,
            _AT if status == "delivered" else None,
        )


def seed(database: Path) -> None:
    """Fill the store's tables straight through SQLite, in one transaction each."""
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executemany(
            "INSERT INTO installations (installation_id, shop_domain, shop_name, status, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            _installations(),
        )
        connection.executemany(
            "INSERT INTO sync_cursors (installation_id, entity, last_synced_at, last_status, "
            "last_error, items, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (_iid(n), entity, _AT, "error" if n % 97 == 0 else "ok", None, 1000, _AT)
                for n in range(INSTALLATIONS)
                for entity in ("customers", "products")
            ),
        )
        connection.executemany(
            "INSERT INTO sync_runs (installation_id, kind, status, summary_json, started_at, "
            "finished_at) VALUES (?, ?, ?, ?, ?, ?)",
            _runs(),
        )
        connection.executemany(
            "INSERT INTO inbound_events (id, installation_id, dedup_key, action, status, "
            "received_at, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            _events(),
        )
        connection.executemany(
            "INSERT INTO inbound_outbox (event_id, installation_id, action, target, route, "
            "payload_json, idempotency_key, status, attempts, last_error, next_attempt_at, "
            "created_at, updated_at, delivered_at) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _outbox(),
        )
        item = json.dumps({"id": 7, "email": "not-an-email", "first_name": "Jane"})
        connection.executemany(
            "INSERT INTO rejected_items (installation_id, entity, target, item_json, reason, "
            "created_at) VALUES (?, 'customers', 'customers', ?, 'invalid email', ?)",
            ((_iid(n % INSTALLATIONS), item, _AT) for n in range(DEAD_LETTER)),
        )
        payload = json.dumps({"event": "integration.config_updated", "shop_name": "Shop"})
        connection.executemany(
            "INSERT INTO webhook_log (received_at, event, installation_id, signature_ok, "
            "payload_json) VALUES (?, 'integration.config_updated', ?, 1, ?)",
            ((_AT, _iid(n % INSTALLATIONS), payload) for n in range(WEBHOOKS)),
        )
        connection.executemany(
            "INSERT INTO audit_log (at, actor, action, installation_id, detail_json, client_ip) "
            "VALUES (?, 'admin-api', 'sync', ?, '{\"outcome\": \"ok\"}', '127.0.0.1')",
            ((_AT, _iid(n % INSTALLATIONS)) for n in range(AUDIT)),
        )
        connection.execute("ANALYZE")


async def migrated(database: Path) -> None:
    store = await open_store(database, cipher=AesGcmCipher(bytes.fromhex(KEY_HEX)))
    await store.aclose()


async def wait_for_line(path: Path, needle: str) -> str:
    """The first line of the server's log file that holds `needle` (written by another
    process: there is nothing to wait on but the file)."""
    log = trio.Path(path)
    with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
        while True:
            if await log.exists():
                for line in (await log.read_text(encoding="utf-8")).splitlines():
                    if needle in line:
                        return line
            await trio.sleep(0.05)


def sidecar_env(database: Path) -> dict[str, str]:
    """Peers that are never called: no sync runs (no scheduler), nothing to deliver."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "INTEGRATION_FILE": str(ROOT / "examples" / "integration.toml"),
        "DATABASE_PATH": str(database),
        "WEBHOOK_SECRET": "whsec_bench",
        "CREDENTIALS_KEY": KEY_HEX,
        "APP_BASE_URL": "http://127.0.0.1:9/shopimind",
        "APP_SECRET": "appsec_bench",
        "SHOPIMIND_CORE_API_BASE": "http://127.0.0.1:9",
        "PORT": "0",
        "ADMIN_PORT": "0",
        "ADMIN_TOKEN": TOKEN,
        "SYNC_INTERVAL_MINUTES": "0",
        "RETENTION_DAYS": "0",
        "AUDIT_RETENTION_DAYS": "0",
        "LOG_LEVEL": "info",
    }


async def measure(console: str) -> dict[str, list[float]]:
    """Every page, REQUESTS_PER_PAGE times each, pages interleaved so drift hits all."""
    times: dict[str, list[float]] = {name: [] for name, _ in PAGES}
    async with httpx.AsyncClient(timeout=60) as client:
        signed = await client.post(
            console + "/sign-in",
            data={"token": TOKEN},
            headers={"sec-fetch-site": "same-origin"},
        )
        assert signed.status_code == 303, signed.text
        for name, path in PAGES:  # warm-up, and every page answers
            await trio.sleep(PACE_SECONDS)
            response = await client.get(console + path)
            assert response.status_code == 200, (name, response.status_code, response.text[-300:])
        for _ in range(REQUESTS_PER_PAGE):
            for name, path in PAGES:
                await trio.sleep(PACE_SECONDS)
                started = time.perf_counter()
                response = await client.get(console + path)
                times[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, name
    return times


def report(times: dict[str, list[float]], seed_seconds: float) -> str:
    reference = statistics.median(times[PAGES[0][0]])
    lines = [
        "## Console: page times on a big store",
        "",
        f"The real `python -m sidecar serve`, its admin listener on loopback; the store holds "
        f"{INSTALLATIONS:,} installations, {RUNS:,} sync runs, {OUTBOX:,} outbox rows (and "
        f"their inbound events), {DEAD_LETTER:,} dead-lettered items, {WEBHOOKS:,} logged "
        f"webhooks, {2 * INSTALLATIONS:,} cursors (seeded in {seed_seconds:.0f} s). One "
        f"signed-in client, one request at a time over keep-alive (paced to the console's "
        f"limit, {PAGE_RATE_PER_SECOND:g}/s), {REQUESTS_PER_PAGE} requests per page, pages "
        "interleaved. The reference is the console's stylesheet, a "
        "static file served through the same limit and headers. Target: every page under "
        "200 ms.",
        "",
        "| page | median ms | p95 ms | × stylesheet |",
        "|---|---:|---:|---:|",
    ]
    worst = 0.0
    for name, _ in PAGES:
        samples = sorted(times[name])
        median = statistics.median(samples)
        p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
        worst = max(worst, p95)
        lines.append(f"| {name} | {median:.1f} | {p95:.1f} | {median / reference:.1f}× |")
    verdict = "meets" if worst < TARGET_MS else "misses"
    lines += [
        "",
        f"**Slowest page: p95 {worst:.0f} ms** — {verdict} the < 200 ms target.",
        "",
        "What it took (first run of this benchmark, same machine: overview 360 ms median / "
        "524 ms p95, one installation 202 / 427 ms, one installation's outbox 54 ms): each "
        "installation's last run found by one index seek instead of a GROUP BY over every "
        "run, and counted by status in SQL for the overview; the outbox indexed by "
        "installation and by status (migration 4); listing filters written only when given, "
        "as `x IS NULL OR …` kept SQLite off the indexes.",
        "",
    ]
    return "\n".join(lines)


async def bench() -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
    database = folder / "sidecar.sqlite"
    await migrated(database)
    started = time.perf_counter()
    await trio.to_thread.run_sync(seed, database)
    seed_seconds = time.perf_counter() - started
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "sidecar", "serve"],
            env=sidecar_env(database),
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
        )
    try:
        ready = json.loads(await wait_for_line(log_path, '"sidecar ready"'))
        times = await measure(str(ready["admin"][0]) + "/admin/ui")
    finally:
        process.terminate()
        with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
            await process.wait()
    return report(times, seed_seconds)


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(trio.run(bench))


if __name__ == "__main__":
    main()
