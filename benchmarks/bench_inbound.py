"""Inbound: signed `queued` calls against a hello-world POST, on the same stack, in one run.

1. `python -m sidecar serve` (the real process, JSON logs at info level to a file) on a
   database of 1,000 active installations, the example declaration's `sale` action
   (`trigger_event`, queued): every 202 is an outbox row committed in WAL with
   synchronous=NORMAL. ShopiMind answers 503 meanwhile, so the events stay queued and the
   deliverer only backs off: what is measured is the intake.
2. `python -m benchmarks._hello`: a quart-trio app answering a JSON POST, served by the
   sidecar's own `hypercorn_config` — the ceiling of the stack.

Both are loaded by `benchmarks._load` in a process of its own (raw HTTP/1.1 keep-alive,
concurrency 64), alternating three times so drift hits both; the ratio is of the medians.
Target: inbound ≥ 0.5× hello.
3. Then ShopiMind comes back and the outbox drains: deliveries/s to the fake API (served
   in this process, so the sidecar's CPU is its own).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from sidecar.clock import parse_timestamp
from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert, open_store
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind, Fault

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64
INSTALLATIONS = 1000
WARMUP_SECONDS = 1.0
SECONDS = 5.0
ROUNDS = 3
KEY_HEX = "5e" * 32
TOKEN = "int_bench_inbound"
STARTUP_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 300.0


async def seed(database: Path) -> list[tuple[str, str]]:
    """Active installations with a token and an inbound secret each."""
    store = await open_store(database, cipher=AesGcmCipher(bytes.fromhex(KEY_HEX)))
    pairs: list[tuple[str, str]] = []
    try:
        for n in range(INSTALLATIONS):
            installation_id = f"bench_{n:04d}"
            secret = "insec_" + f"{n:048x}"
            await store.installations.upsert(
                InstallationUpsert(installation_id=installation_id, status="active")
            )
            await store.state.write_many(
                installation_id, secrets={ACCESS_TOKEN: TOKEN, INBOUND_SECRET: secret}
            )
            pairs.append((installation_id, secret))
    finally:
        await store.aclose()
    return pairs


async def wait_for_line(path: Path, needle: str) -> str:
    """The first line of a growing log file that holds `needle` (the server's readiness).
    The file is written by another process: there is nothing to wait on but the file."""
    log = trio.Path(path)
    with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
        while True:
            if await log.exists():
                for line in (await log.read_text(encoding="utf-8")).splitlines():
                    if needle in line:
                        return line
            await trio.sleep(0.05)


async def load(url: str, path: str, signed: list[tuple[str, str]] | None) -> dict[str, object]:
    """Run the load generator in its own process against `url` + `path`."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    job = {
        "host": host,
        "port": int(port),
        "path": path,
        "concurrency": CONCURRENCY,
        "warmup_seconds": WARMUP_SECONDS,
        "seconds": SECONDS,
        "signed": signed,
    }
    result = await trio.run_process(
        [sys.executable, "-m", "benchmarks._load"],
        stdin=json.dumps(job).encode(),
        capture_stdout=True,
        cwd=ROOT,
    )
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


async def hello_round() -> dict[str, object]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "benchmarks._hello"], stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
            url = (await process.stdout.receive_some(1000)).decode().strip()
        return await load(url, "/hello", None)
    finally:
        process.terminate()
        await process.wait()


def sidecar_env(database: Path, api_url: str) -> dict[str, str]:
    """The sidecar's environment: ShopiMind is the fake; the app bridge is never called."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "INTEGRATION_FILE": str(ROOT / "examples" / "integration.toml"),
        "DATABASE_PATH": str(database),
        "WEBHOOK_SECRET": "whsec_bench",
        "CREDENTIALS_KEY": KEY_HEX,
        "APP_BASE_URL": "http://127.0.0.1:9/shopimind",
        "APP_SECRET": "appsec_bench",
        "SHOPIMIND_CORE_API_BASE": api_url,
        "PORT": "0",
        "SYNC_INTERVAL_MINUTES": "0",
        "LOG_LEVEL": "info",
    }


async def start_sidecar(folder: Path, env: dict[str, str], name: str) -> tuple[trio.Process, str]:
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "sidecar", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
        )
    ready = json.loads(await wait_for_line(log_path, '"sidecar ready"'))
    return process, str(ready["listen"][0])


async def stop(process: trio.Process) -> None:
    process.terminate()
    with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
        await process.wait()


def outbox_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT status, COUNT(*) FROM inbound_outbox GROUP BY status")
        return {str(status): int(count) for status, count in rows}


def delivered_span_seconds(database: Path) -> float:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        first, last = connection.execute(
            "SELECT MIN(delivered_at), MAX(delivered_at) FROM inbound_outbox"
        ).fetchone()
    return (parse_timestamp(last) - parse_timestamp(first)).total_seconds()


async def bench() -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    database = folder / "sidecar.sqlite"
    pairs = await seed(database)
    fake = FakeShopimind(tokens={TOKEN}, keep_items=0, request_log_limit=1000)
    fake.add_event("acme_sale")
    down = Fault(kind="status", remaining=10**9, status=503)
    fake.inject(down)
    hello: list[dict[str, object]] = []
    inbound: list[dict[str, object]] = []
    async with running(fake) as api_url:
        env = sidecar_env(database, api_url)
        for round_ in range(ROUNDS):
            hello.append(await hello_round())
            process, url = await start_sidecar(folder, env, f"intake-{round_}")
            try:
                inbound.append(await load(url, "/inbound/sale", pairs))
            finally:
                await stop(process)
        queued = outbox_counts(database)
        # ShopiMind is back: drain the outbox.
        down.remaining = 0
        started = time.perf_counter()
        process, _ = await start_sidecar(folder, env, "drain")
        try:
            with trio.fail_after(DRAIN_TIMEOUT_SECONDS):
                # Another process's progress: read its database now and then.
                total = sum(queued.values())
                while True:
                    counts = await trio.to_thread.run_sync(outbox_counts, database)
                    if counts.get("delivered", 0) + counts.get("dead", 0) >= total:
                        break
                    await trio.sleep(0.2)
            drain_wall = time.perf_counter() - started
        finally:
            await stop(process)
    span = await trio.to_thread.run_sync(delivered_span_seconds, database)
    return report(hello, inbound, queued, counts, drain_wall, span)


def _row(name: str, result: dict[str, object]) -> str:
    statuses = result["statuses"]
    assert isinstance(statuses, dict)
    failed = sum(v for k, v in statuses.items() if not str(k).startswith("2"))
    failed += int(str(result["errors"]))
    rps, p50, p99 = (float(str(result[key])) for key in ("rps", "p50_ms", "p99_ms"))
    return f"| {name} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {json.dumps(statuses)} | {failed} |"


def report(
    hello: list[dict[str, object]],
    inbound: list[dict[str, object]],
    queued: dict[str, int],
    counts: dict[str, int],
    drain_wall: float,
    span: float,
) -> str:
    hello_rps = statistics.median(float(str(r["rps"])) for r in hello)
    inbound_rps = statistics.median(float(str(r["rps"])) for r in inbound)
    ratio = inbound_rps / hello_rps
    total = sum(queued.values())
    lines = [
        "## Inbound: signed queued calls vs hello world",
        "",
        f"Concurrency {CONCURRENCY} on loopback, {SECONDS:g} s per run after {WARMUP_SECONDS:g} s "
        f"of warm-up; runs alternate. Inbound: `POST /inbound/sale` (trigger_event, queued), "
        f"signed for {INSTALLATIONS:,} installations in turn, each call a new event — an outbox "
        "row committed (WAL, synchronous=NORMAL) before its 202; the real `python -m sidecar "
        "serve`, logging JSON at info; ShopiMind answering 503 meanwhile (the deliverer backs "
        "off). Hello world: quart-trio JSON POST on the same `hypercorn_config`. Load "
        "generator: raw HTTP/1.1 keep-alive in its own process.",
        "",
        "| run | requests/s | p50 ms | p99 ms | statuses | non-2xx + errors |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for n, (h, i) in enumerate(zip(hello, inbound, strict=True), start=1):
        lines.append(_row(f"hello world #{n}", h))
        lines.append(_row(f"inbound queued #{n}", i))
    verdict = "meets" if ratio >= 0.5 else "misses"
    lines += [
        "",
        f"**Inbound / hello world: {ratio:.2f}×** ({inbound_rps:,.0f} vs {hello_rps:,.0f} "
        f"requests/s, medians of {ROUNDS} runs) — {verdict} the ≥ 0.5× target.",
        "",
        "Where an inbound call's time goes beyond hello world's (py-spy, this machine): the "
        "sidecar process is CPU-bound on one core. Per call, about 0.14 ms is the inbound "
        "rules (HMAC, JSON, checks), 0.09 ms the access log line, 0.12 ms SQLite work in the "
        "store's thread (one read: the installation, its inbound secret and token; one "
        "write: the claim and the outbox row), and the rest the two trips through the "
        "store's group commit. Callers whose operation another caller carried used to take "
        "turns on the store lock one scheduler pass after another (0.47× here); they now "
        "wake together when their batch is committed.",
        "",
        f"Drain: {total:,} queued events delivered to the fake ShopiMind (in this benchmark's "
        f"process) in {drain_wall:.1f} s from the sidecar's start "
        f"({counts.get('delivered', 0) / span:,.0f} deliveries/s between the first and the "
        f"last), {counts.get('dead', 0)} dead, 8 installations at once, each in order.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(trio.run(bench))


if __name__ == "__main__":
    main()
