"""A lean start: `serve` imports nothing it does not run (no demo, no fakes of
`sidecar.testing`, no admin command layer), and `check` / `--version` not even trio.

Each case runs a real Python process and reads what it imported: `sys.modules`, or for
`serve` the `-X importtime` lines it writes on stderr up to "sidecar ready".
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from sidecar.cli import _settle_imports, main

STARTUP_TIMEOUT_SECONDS = 30

# What only other commands use: the demo and the fakes it runs, the admin CLI's actions.
NOT_FOR_SERVE = ("sidecar.demo", "sidecar.testing", "sidecar.admin.commands")
# Loaded at their first use, after READY: AES-GCM (the first secret sealed or opened),
# prometheus_client (the first scrape of /metrics), the web framework and the routes
# written with it (the first request that is not an inbound call or a probe).
NOT_BEFORE_READY = (
    "cryptography",
    "prometheus_client",
    "quart",
    "quart_trio",
    "flask",
    "werkzeug",
    "jinja2",
    "sidecar.web.public",
    "sidecar.web.admin",
    "sidecar.web.console",
    "sidecar.web.responses",
)


# Not loaded by the probes (/ready, /health) nor by inbound calls.
NOT_FOR_WARM_PATHS = ("quart", "werkzeug", "flask", "sidecar.web.public", "sidecar.web.admin")


def _unwanted(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in modules if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


def _modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded in a fresh interpreter once `code` ran."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_runtime_imports_no_demo_no_fakes_no_admin_commands() -> None:
    modules = _modules_after("import sidecar.runtime")
    assert "sidecar.runtime" in modules
    assert _unwanted(modules, NOT_FOR_SERVE) == []


def test_the_cli_module_alone_imports_neither_trio_nor_the_store() -> None:
    # What `check`, `--version`, `schema` and `manifest` load before they run.
    modules = _modules_after("import sidecar.cli")
    assert "sidecar.config" in modules
    unwanted = _unwanted(modules, ("trio", "quart", "hypercorn", "httpx", "sidecar.store"))
    assert unwanted == []
    assert _unwanted(modules, (*NOT_FOR_SERVE, "sidecar.runtime")) == []


def _imported(stderr: str) -> set[str]:
    """Module names of the `import time: self | cumulative | name` lines of -X importtime."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


async def _read_until(stream: trio.abc.ReceiveStream, received: bytes, marker: bytes) -> bytes:
    with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
        while marker not in received:
            chunk = await stream.receive_some(65536)
            assert chunk, f"serve ended before {marker!r}: {received.decode()[-2000:]}"
            received += chunk
    return received


async def test_serve_runs_without_importing_what_it_does_not_use(
    valid_env: dict[str, str],
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **valid_env,
        "PORT": "0",
        "SYNC_INTERVAL_MINUTES": "0",
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-X", "importtime", "-m", "sidecar", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    try:
        at_ready = await _read_until(process.stderr, b"", b'"sidecar ready"')
        ready_line = next(line for line in at_ready.splitlines() if b'"sidecar ready"' in line)
        url = json.loads(ready_line)["listen"][0]
        # Probes and inbound calls are answered without the web framework...
        async with httpx.AsyncClient(timeout=STARTUP_TIMEOUT_SECONDS) as http:
            assert (await http.get(url + "/ready")).status_code == 200
            await http.get(url + "/health")
            refused = await http.post(url + "/inbound/sale", json={})
            assert refused.status_code == 400  # unsigned: refused by the inbound rules
            after_probes = await _read_until(process.stderr, at_ready, b'"/inbound/sale"')
            # ...which the first other request loads.
            assert (await http.get(url + "/manifest")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        received = after_probes if "after_probes" in locals() else b""
        with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
            while chunk := await process.stderr.receive_some(65536):
                received += chunk
            await process.wait()
    before_ready = _imported(at_ready.decode())
    assert {"sidecar.runtime", "hypercorn.trio", "sidecar.store.sqlite.store"} <= before_ready
    assert _unwanted(before_ready, NOT_FOR_SERVE) == []
    assert _unwanted(before_ready, NOT_BEFORE_READY) == []
    assert _unwanted(_imported(after_probes.decode()), NOT_FOR_WARM_PATHS) == []
    assert {"quart", "sidecar.web.public"} <= _imported(received.decode())
    assert process.returncode == 0


def test_the_unit_pays_for_the_configuration_check_once() -> None:
    unit = Path(__file__).resolve().parents[1] / "packaging" / "shopimind-sidecar.service"
    steps = [line for line in unit.read_text(encoding="utf-8").splitlines() if "Exec" in line]
    assert not any(line.startswith("ExecStartPre=") for line in steps)
    assert "ExecStart=/usr/bin/shopimind-sidecar serve" in steps


def test_serve_sets_its_imports_aside_and_turns_the_collector_on() -> None:
    # As `python -m sidecar` and the binary start: without the collector.
    gc.disable()
    try:
        _settle_imports()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_other_commands_turn_the_collector_on_at_once(
    valid_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in valid_env.items():
        monkeypatch.setenv(name, value)
    gc.disable()
    try:
        assert main(["check"]) == 0
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0  # only `serve` freezes what it imported
    finally:
        gc.enable()
