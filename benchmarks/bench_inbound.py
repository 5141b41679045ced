"""Inbound: signed `queued` calls against a hello-world POST, on the same stack, in one run.

1. `python -m sidecar serve` (the real process, JSON logs at info level to a file; the
   per-IP bucket lifted by `benchmarks._serve_unthrottled`, see there) on a
   database of 1,000 active installations, the example declaration's `sale` action
   (`trigger_event`, queued): every 202 is an outbox row committed in WAL with
   synchronous=NORMAL. ShopiMind answers 503 meanwhile, so the events stay queued and the
   deliverer only backs off: what is measured is the intake.
2. `python -m benchmarks._hello`: a quart-trio app answering a JSON POST, served by the
   sidecar's own `hypercorn_config` — the floor of the stack.

Two load generators, each in its own process: wrk (Debian's `wrk`, a program this project
did not write: `benchmarks/signed.lua` cycles through requests pre-signed by
`benchmarks._wrk`), and `benchmarks._load` (raw HTTP/1.1 keep-alive, signing as it goes).
Each at concurrency 16 and 64, the two servers alternating for three rounds (a fresh copy
of the seeded database each round) so drift hits both; ratios are of the medians.
Target: inbound ≥ 0.8× hello at both concurrencies (wrk).
3. Then ShopiMind comes back and the last round's outbox drains: deliveries/s to the fake
   API (served in this process, so the sidecar's CPU is its own).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from benchmarks._wrk import WrkResult, hello_requests, run_wrk, signed_requests, wrk_version
from sidecar.clock import parse_timestamp
from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert, open_store
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind, Fault

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCIES = (16, 64)
INSTALLATIONS = 1000
WARMUP_SECONDS = 1.0
SECONDS = 5.0
ROUNDS = 3
TARGET = 0.8
# Requests pre-signed for one wrk run: more than the fastest run sends, so none repeats
# (a repeat would be a cheaper replay); the run reports it if one did.
WRK_REQUESTS = 40_000
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


async def load(
    url: str, path: str, signed: list[tuple[str, str]] | None, *, concurrency: int, first: int
) -> dict[str, object]:
    """Run the Python load generator in its own process against `url` + `path`."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    job = {
        "host": host,
        "port": int(port),
        "path": path,
        "concurrency": concurrency,
        "warmup_seconds": WARMUP_SECONDS,
        "seconds": SECONDS,
        "signed": signed,
        "first": first,
    }
    result = await trio.run_process(
        [sys.executable, "-m", "benchmarks._load"],
        stdin=json.dumps(job).encode(),
        capture_stdout=True,
        cwd=ROOT,
    )
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


class Numbering:
    """Request numbers never used twice in a run (each body, so each dedup key, is new)."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> int:
        first, self.next = self.next, self.next + count
        return first


async def wrk_run(
    url: str, folder: Path, pairs: list[tuple[str, str]] | None, concurrency: int, n: Numbering
) -> WrkResult:
    """A wrk warm-up of WARMUP_SECONDS, then the measured run of SECONDS."""
    results = []
    for seconds in (WARMUP_SECONDS, SECONDS):
        requests = folder / "requests.tsv"
        if pairs is None:
            hello_requests(requests)
        else:
            first = n.take(WRK_REQUESTS)
            signed_requests(
                requests, pairs, count=WRK_REQUESTS, first=first, action_path="/inbound/sale"
            )
        results.append(
            await trio.to_thread.run_sync(
                functools.partial(run_wrk, url, requests, connections=concurrency, seconds=seconds)
            )
        )
    return results[-1]


@dataclass
class Runs:
    """Every measured run of one server: by generator and concurrency, one per round."""

    wrk: dict[int, list[WrkResult]] = field(default_factory=dict)
    python: dict[int, list[dict[str, object]]] = field(default_factory=dict)


async def measure(
    url: str,
    folder: Path,
    path: str,
    pairs: list[tuple[str, str]] | None,
    runs: Runs,
    n: Numbering,
) -> None:
    """One round on a running server: each concurrency, wrk then the Python generator."""
    for concurrency in CONCURRENCIES:
        runs.wrk.setdefault(concurrency, []).append(
            await wrk_run(url, folder, pairs, concurrency, n)
        )
        runs.python.setdefault(concurrency, []).append(
            await load(url, path, pairs, concurrency=concurrency, first=n.take(100_000))
        )


async def hello_round(folder: Path, runs: Runs, n: Numbering) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "benchmarks._hello"], stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
            url = (await process.stdout.receive_some(1000)).decode().strip()
        await measure(url, folder, "/hello", None, runs, n)
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
            [sys.executable, "-m", "benchmarks._serve_unthrottled"],
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
    if wrk_version() is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    seeded = folder / "seeded.sqlite"
    pairs = await seed(seeded)
    fake = FakeShopimind(tokens={TOKEN}, keep_items=0, request_log_limit=1000)
    fake.add_event("acme_sale")
    down = Fault(kind="status", remaining=10**9, status=503)
    fake.inject(down)
    hello, inbound = Runs(), Runs()
    n = Numbering()
    database = folder / "sidecar.sqlite"
    async with running(fake) as api_url:
        env = sidecar_env(database, api_url)
        for round_ in range(ROUNDS):
            await hello_round(folder, hello, n)
            shutil.copyfile(seeded, database)
            for stale in (folder / "sidecar.sqlite-wal", folder / "sidecar.sqlite-shm"):
                stale.unlink(missing_ok=True)
            process, url = await start_sidecar(folder, env, f"intake-{round_}")
            try:
                await measure(url, folder, "/inbound/sale", pairs, inbound, n)
            finally:
                await stop(process)
        queued = outbox_counts(database)
        # ShopiMind is back: drain the last round's outbox.
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


def _python_rps(result: dict[str, object]) -> float:
    return float(str(result["rps"]))


def _python_failed(result: dict[str, object]) -> int:
    statuses = result["statuses"]
    assert isinstance(statuses, dict)
    failed = sum(int(v) for k, v in statuses.items() if not str(k).startswith("2"))
    return failed + int(str(result["errors"]))


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def report(
    hello: Runs,
    inbound: Runs,
    queued: dict[str, int],
    counts: dict[str, int],
    drain_wall: float,
    span: float,
) -> str:
    lines = [
        "## Inbound: signed queued calls vs hello world",
        "",
        f"{SECONDS:g} s per run after {WARMUP_SECONDS:g} s of warm-up, on loopback; the two "
        f"servers alternate for {ROUNDS} rounds, each round running both generators at "
        f"concurrency {' and '.join(map(str, CONCURRENCIES))}. Inbound: `POST /inbound/sale` "
        f"(trigger_event, queued), signed for {INSTALLATIONS:,} installations in turn, each "
        "call a new event — an outbox row committed (WAL, synchronous=NORMAL) before its "
        "202; the real `python -m sidecar serve` (its per-IP bucket of 1,000 calls/s lifted: "
        "the generator is one address), logging JSON at info; ShopiMind answering "
        "503 meanwhile (the deliverer backs off). Hello world: quart-trio JSON POST on the "
        f"same `hypercorn_config`. Generators: {wrk_version()} (one thread, "
        "`benchmarks/signed.lua` cycling through requests pre-signed just before each run), "
        "and `benchmarks._load` (raw HTTP/1.1 keep-alive, trio, signing as it goes).",
        "",
        "| generator | concurrency | hello req/s | inbound req/s | **inbound ÷ hello** "
        "| p50 / p99 ms hello | p50 / p99 ms inbound | non-2xx + errors |",
        "|---|---:|---:|---:|---:|---|---|---:|",
    ]
    verdicts = []
    for concurrency in CONCURRENCIES:
        h, i = hello.wrk[concurrency], inbound.wrk[concurrency]
        h_rps = statistics.median(r.rps for r in h)
        i_rps = statistics.median(r.rps for r in i)
        ratio = i_rps / h_rps
        verdicts.append((concurrency, ratio))
        failed = sum(r.non_2xx + r.socket_errors for r in (*h, *i))
        lines.append(
            f"| wrk | {concurrency} | {h_rps:,.0f} | {i_rps:,.0f} | **{ratio:.2f}×** "
            f"| {_ms([r.p50_ms for r in h])} / {_ms([r.p99_ms for r in h])} "
            f"| {_ms([r.p50_ms for r in i])} / {_ms([r.p99_ms for r in i])} | {failed} |"
        )
    for concurrency in CONCURRENCIES:
        ph, pi = hello.python[concurrency], inbound.python[concurrency]
        h_rps = statistics.median(_python_rps(r) for r in ph)
        i_rps = statistics.median(_python_rps(r) for r in pi)
        p50h = [float(str(r["p50_ms"])) for r in ph]
        p99h = [float(str(r["p99_ms"])) for r in ph]
        p50i = [float(str(r["p50_ms"])) for r in pi]
        p99i = [float(str(r["p99_ms"])) for r in pi]
        failed = sum(_python_failed(r) for r in (*ph, *pi))
        lines.append(
            f"| benchmarks._load | {concurrency} | {h_rps:,.0f} | {i_rps:,.0f} "
            f"| **{i_rps / h_rps:.2f}×** | {_ms(p50h)} / {_ms(p99h)} | {_ms(p50i)} / {_ms(p99i)} "
            f"| {failed} |"
        )
    wrapped = any(r.wrapped for runs in inbound.wrk.values() for r in runs)
    each = ", ".join(f"c{c} {ratio:.2f}×" for c, ratio in verdicts)
    verdict = "; ".join(
        f"c{c} {'meets' if ratio >= TARGET else 'MISSES'} it" for c, ratio in verdicts
    )
    lines += [
        "",
        f"**Inbound ÷ hello world (wrk, medians of {ROUNDS} rounds): {each}** — target "
        f"≥ {TARGET}×: {verdict}."
        + (
            " (Some wrk run went through its pre-signed requests twice: repeats were replays.)"
            if wrapped
            else ""
        ),
        "",
        "Every round, by generator and concurrency, requests/s hello → inbound: "
        + "; ".join(
            f"wrk c{c}: "
            + ", ".join(
                f"{h.rps:,.0f} → {i.rps:,.0f}"
                for h, i in zip(hello.wrk[c], inbound.wrk[c], strict=True)
            )
            for c in CONCURRENCIES
        )
        + "; "
        + "; ".join(
            f"_load c{c}: "
            + ", ".join(
                f"{_python_rps(h):,.0f} → {_python_rps(i):,.0f}"
                for h, i in zip(hello.python[c], inbound.python[c], strict=True)
            )
            for c in CONCURRENCIES
        )
        + ".",
        "",
        "What an inbound call costs beyond hello world's, and what was cut (py-spy, this "
        "machine): the route is answered on raw ASGI in front of quart "
        "(`sidecar.web.lean_inbound`: quart's request and response objects were 26% of the "
        "process's time, more than the rules), the installation's inbound context is kept "
        "in memory until installations or their state change (one trip to the store "
        "thread per call, its write, instead of two), and a log line no longer looks up its "
        "caller's frame, formats the date more than once a second or runs the redaction "
        "regex on the same key names (an access line went from ~64 to ~30 µs). What remains "
        "is hypercorn's own work (h11 parsing, the socket writes: the same in both), the "
        "inbound rules (HMAC, JSON, checks: ~14% of the process) and the group commit (one "
        "hop to the store thread per batch of calls). The c16 gap of the previous runs "
        "(0.69×, while c64 was 0.92×) was not the intake's: with ShopiMind down, the outbox "
        "deliverer tried each installation's event again at 1, 2, 4… s of backoff although "
        "ShopiMind's circuit was open (every call refused unsent for 30 s), each attempt "
        "three store round trips and a warning line — 250 to 640 attempts/s during the c16 "
        "runs, which come first, a quarter of the process's CPU (py-spy); by the c64 runs "
        "the backoffs were long. An event refused by an open circuit now waits for the end "
        "of the cool-down (one attempt per installation per cool-down). That still left "
        "one refused attempt per installation each cool-down — each under the "
        "installation's outbox lease since several replicas share the outbox: a lease "
        "taken and released, two reads, a fenced write and a warning line, 1,000 of them "
        "at ~180/s in the first 6 s after each start, which is the c16 run's warm-up and "
        "measure (c16 was 0.65× on a quiet machine, c64 1.30×). While the circuit is open "
        "no lane starts now: the deliverer sleeps until the circuit lets a call through, "
        "and an outage costs one wait, not an attempt per installation (c16 0.76–0.83×). "
        "The rest of the c16 gap was the group commit taking turns with the event loop: "
        "with 16 calls in flight neither the event loop's thread nor the store's was busy "
        "(py-spy, not pausing the process: 63% and 13%) — the store wrote a batch, then "
        "waited while the loop sent its answers and a woken caller carried the next. The "
        "caller that carried a batch now takes the next one to the store thread at once "
        "(`sidecar.store.sqlite.database`), so the two overlap.",
        "",
        f"Drain: {sum(queued.values()):,} queued events (the last round's) delivered to the "
        f"fake ShopiMind (in this benchmark's process) in {drain_wall:.1f} s from the "
        f"sidecar's start ({counts.get('delivered', 0) / span:,.0f} deliveries/s between the "
        f"first and the last), {counts.get('dead', 0)} dead, 8 installations at once, each "
        "in order.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(trio.run(bench))


if __name__ == "__main__":
    main()
