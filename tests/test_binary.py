"""The one-file binary, built as `make binary` builds it, run as systemd would run it.

The binary is started with a `NOTIFY_SOCKET` this test listens on and a watchdog, under
W^X (PR_SET_MDWE, what `MemoryDenyWriteExecute=yes` enforces) when the kernel has it. It
must send READY=1 once serving, answer /health and /ready, install and activate an
installation against the fake ShopiMind and sync it, ping the watchdog, and on SIGTERM
send STOPPING=1 and exit 0 within its drain timeout. The unit file passes
`systemd-analyze verify`, and the .deb holds what it should.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, configs, lifecycle, process_env, signed_headers
from tests.postgres import PostgresCluster, new_schema
from tests.sync.test_crash_resume import Tripwire
from tests.test_serve_process import LogReader

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "dist" / "shopimind-sidecar"
UNIT = ROOT / "packaging" / "shopimind-sidecar.service"
DRAIN_SECONDS = 3
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

# Starts the binary as systemd does: WATCHDOG_PID is the main process's pid (the
# bootloader's: this process becomes it by exec), and W^X as MemoryDenyWriteExecute sets
# it (when the kernel has PR_SET_MDWE; MDWE=0 skips it).
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "os.environ['WATCHDOG_PID'] = str(os.getpid())\n"
    "if os.environ.get('MDWE') != '0':\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    f"    if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
    "        sys.exit('PR_SET_MDWE failed')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _mdwe_supported() -> bool:
    """True when this kernel can refuse W+X mappings for a process (Linux 6.3+)."""
    probe = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, "/bin/true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def binary() -> Path:
    """dist/shopimind-sidecar, built once per test session by build/build.sh."""
    built = subprocess.run(
        [str(ROOT / "build" / "build.sh")],
        cwd=ROOT,
        env=os.environ | {"PYTHON": sys.executable},
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, f"build/build.sh failed:\n{built.stdout}\n{built.stderr}"
    return BINARY


async def test_binary_as_a_systemd_service(binary: Path, tmp_path: Path) -> None:
    api = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    vendor.set_dataset("customers", Dataset(count=120))  # 3 chunks of 50
    vendor.set_dataset("products", Dataset(count=0))
    vendor.sources["orders"] = []
    pushed = Tripwire(api, "/v1/customers", after=3)
    notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp_path / "notify.sock")
    await notify.bind(notify_path)
    try:
        await _serve_under_systemd_protocol(
            binary, tmp_path, api, vendor, pushed, notify, notify_path
        )
    finally:
        notify.close()


async def _serve_under_systemd_protocol(
    binary: Path,
    tmp_path: Path,
    api: FakeShopimind,
    vendor: FakeVendorApp,
    pushed: Tripwire,
    notify: trio.socket.SocketType,
    notify_path: str,
) -> None:
    messages: list[str] = []
    arrived = trio.Event()
    command = [sys.executable, "-c", _LAUNCHER, str(binary), "serve"]
    mdwe = "1" if _mdwe_supported() else "0"
    async with (
        running(pushed) as api_url,
        running(vendor) as app_url,
        trio.open_nursery() as nursery,
    ):

        async def collect() -> None:
            nonlocal arrived
            while True:
                messages.append((await notify.recv(4096)).decode())
                arrived.set()
                arrived = trio.Event()

        nursery.start_soon(collect)
        env = process_env(
            database=tmp_path / "sidecar.sqlite",
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            DRAIN_TIMEOUT_SECONDS=str(DRAIN_SECONDS),
            NOTIFY_SOCKET=notify_path,
            WATCHDOG_USEC="1000000",
            MDWE=mdwe,
            ADMIN_TOKEN="adm_binary_" + "5a" * 16,
        )
        process = await trio.lowlevel.open_process(
            command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        assert process.stderr is not None
        log = LogReader(process.stderr)
        try:
            with trio.fail_after(60):
                while not any(m.startswith("READY=1") for m in messages):
                    await arrived.wait()
                ready_line = await log.until("sidecar ready")
            base = str(ready_line["listen"][0])  # type: ignore[index]
            # Keep reading the log, so a chatty sidecar never blocks on a full pipe.
            drained = trio.Event()

            async def drain() -> None:
                await log.drain()
                drained.set()

            nursery.start_soon(drain)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert (await client.get("/ready")).json() == {"ready": True}
                assert (await client.get("/health")).status_code == 200
                # The admin console's templates and static files are in the binary.
                sign_in = await client.get("/admin/ui/sign-in")
                assert sign_in.status_code == 200
                assert 'name="token"' in sign_in.text
                script = await client.get("/admin/ui/static/console.js")
                assert script.status_code == 200
                assert "data-refresh-seconds" in script.text
                for event in ("installed", "activated"):
                    payload = lifecycle(event, configs=configs(sync_loyalty=False))
                    body = json.dumps(payload).encode()
                    answer = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    assert answer.json() == {"success": True}, event
                with trio.fail_after(60):
                    await pushed.tripped.wait()  # the backfill reached ShopiMind
                    while not any(m == "WATCHDOG=1" for m in messages):
                        await arrived.wait()
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(DRAIN_SECONDS + 10):
                while not any(m.startswith("STOPPING=1") for m in messages):
                    await arrived.wait()
                assert await process.wait() == 0
                await drained.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            nursery.cancel_scope.cancel()
    assert api.count("customers") == 120
    ready_message = next(m for m in messages if m.startswith("READY=1"))
    assert "STATUS=serving acme-pos on http://127.0.0.1:" in ready_message
    assert [line["msg"] for line in log.lines][-1] == "sidecar stopped"


async def test_version_and_check_from_the_binary(binary: Path, valid_env: dict[str, str]) -> None:
    version = await trio.run_process([str(binary), "--version"], capture_stdout=True)
    assert version.stdout.decode().startswith("shopimind-sidecar 0.1.0 (Python 3.11")
    assert "cryptography" in version.stdout.decode()
    bad = await trio.run_process(
        [str(binary), "check"],
        env={"PATH": os.environ["PATH"], **valid_env, "PORT": "x"},
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.decode().startswith("PORT: must be a whole number")


async def test_the_binary_carries_the_postgresql_driver(
    binary: Path, valid_env: dict[str, str], postgres_server: PostgresCluster
) -> None:
    env = {k: v for k, v in valid_env.items() if k != "DATABASE_PATH"} | {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": postgres_server.url,
        "DATABASE_SCHEMA": new_schema(),
    }
    for command, expected in (("check", "postgresql       server "), ("migrate", "schema version")):
        result = await trio.run_process(
            [str(binary), command], env=env, capture_stdout=True, capture_stderr=True, check=False
        )
        assert result.returncode == 0, result.stderr.decode()
        assert expected in result.stdout.decode()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_verifies(binary: Path, tmp_path: Path) -> None:
    unit = tmp_path / "shopimind-sidecar.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/usr/bin/shopimind-sidecar", str(binary))
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_debian_package(binary: Path, tmp_path: Path) -> None:
    build = subprocess.run(
        [str(ROOT / "build" / "package.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    deb = ROOT / "dist" / "shopimind-sidecar_0.1.0_amd64.deb"
    contents = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    for path in (
        "./usr/bin/shopimind-sidecar",
        "./lib/systemd/system/shopimind-sidecar.service",
        "./etc/shopimind-sidecar/env",
        "./etc/shopimind-sidecar/credentials/",
        "./usr/share/doc/shopimind-sidecar/README.md",
        "./usr/share/doc/shopimind-sidecar/env.example",
        "./usr/share/doc/shopimind-sidecar/integration.toml.example",
    ):
        assert path in contents, path
    assert "-rwxr-xr-x root/root" in next(
        line for line in contents.splitlines() if "usr/bin/shopimind-sidecar" in line
    )
    info = subprocess.run(
        ["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "Package: shopimind-sidecar" in info
    assert "Version: 0.1.0" in info
    assert "Architecture: amd64" in info
    control = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    assert b"conffiles" in control
    assert b"postinst" in control
    _check_maintainer_scripts(deb, tmp_path)
    # `make package` packs the binary the fixture just built; it does not build it again.
    planned = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "package"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "build.sh" not in planned, planned
    lintian = shutil.which("lintian")
    if lintian is None:
        if os.environ.get("CI"):
            pytest.fail("lintian is not installed (.ci/run installs it)")
        return
    report = subprocess.run(
        [lintian, "--tag-display-limit", "0", str(deb)], capture_output=True, text=True
    )
    errors = [line for line in report.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], report.stdout


def _check_maintainer_scripts(deb: Path, tmp_path: Path) -> None:
    """Run prerm/postrm as dpkg would on remove and purge, with the systemd helpers
    replaced by stubs that record their arguments: stop, then disable; purge says what
    it keeps."""
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    calls = tmp_path / "calls"
    for name in ("deb-systemd-invoke", "deb-systemd-helper", "systemctl"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n', encoding="utf-8")
        stub.chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin"}
    steps = (("prerm", "remove"), ("postrm", "remove"), ("postrm", "purge"))
    said = ""
    for script, argument in steps:
        done = subprocess.run(
            ["sh", str(control / script), argument],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        said += done.stdout
    assert calls.read_text(encoding="utf-8").splitlines() == [
        "deb-systemd-invoke stop shopimind-sidecar.service",
        "deb-systemd-helper disable shopimind-sidecar.service",
        "systemctl daemon-reload",
        "deb-systemd-helper purge shopimind-sidecar.service",
    ]
    assert "rm -rf /var/lib/shopimind-sidecar /etc/shopimind-sidecar" in said
