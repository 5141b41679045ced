"""The one-file binary (`make binary`): its size, its start, its memory.

1. Size of `dist/shopimind-sidecar` (built with build/build.sh when it is missing).
2. Exec → READY=1: `shopimind-sidecar serve` started as systemd would start it, with a
   `NOTIFY_SOCKET` (a datagram socket this benchmark listens on), on a fresh database (so
   the migrations are part of the start), with the fake vendor app and the fake ShopiMind
   on 127.0.0.1. Timed from just before the exec to the arrival of READY=1; median and
   max of several runs. Each run is then stopped with SIGTERM and must exit 0.
3. Idle RSS after READY: the bootloader unpacks the binary and runs Python in a child
   process; the figure is the sum of both processes' VmRSS, read from /proc.
   The reference for 2 and 3: `hello-sidecar`, a hello world (benchmarks/_hello_binary.py:
   quart-trio on hypercorn, READY=1 once bound) frozen by the same PyInstaller with the
   same dependencies (benchmarks/hello.spec), started the same way, alternating with the
   sidecar run by run; and the same hello world loading, before it serves, the sidecar's
   other dependencies (HELLO_WITH_DEPENDENCIES=1), to tell their share of the gap from
   the sidecar's own. Targets: ready ≤ 1.25× hello, idle RSS ≤ 1.15× hello, the whole
   service start (the unit's steps: `serve` alone, which checks the configuration itself)
   ≤ 1.5× hello.
4. A full backfill of 200,000 customers through the binary: install and activate an
   installation with signed webhooks, wait until the fake ShopiMind received every item
   and the run is closed, then read the RSS again (sum) and the child's peak (VmHWM).

The fakes run in this process (one core), the binary in its own (the other core). The
binary is copied to a temporary folder first, so a rebuild of dist/ meanwhile cannot
change it under the measurement. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from benchmarks._peers import customer
from sidecar.security.signature import sign
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "dist" / "shopimind-sidecar"
HELLO_SPEC = ROOT / "benchmarks" / "hello.spec"
HELLO_BUILD = ROOT / "build" / "hello"
HELLO_BINARY = HELLO_BUILD / "dist" / "hello-sidecar"
READY_TARGET = 1.25
RSS_TARGET = 1.15
SERVICE_TARGET = 1.5
CHECK_RUNS = 3
EXAMPLE = ROOT / "examples" / "integration.toml"
RUNS = 15
IDLE_SETTLE_SECONDS = 2.0
ITEMS = 200_000
KEY_HEX = "6b" * 32
TOKEN = "int_bench_binary"
WEBHOOK_SECRET = "whsec_bench_binary"
APP_SECRET = "appsec_bench_binary"
INSTALLATION = "inst_bench"
DRAIN_SECONDS = 10
BUILD_TIMEOUT_SECONDS = 900
READY_TIMEOUT_SECONDS = 60.0
BACKFILL_TIMEOUT_SECONDS = 900.0
RSS_SAMPLE_SECONDS = 0.5


# --- processes and their memory ---------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    """The fields of /proc/<pid>/status (empty when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _kib(status: dict[str, str], field: str) -> int:
    return int(status.get(field, "0 kB").split()[0])


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, by PPid (some kernels lack /proc/<pid>/task/*/children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _status(int(entry.name)).get("PPid", "").strip() == str(pid):
            found.append(int(entry.name))
    return found


@dataclass(frozen=True, slots=True)
class Memory:
    """VmRSS of the bootloader and of its Python child, and the child's peak, in KiB."""

    bootloader_kib: int
    child_kib: int
    child_peak_kib: int

    @property
    def total_kib(self) -> int:
        """What the service costs the machine: both processes."""
        return self.bootloader_kib + self.child_kib


def memory(bootloader: int) -> Memory:
    """Read the memory of the binary's two processes now."""
    children = _children(bootloader)
    if len(children) != 1:
        raise SystemExit(f"expected one child of the bootloader {bootloader}; got {children}")
    child = _status(children[0])
    return Memory(
        bootloader_kib=_kib(_status(bootloader), "VmRSS"),
        child_kib=_kib(child, "VmRSS"),
        child_peak_kib=_kib(child, "VmHWM"),
    )


def mib(kib: float) -> str:
    """KiB as MiB, for the report."""
    return f"{kib / 1024:.1f} MiB"


# --- the binary -------------------------------------------------------------------------


def binary_copy(folder: Path) -> tuple[Path, str]:
    """dist/shopimind-sidecar (built when missing), copied into `folder`; its version line."""
    if not BINARY.exists():
        print("dist/shopimind-sidecar is missing: building it", file=sys.stderr, flush=True)
        subprocess.run(
            [str(ROOT / "build" / "build.sh")],
            cwd=ROOT,
            env=os.environ | {"PYTHON": sys.executable},
            check=True,
            timeout=BUILD_TIMEOUT_SECONDS,
        )
    copy = folder / "shopimind-sidecar"
    shutil.copy2(BINARY, copy)
    version = subprocess.run(
        [str(copy), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    return copy, version.stdout.splitlines()[0]


def hello_copy(folder: Path) -> Path:
    """The hello-world one-file binary (built from benchmarks/hello.spec when missing),
    copied into `folder`; rebuilt when the spec or its program changed since."""
    sources = (HELLO_SPEC, ROOT / "benchmarks" / "_hello_binary.py")
    if not HELLO_BINARY.exists() or any(
        source.stat().st_mtime > HELLO_BINARY.stat().st_mtime for source in sources
    ):
        print("the hello-world binary is missing or stale: building it", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "PyInstaller",
                "--noconfirm",
                "--clean",
                "--log-level",
                "WARN",
                "--distpath",
                str(HELLO_BUILD / "dist"),
                "--workpath",
                str(HELLO_BUILD / "work"),
                str(HELLO_SPEC),
            ],
            cwd=ROOT,
            check=True,
            timeout=BUILD_TIMEOUT_SECONDS,
        )
    copy = folder / "hello-sidecar"
    shutil.copy2(HELLO_BINARY, copy)
    return copy


def sidecar_env(folder: Path, api_url: str, app_url: str, notify: str) -> dict[str, str]:
    """A valid environment for `serve`, with the fakes as peers."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "INTEGRATION_FILE": str(EXAMPLE),
        "DATABASE_PATH": str(folder / "sidecar.sqlite"),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CREDENTIALS_KEY": KEY_HEX,
        "APP_BASE_URL": app_url,
        "APP_SECRET": APP_SECRET,
        "SHOPIMIND_CORE_API_BASE": api_url,
        "PORT": "0",
        "DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
        "LOG_LEVEL": "info",
        "NOTIFY_SOCKET": notify,
    }


class Notifications:
    """The systemd side of NOTIFY_SOCKET: every datagram the service sends."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._socket = sock
        self.messages: list[str] = []

    async def wait_for(self, prefix: str) -> str:
        """The next (or an earlier) message starting with `prefix`."""
        while True:
            for message in self.messages:
                if message.startswith(prefix):
                    return message
            self.messages.append((await self._socket.recv(4096)).decode())


@dataclass(frozen=True, slots=True)
class Started:
    """A binary that sent READY=1."""

    process: trio.Process
    notifications: Notifications
    ready_seconds: float
    url: str


async def start(
    binary: Path, folder: Path, api_url: str, app_url: str, *, hello: str = ""
) -> Started:
    """Exec the binary under a NOTIFY_SOCKET in `folder`; return once READY=1 arrived.
    `hello`: the hello world ("bare", or "deps": HELLO_WITH_DEPENDENCIES=1)."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify = str(folder / "notify.sock")
    await sock.bind(notify)
    notifications = Notifications(sock)
    env = (
        {
            "PATH": os.environ.get("PATH", ""),
            "PORT": "0",
            "NOTIFY_SOCKET": notify,
            "HELLO_WITH_DEPENDENCIES": "1" if hello == "deps" else "0",
        }
        if hello
        else sidecar_env(folder, api_url, app_url, notify)
    )
    with (folder / "sidecar.log").open("wb") as log:
        started = time.perf_counter()
        process = await trio.lowlevel.open_process(
            [str(binary)] if hello else [str(binary), "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    with trio.fail_after(READY_TIMEOUT_SECONDS):
        ready = await notifications.wait_for("READY=1")
    ready_seconds = time.perf_counter() - started
    # "READY=1\nSTATUS=serving acme-pos on http://127.0.0.1:<port>"
    url = ready.split(" on ", 1)[1].split(",")[0].strip()
    return Started(process, notifications, ready_seconds, url)


async def stop(started: Started) -> float:
    """SIGTERM, then wait for STOPPING=1 and exit code 0; return the time it took."""
    begun = time.perf_counter()
    started.process.send_signal(signal.SIGTERM)
    try:
        with trio.fail_after(DRAIN_SECONDS + 10):
            await started.notifications.wait_for("STOPPING=1")
            code = await started.process.wait()
    finally:
        if started.process.returncode is None:
            started.process.kill()
            await started.process.wait()
    if code != 0:
        raise SystemExit(f"the binary exited {code} on SIGTERM")
    return time.perf_counter() - begun


# --- the measurements -------------------------------------------------------------------


async def one_start(
    binary: Path, folder: Path, api_url: str, app_url: str, *, hello: str
) -> tuple[float, Memory, float]:
    """A fresh start: (seconds to READY=1, idle memory, seconds to exit on SIGTERM)."""
    await trio.Path(folder).mkdir()
    started = await start(binary, folder, api_url, app_url, hello=hello)
    try:
        await trio.sleep(IDLE_SETTLE_SECONDS)
        idle = memory(started.process.pid)
        async with httpx.AsyncClient(base_url=started.url, timeout=10) as client:
            if hello:
                if (await client.post("/hello", json={})).json() != {"success": True}:
                    raise SystemExit("the hello world does not answer")
            elif (await client.get("/ready")).json() != {"ready": True}:
                raise SystemExit("READY=1 arrived but /ready does not say so")
    finally:
        stopped = await stop(started)
    return started.ready_seconds, idle, stopped


Start = tuple[float, Memory, float]


async def startup_runs(
    binaries: tuple[Path, Path], work: Path, api_url: str, app_url: str
) -> tuple[list[Start], list[Start], list[Start]]:
    """RUNS fresh starts of the sidecar, the hello world and the hello world with the
    sidecar's dependencies, in turn."""
    runs: list[Start] = []
    hellos: list[Start] = []
    with_deps: list[Start] = []
    binary, hello = binaries
    for n in range(RUNS):
        runs.append(await one_start(binary, work / f"start-{n}", api_url, app_url, hello=""))
        hellos.append(await one_start(hello, work / f"hello-{n}", api_url, app_url, hello="bare"))
        with_deps.append(await one_start(hello, work / f"deps-{n}", api_url, app_url, hello="deps"))
    return runs, hellos, with_deps


def check_seconds(binary: Path, work: Path, api_url: str, app_url: str) -> list[float]:
    """`shopimind-sidecar check`, the step the unit ran before `serve` until it was
    folded into `serve`'s own start: its wall time, CHECK_RUNS times."""
    folder = work / "check"
    folder.mkdir()
    env = sidecar_env(folder, api_url, app_url, "")
    del env["NOTIFY_SOCKET"]
    timings = []
    for _ in range(CHECK_RUNS):
        begun = time.perf_counter()
        subprocess.run([str(binary), "check"], env=env, capture_output=True, check=True, timeout=60)
        timings.append(time.perf_counter() - begun)
    return timings


def run_status(database: Path) -> str | None:
    """Status of the installation's last full sync run (None before it starts)."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        row = connection.execute(
            "SELECT status FROM sync_runs WHERE kind = 'full' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return None if row is None else str(row[0])


async def webhook(client: httpx.AsyncClient, event: str) -> None:
    """Send a signed lifecycle webhook, as ShopiMind does; it must succeed."""
    payload = {
        "event": f"integration.{event}",
        "installation_id": INSTALLATION,
        "access_token": TOKEN,
        "shop_domain": "bench.example",
        "shop_name": "Bench",
        "configs": {
            "api_url": "https://api.acme-pos.example",
            "api_key": "acme-bench-key",
            "store_id": "store-1",
            "price_display": "tax_included",
            "sync_products": False,
            "sync_loyalty": False,
        },
    }
    body = json.dumps(payload).encode()
    ts = str(int(time.time()))
    answer = await client.post(
        "/webhook/receive",
        content=body,
        headers={
            "content-type": "application/json",
            "x-shopimind-timestamp": ts,
            "x-shopimind-signature": sign(WEBHOOK_SECRET, ts, body),
        },
    )
    if answer.json() != {"success": True}:
        raise SystemExit(f"{event}: {answer.status_code} {answer.text}")


@dataclass(frozen=True, slots=True)
class Backfill:
    """What a 200,000-item backfill through the binary cost."""

    idle: Memory
    after: Memory
    peak_total_kib: int
    seconds: float
    status: str
    webhook_ms: tuple[float, float]
    """How long `installed` (the first secret sealed: AES-GCM loaded then) and `activated`
    took to answer, the first two requests after READY=1."""
    after_webhooks: Memory
    """Right after the two webhooks, as the backfill begins."""


async def backfill(binary: Path, work: Path, api: FakeShopimind, urls: tuple[str, str]) -> Backfill:
    """Install, activate, and wait for the backfill to reach ShopiMind and close its run."""
    folder = work / "backfill"
    folder.mkdir()
    database = folder / "sidecar.sqlite"
    started = await start(binary, folder, *urls)
    pid = started.process.pid
    try:
        await trio.sleep(IDLE_SETTLE_SECONDS)
        idle = memory(pid)
        peak_total = idle.total_kib
        async with httpx.AsyncClient(base_url=started.url, timeout=30) as client:
            begun = time.perf_counter()
            await webhook(client, "installed")
            installed = time.perf_counter()
            await webhook(client, "activated")
            activated = time.perf_counter()
        after_webhooks = memory(pid)
        # Another process's progress: look now and then (and sample its memory meanwhile).
        with trio.fail_after(BACKFILL_TIMEOUT_SECONDS):
            while True:
                peak_total = max(peak_total, memory(pid).total_kib)
                if api.count("customers") >= ITEMS:
                    status = await trio.to_thread.run_sync(run_status, database)
                    if status not in (None, "running"):
                        break
                await trio.sleep(RSS_SAMPLE_SECONDS)
        seconds = time.perf_counter() - begun
        after = memory(pid)
    finally:
        await stop(started)
    return Backfill(
        idle,
        after,
        max(peak_total, after.total_kib),
        seconds,
        status,
        ((installed - begun) * 1000, (activated - installed) * 1000),
        after_webhooks,
    )


async def bench() -> str:
    """Every measurement, as this benchmark's section of BENCHMARKS.md."""
    with tempfile.TemporaryDirectory(prefix="bench-binary-") as tmp:
        work = Path(tmp)
        binary, version = binary_copy(work)
        hello = hello_copy(work)
        size = binary.stat().st_size
        app = FakeVendorApp(APP_SECRET, max_calls_kept=10)
        app.set_dataset("customers", Dataset(count=ITEMS, item=customer))
        app.set_dataset("products", Dataset(count=0))
        app.sources["orders"] = []
        api = FakeShopimind(tokens={TOKEN}, keep_items=0, request_log_limit=10)
        async with running(app) as app_url, running(api) as api_url:
            urls = (api_url, app_url + app.prefix)
            runs, hellos, with_deps = await startup_runs((binary, hello), work, *urls)
            checks = await trio.to_thread.run_sync(check_seconds, binary, work, *urls)
            filled = await backfill(binary, work, api, urls)
        received = api.count("customers")
        reference = Reference(hello.stat().st_size, hellos, with_deps, checks)
    return report(version, size, runs, filled, received, reference)


@dataclass(frozen=True, slots=True)
class Reference:
    """The hello-world binary's figures, and the `check` step's."""

    size: int
    runs: list[tuple[float, Memory, float]]
    with_dependencies: list[tuple[float, Memory, float]]
    check_seconds: list[float]


def report(
    version: str,
    size: int,
    runs: list[tuple[float, Memory, float]],
    filled: Backfill,
    received: int,
    reference: Reference,
) -> str:
    """The Markdown section."""
    ready_ms = [seconds * 1000 for seconds, _, _ in runs]
    hello_ms = [seconds * 1000 for seconds, _, _ in reference.runs]
    hello_total = statistics.median(m.total_kib for _, m, _ in reference.runs)
    deps_ms = [seconds * 1000 for seconds, _, _ in reference.with_dependencies]
    deps_total = statistics.median(m.total_kib for _, m, _ in reference.with_dependencies)
    check_ms = statistics.median(reference.check_seconds) * 1000
    ready_ratio = statistics.median(ready_ms) / statistics.median(hello_ms)
    fastest_ratio = min(ready_ms) / min(hello_ms)
    idle = [m for _, m, _ in runs]
    idle_total = statistics.median(m.total_kib for m in idle)
    idle_boot = statistics.median(m.bootloader_kib for m in idle)
    idle_child = statistics.median(m.child_kib for m in idle)
    slowest_stop = max(s for _, _, s in runs)
    growth = filled.after.total_kib - filled.idle.total_kib
    rss_ratio = idle_total / hello_total
    # The unit runs `serve` alone now; before, `check` ran first as ExecStartPre.
    service_ratio = ready_ratio
    old_ratio = (check_ms + statistics.median(ready_ms)) / statistics.median(hello_ms)

    def verdict(ratio: float, target: float) -> str:
        return f"**{ratio:.2f}×** (target ≤ {target}×: {'met' if ratio <= target else 'NOT met'})"

    lines = [
        "## One-file binary",
        "",
        f"`dist/shopimind-sidecar` as `make binary` builds it ({version}). Started as systemd "
        "starts a `Type=notify` service: `shopimind-sidecar serve` with a `NOTIFY_SOCKET` "
        "this benchmark listens on, a fresh database each time (the migrations are part of "
        "the start), the example declaration, the fake vendor app and the fake ShopiMind on "
        "127.0.0.1 (in the benchmark's process). The bootloader unpacks the binary and runs "
        "Python in a child process: memory is the sum of both processes' VmRSS (/proc).",
        "",
        "| measurement | value |",
        "|---|---:|",
        f"| binary size | {size / 1024 / 1024:.1f} MiB ({size:,} bytes) |",
        f"| exec → READY=1, median of {RUNS} | {statistics.median(ready_ms):,.0f} ms |",
        f"| exec → READY=1, max of {RUNS} | {max(ready_ms):,.0f} ms |",
        f"| idle RSS {IDLE_SETTLE_SECONDS:g} s after READY=1 (bootloader + child), median "
        f"| {mib(idle_total)} ({mib(idle_boot)} + {mib(idle_child)}) |",
        f"| RSS after a {ITEMS:,}-customer backfill (bootloader + child) "
        f"| {mib(filled.after.total_kib)} ({mib(filled.after.bootloader_kib)} + "
        f"{mib(filled.after.child_kib)}) |",
        f"| child's peak RSS (VmHWM) over the backfill | {mib(filled.after.child_peak_kib)} |",
        f"| highest RSS sampled during the backfill (every {RSS_SAMPLE_SECONDS:g} s, sum) "
        f"| {mib(filled.peak_total_kib)} |",
        "",
        "",
        "Against the hello world one-file binary (`benchmarks/hello.spec`: quart-trio on "
        "hypercorn, READY=1 once bound; the same PyInstaller, the same dependencies inside, "
        f"{reference.size / 1024 / 1024:.1f} MiB), started the same way, alternating run by "
        "run:",
        "",
        "| measurement | sidecar | hello world | ratio |",
        "|---|---:|---:|---:|",
        f"| exec → READY=1, median of {RUNS} | {statistics.median(ready_ms):,.0f} ms "
        f"| {statistics.median(hello_ms):,.0f} ms | {verdict(ready_ratio, READY_TARGET)} |",
        f"| exec → READY=1, fastest of {RUNS} (the least disturbed by the machine's other "
        f"load) | {min(ready_ms):,.0f} ms | {min(hello_ms):,.0f} ms | {fastest_ratio:.2f}× |",
        f"| idle RSS, median (bootloader + child) | {mib(idle_total)} | {mib(hello_total)} "
        f"| {verdict(rss_ratio, RSS_TARGET)} |",
        f"| the whole service start: the unit's steps (`serve` alone: it checks the "
        f"configuration itself) | {statistics.median(ready_ms):,.0f} ms "
        f"| {statistics.median(hello_ms):,.0f} ms | {verdict(service_ratio, SERVICE_TARGET)} |",
        f"| as the unit was (`check` as ExecStartPre, median {check_ms:,.0f} ms, then `serve`) "
        f"| {check_ms + statistics.median(ready_ms):,.0f} ms "
        f"| {statistics.median(hello_ms):,.0f} ms | {old_ratio:.2f}× |",
        "",
        "Deferred past READY=1, to their first use: the web framework (quart with "
        "werkzeug, flask and jinja2, and the routes written with them: webhooks, wizard, "
        "manifest, admin API and console; ~13 MiB and the largest share of the start), "
        "loaded by the first request that is neither an inbound call nor a probe "
        "(`sidecar.web.front`: `POST /inbound/…`, `GET /ready` and `GET /health` are "
        "answered on raw ASGI and never load it); cryptography's AES-GCM (~8 MiB: its "
        "Rust library carries its own OpenSSL; loaded when the first secret is sealed or "
        "opened); the peers' CA bundle (loaded at the first TLS connection); "
        "prometheus-client (~0.5 MiB; loaded at the first scrape of `/metrics`). The "
        "hello world, which serves with quart, loads it before it is ready. The first two "
        f"requests after READY=1, the `installed` and `activated` webhooks (the first loads "
        f"quart and seals secrets), answered in {filled.webhook_ms[0]:,.0f} and "
        f"{filled.webhook_ms[1]:,.0f} ms; RSS right after them "
        f"{mib(filled.after_webhooks.total_kib)} "
        f"({filled.after_webhooks.total_kib / hello_total:.2f}× hello idle): what a sidecar "
        "holds once it has served every kind of request. The hello world "
        "loading what the sidecar uses once it works (`HELLO_WITH_DEPENDENCIES=1`: httpx "
        "with its CA bundle, cryptography's AES-GCM, sqlite3, prometheus-client; the same "
        f"binary) is ready in {statistics.median(deps_ms):,.0f} ms "
        f"({statistics.median(deps_ms) / statistics.median(hello_ms):.2f}× hello) with "
        f"{mib(deps_total)} idle ({deps_total / hello_total:.2f}× hello). Both specs leave "
        "out setuptools/pkg_resources (PyInstaller's runtime hooks imported them at every "
        "start) and anyio (imported whole in a frozen binary, where its lazy importer does "
        "not work; httpcore needs it only for asyncio).",
        "",
        f"- Hello world starts: {', '.join(f'{ms:,.0f}' for ms in hello_ms)} ms.",
        f"- Every start ({', '.join(f'{ms:,.0f}' for ms in ready_ms)} ms) answered `/ready` "
        f'with `{{"ready": true}}`, and on SIGTERM sent STOPPING=1 and exited 0 (within '
        f"{slowest_stop:.1f} s).",
        f"- Backfill: install and activate by signed webhooks, then {received:,} customers "
        f"(pages of 500, chunks of 50) reached the fake ShopiMind in {filled.seconds:.1f} s "
        f"({received / filled.seconds:,.0f} items/s: the fakes share one core here, see "
        f"Sync for the engine's own rate), run `{filled.status}`; RSS "
        f"{growth / 1024:+.1f} MiB against the same process idle before it.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print this benchmark's section of BENCHMARKS.md."""
    print(trio.run(bench))


if __name__ == "__main__":
    main()
