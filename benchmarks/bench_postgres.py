"""PostgreSQL against SQLite, measured in one run on the same machine.

The PostgreSQL server is a throwaway cluster on loopback started here (as the tests start
theirs), with fsync on and `synchronous_commit = off`: the durability of SQLite's WAL with
`synchronous = NORMAL` (a crash may lose the last commits, never corrupts), so the two
stores are compared on equal terms.

1. Inbound: signed queued calls at concurrency 64 against the real `serve` process on each
   store (as `bench_inbound`: 1,000 active installations, ShopiMind down so events stay
   queued), alternating three times; ratio of the medians. Target: PostgreSQL ≥ 0.8×.
2. Backfill of 200,000 customers through the real engine on each store (as `bench_sync`),
   twice each, interleaved; ratio of the best runs. Target: PostgreSQL ≥ 0.9×.
3. `store copy` of an SQLite store with 1,000 installations and 300,000 outbox rows: seconds.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from benchmarks import bench_inbound
from benchmarks.bench_sync import _installation, _step, peers
from sidecar.bridge import AppBridge
from sidecar.clock import format_timestamp, system_clock
from sidecar.declaration.model import Declaration, Meta
from sidecar.outbound import new_http_client
from sidecar.security.cipher import AesGcmCipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert, Store, open_store
from sidecar.store.copy import copy_store
from sidecar.store.postgres.store import open_postgres_store
from sidecar.sync.engine import SyncDeps, SyncEngine
from sidecar.sync.leases import new_owner
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind, Fault
from tests.postgres import postgres_cluster

BIG = 200_000
COPY_INSTALLATIONS = 1_000
COPY_OUTBOX_ROWS = 300_000
ROUNDS = 3
CONCURRENCY = 64
ENTITY = "customers"
KEY = bytes.fromhex(bench_inbound.KEY_HEX)


async def _open(url: str | None, schema: str, folder: Path) -> Store:
    cipher = AesGcmCipher(KEY)
    if url is None:
        return await open_store(folder / "bench.sqlite", cipher=cipher)
    return await open_postgres_store(url, schema=schema, cipher=cipher)


async def _seed_inbound(store: Store) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for n in range(bench_inbound.INSTALLATIONS):
        installation_id = f"bench_{n:04d}"
        secret = "insec_" + f"{n:048x}"
        await store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )
        await store.state.write_many(
            installation_id, secrets={ACCESS_TOKEN: bench_inbound.TOKEN, INBOUND_SECRET: secret}
        )
        pairs.append((installation_id, secret))
    return pairs


async def inbound(url: str) -> dict[str, list[float]]:
    """Queued calls/s on each store, alternating."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-inbound-"))
    sqlite_store = await _open(None, "", folder)
    pairs = await _seed_inbound(sqlite_store)
    await sqlite_store.aclose()
    pg_store = await _open(url, "bench_inbound", folder)
    await _seed_inbound(pg_store)
    await pg_store.aclose()
    fake = FakeShopimind(tokens={bench_inbound.TOKEN}, keep_items=0, request_log_limit=1000)
    fake.add_event("acme_sale")
    fake.inject(Fault(kind="status", remaining=10**9, status=503))
    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    async with running(fake) as api_url:
        sqlite_env = bench_inbound.sidecar_env(folder / "bench.sqlite", api_url)
        pg_env = {k: v for k, v in sqlite_env.items() if k != "DATABASE_PATH"} | {
            "DATABASE_URL": url,
            "DATABASE_SCHEMA": "bench_inbound",
        }
        numbering = bench_inbound.Numbering()  # every dedup key new, in every round
        for round_ in range(ROUNDS):
            for name, env in (("sqlite", sqlite_env), ("postgres", pg_env)):
                process, base = await bench_inbound.start_sidecar(folder, env, f"{name}-{round_}")
                try:
                    result = await bench_inbound.load(
                        base,
                        "/inbound/sale",
                        pairs,
                        concurrency=CONCURRENCY,
                        first=numbering.take(100_000),
                    )
                finally:
                    await bench_inbound.stop(process)
                statuses = result["statuses"]
                if not isinstance(statuses, dict) or set(statuses) != {"202"}:
                    raise SystemExit(f"{name}: answers other than 202: {statuses}")
                rates[name].append(float(str(result["rps"])))
    return rates


async def _backfill(peer: dict[str, str], url: str | None, schema: str) -> dict[str, float]:
    """One installation's 200,000-customer backfill through the real engine."""
    with tempfile.TemporaryDirectory() as folder:
        store = await _open(url, schema, Path(folder))
        async with new_http_client() as app_http, new_http_client() as api_http:
            engine = SyncEngine(
                SyncDeps(
                    store=store,
                    declaration=Declaration(
                        slug="bench",
                        meta=Meta(name="B", version="1.0.0"),
                        sync=(_step("customers"),),
                    ),
                    bridge=AppBridge(base_url=peer["app"], secret=peer["secret"], http=app_http),
                    shopimind=ShopimindClient(base_url=peer["api"], http=api_http),
                    owner=new_owner(),
                )
            )
            await _installation(store, "inst-0", peer["token"])
            started = time.perf_counter()
            report = await engine.sync("inst-0", full=True)
            seconds = time.perf_counter() - started
            (cursor,) = await store.cursors.list("inst-0")
        await store.aclose()
    if report.status != "ok":
        raise SystemExit(f"the backfill ended {report.status}")
    return {"items": float(cursor.items), "seconds": seconds}


def _child_backfill(peer: dict[str, str], url: str | None, schema: str) -> dict[str, float]:
    arguments = ["--peers", json.dumps(peer), "--schema", schema]
    if url is not None:
        arguments += ["--url", url]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_postgres", "--child", *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def backfill(url: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    with peers(BIG) as peer:
        for round_ in range(2):
            for name, target in (("sqlite", None), ("postgres", url)):
                run = _child_backfill(peer, target, f"bench_backfill_{round_}")
                rates[name].append(run["items"] / run["seconds"])
    return rates


def _seed_copy(path: Path) -> None:
    trio.run(_seed_copy_installations, path)
    now = format_timestamp(system_clock())
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO inbound_events (id, installation_id, dedup_key, action, status, "
            "received_at, processed_at) VALUES (?, ?, ?, 'sale', 'done', ?, ?)",
            (
                (n, f"inst_{n % COPY_INSTALLATIONS:04d}", f"k{n}", now, now)
                for n in range(1, COPY_OUTBOX_ROWS + 1)
            ),
        )
        connection.executemany(
            "INSERT INTO inbound_outbox (event_id, installation_id, action, target, route, "
            "payload_json, idempotency_key, status, next_attempt_at, created_at, updated_at) "
            "VALUES (?, ?, 'sale', 'trigger_event:acme_sale', 'event:acme_sale', "
            "'{\"amount\": 1}', ?, 'delivered', ?, ?, ?)",
            (
                (n, f"inst_{n % COPY_INSTALLATIONS:04d}", f"inbound-k{n}", now, now, now)
                for n in range(1, COPY_OUTBOX_ROWS + 1)
            ),
        )


async def _seed_copy_installations(path: Path) -> None:
    store = await open_store(path, cipher=AesGcmCipher(KEY))
    try:
        for n in range(COPY_INSTALLATIONS):
            iid = f"inst_{n:04d}"
            await store.installations.upsert(
                InstallationUpsert(installation_id=iid, status="active")
            )
            await store.state.set_secret(iid, ACCESS_TOKEN, f"token-{n}")
    finally:
        await store.aclose()


def store_copy(url: str) -> tuple[float, int]:
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-copy-"))
    path = folder / "sidecar.sqlite"
    _seed_copy(path)
    started = time.perf_counter()
    report = trio.run(
        lambda: copy_store(
            path, url, schema="bench_copy", applied_at="bench", progress=lambda *_: None
        )
    )
    return time.perf_counter() - started, sum(report.counts.values())


def verdict(ok: bool) -> str:
    """How a target came out, for the report."""
    return "met" if ok else "**missed**"


def main() -> None:
    """Run every measurement and print the Markdown section."""
    with postgres_cluster(durable=True) as cluster:
        version = subprocess.run(
            [str(cluster.bindir / "postgres"), "--version"] if cluster.bindir else ["true"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        intake = trio.run(inbound, cluster.url)
        fill = backfill(cluster.url)
        copy_seconds, copied = store_copy(cluster.url)
    inbound_ratio = statistics.median(intake["postgres"]) / statistics.median(intake["sqlite"])
    fill_ratio = max(fill["postgres"]) / max(fill["sqlite"])
    lines = [
        "## PostgreSQL",
        "",
        f"{version or 'PostgreSQL'} on loopback, fsync on, `synchronous_commit = off` (the",
        "durability of SQLite's WAL with `synchronous = NORMAL`); same machine, same run.",
        "",
        "| measurement | SQLite | PostgreSQL | ratio |",
        "|---|---:|---:|---:|",
        f"| inbound queued calls/s, concurrency {CONCURRENCY} (median of {ROUNDS}) "
        f"| {statistics.median(intake['sqlite']):,.0f} "
        f"| {statistics.median(intake['postgres']):,.0f} | {inbound_ratio:.2f}× |",
        f"| {BIG:,}-item backfill, items/s (best of 2) | {max(fill['sqlite']):,.0f} "
        f"| {max(fill['postgres']):,.0f} | {fill_ratio:.2f}× |",
        "",
        f"- inbound: **{inbound_ratio:.2f}×** SQLite (target ≥ 0.8×: "
        f"{verdict(inbound_ratio >= 0.8)})",
        f"- backfill: **{fill_ratio:.2f}×** SQLite (target ≥ 0.9×: {verdict(fill_ratio >= 0.9)})",
        f"- `store copy` of {COPY_INSTALLATIONS:,} installations and {COPY_OUTBOX_ROWS:,} "
        f"outbox rows ({copied:,} rows in all): **{copy_seconds:.1f} s**",
    ]
    print("\n".join(lines))


def run_child(argv: list[str]) -> None:
    """`--child`: one backfill, printed as JSON on the last line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--peers", required=True)
    parser.add_argument("--url")
    parser.add_argument("--schema", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(trio.run(_backfill, json.loads(args.peers), args.url, args.schema)))


if __name__ == "__main__":
    if "--child" in sys.argv:
        run_child(sys.argv[1:])
    else:
        main()
