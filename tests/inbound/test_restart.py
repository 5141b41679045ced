"""Queued events survive a SIGKILL: a real `python -m sidecar` accepts them while ShopiMind
hangs, is killed mid-delivery, and a new process on the same database delivers them all,
in order, once each — the one cut off in flight included."""

from __future__ import annotations

import json
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
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, inbound_headers, lifecycle, process_env, signed_headers

TIMEOUT_SECONDS = 30
TRIGGER = "events/trigger/acme_sale"


class JsonLines:
    """The process's JSON log lines (stderr), read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.lines: list[dict[str, object]] = []

    def count(self, message: str) -> int:
        return sum(1 for line in self.lines if line.get("msg") == message)

    async def until(self, message: str, count: int = 1) -> dict[str, object]:
        """Read until `message` was logged `count` times; return the last such line."""
        while self.count(message) < count:
            while b"\n" not in self._buffer:
                chunk = await self._stream.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"process ended before logging {message!r}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\n", 1)
            self.lines.append(json.loads(raw))
        return [line for line in self.lines if line.get("msg") == message][-1]


@asynccontextmanager
async def sidecar(env: dict[str, str]) -> AsyncIterator[tuple[trio.Process, JsonLines, str]]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "sidecar", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    log = JsonLines(process.stderr)
    try:
        with trio.fail_after(TIMEOUT_SECONDS):
            ready = await log.until("sidecar ready")
        yield process, log, str(ready["listen"][0])  # type: ignore[index]
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def test_queued_events_are_all_delivered_after_a_sigkill(
    tmp_path: Path, backend: Backend
) -> None:
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    async with running(fake) as api_url, running(vendor) as app_url:
        env = process_env(
            database=tmp_path / "sidecar.sqlite",
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            SYNC_INTERVAL_MINUTES="0",
        )
        env = backend.env(env)
        ids: list[int] = []
        async with sidecar(env) as (process, _, base):
            async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_SECONDS) as client:
                for event in ("installed", "activated"):
                    body = json.dumps(lifecycle(event)).encode()
                    answer = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    assert answer.json() == {"success": True}
                secret = str(vendor.lifecycle_calls[-1].inbound_secret)
                # ShopiMind hangs: the first delivery is in flight when the process dies.
                fake.slow_next(1, seconds=3600, path=TRIGGER)
                for n, action in enumerate(["sale", "order", "sale", "sale", "order", "sale"]):
                    payload = {"n": n} if action == "sale" else {"order_id": f"o{n}"}
                    body = json.dumps(payload).encode()
                    answer = await client.post(
                        f"/inbound/{action}",
                        content=body,
                        headers=inbound_headers(body, secret=secret),
                    )
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["id"])
            with trio.fail_after(TIMEOUT_SECONDS):
                # Another process: nothing to wait on but what the fake API has seen.
                while not fake.requests_to(TRIGGER):  # noqa: ASYNC110
                    await trio.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
        assert fake.triggers == []  # the hung attempt never got through

        async with sidecar(env) as (process, log, base):
            with trio.fail_after(TIMEOUT_SECONDS):
                await log.until("inbound event delivered", len(ids))
            async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT_SECONDS) as client:
                states = []
                for event_id in ids:
                    headers = inbound_headers(b"", secret=secret)
                    answer = await client.get(f"/inbound/events/{event_id}", headers=headers)
                    states.append(answer.json()["event"]["status"])
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(TIMEOUT_SECONDS):
                assert await process.wait() == 0
    assert states == ["delivered"] * len(ids)
    assert [payload["n"] for _, payload in fake.triggers] == [0, 2, 3, 5]
    assert [item["order_id"] for item in fake.items("orders")] == ["o1", "o4"]
    delivered = [line["event_id"] for line in log.lines if line["msg"] == "inbound event delivered"]
    assert delivered == ids  # one installation: in the order the app sent them
