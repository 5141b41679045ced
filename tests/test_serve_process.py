"""The sidecar as a real process: `python -m sidecar` serving examples/integration.toml on a
free port, driven through the whole lifecycle with signed webhooks, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.backends import Backend
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET
from tests.harness import (
    ACCESS_TOKEN,
    SHOP_SECRET_CONFIG,
    inbound_headers,
    lifecycle,
    process_env,
    signed_headers,
)

STARTUP_TIMEOUT_SECONDS = 30
SYNCING = "provisioning_failed: the installation is syncing; retry later"
"""The activation's answer while the installation's backfill holds it (PROTOCOL §1.3)."""


class LogReader:
    """Reads the process's JSON log lines from stderr, keeping them all."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.lines: list[dict[str, object]] = []

    async def until(self, message: str) -> dict[str, object]:
        """Read lines until one with `msg == message`; return it."""
        for line in self.lines:
            if line.get("msg") == message:
                return line
        while True:
            while b"\n" not in self._buffer:
                chunk = await self._stream.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"process ended before logging {message!r}: {self.lines}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\n", 1)
            parsed: dict[str, object] = json.loads(raw)
            self.lines.append(parsed)
            if parsed.get("msg") == message:
                return parsed

    async def drain(self) -> None:
        """Read everything left, until the stream ends."""
        while chunk := await self._stream.receive_some(65536):
            self._buffer += chunk
        for raw in self._buffer.splitlines():
            self.lines.append(json.loads(raw))
        self._buffer = b""


@asynccontextmanager
async def sidecar_process(env: dict[str, str]) -> AsyncIterator[tuple[trio.Process, LogReader]]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "sidecar", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    try:
        yield process, LogReader(process.stderr)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def test_serve_process_end_to_end(tmp_path: Path, backend: Backend) -> None:
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    async with running(fake) as api_url, running(vendor) as app_url:
        env = process_env(
            database=backend.path,
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            DRAIN_TIMEOUT_SECONDS="2",
        )
        env = backend.env(env)
        async with sidecar_process(env) as (process, log):
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                ready = await log.until("sidecar ready")
            base = str(ready["listen"][0])  # type: ignore[index]
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:

                async def send(payload: dict[str, object]) -> dict[str, object]:
                    body = json.dumps(payload).encode()
                    response = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    assert response.status_code == 200
                    answer: dict[str, object] = response.json()
                    return answer

                for event in ("installed", "activated"):
                    assert await send(lifecycle(event)) == {"success": True}, event
                inbound_secret = str(vendor.lifecycle_calls[-1].inbound_secret)
                sale = json.dumps({"n": 1}).encode()
                queued = await client.post(
                    "/inbound/sale",
                    content=sale,
                    headers=inbound_headers(sale, secret=inbound_secret),
                )
                assert queued.status_code == 202, queued.text
                for event in ("config_updated", "deactivated", "uninstalled"):
                    assert await send(lifecycle(event)) == {"success": True}, event
                body = json.dumps(lifecycle("activated")).encode()
                headers = signed_headers(body)
                # The first activation's backfill may still hold the installation: then the
                # activation is refused with "retry later" (its claim released), and
                # ShopiMind resends it, as here.
                with trio.fail_after(30):
                    while (
                        answer := (
                            await client.post("/webhook/receive", content=body, headers=headers)
                        ).json()
                    ) != {"success": True}:
                        assert answer == {"success": False, "error": SYNCING}, answer
                        await trio.sleep(0.2)
                # (The activation's backfill may still talk to ShopiMind meanwhile: count
                # what only a processed activation does, its call to the app.)
                before = len(vendor.lifecycle_calls)
                replay = await client.post("/webhook/receive", content=body, headers=headers)
                assert replay.json() == {"success": True}
                assert len(vendor.lifecycle_calls) == before  # the replay was not processed
                assert (await client.get("/health")).status_code == 200
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await log.drain()
                assert await process.wait() == 0
    assert {r.path for r in fake.requests} >= {
        "data-sources",
        "custom-data-definitions",
        "events",
        "orders-statuses",
    }
    assert [c.event for c in vendor.lifecycle_calls][:5] == [
        "installed",
        "activated",
        "config_updated",
        "deactivated",
        "uninstalled",
    ]
    messages = [line["msg"] for line in log.lines]
    assert "stop signal received; draining" in messages
    assert messages[-1] == "sidecar stopped"
    everything = backend.dump()
    assert b"inst_1" in everything
    assert ACCESS_TOKEN.encode() not in everything
    assert SHOP_SECRET_CONFIG.encode() not in everything
    assert inbound_secret.encode() not in everything
    logged = json.dumps(log.lines)
    for secret in (
        ACCESS_TOKEN,
        SHOP_SECRET_CONFIG,
        WEBHOOK_SECRET,
        APP_SECRET,
        CREDENTIALS_KEY_HEX,
    ):
        assert secret not in logged


async def test_port_in_use_is_a_clear_error(tmp_path: Path, valid_env: dict[str, str]) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", ""), **valid_env, "PORT": str(port)}
    result = await trio.run_process(
        [sys.executable, "-m", "sidecar"],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    listener.close()
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in stderr
    assert "Traceback" not in stderr
