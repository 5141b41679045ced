"""Several real `serve` processes on one PostgreSQL schema, and the fakes they talk to.

A `Cluster` starts replicas as `python -m sidecar serve` subprocesses (as
`tests/test_serve_process.py` does), each on its own free ports (`PORT=0`, `ADMIN_PORT=0`,
read back from its "sidecar ready" line), with `REPLICA_ID` naming the slot and the
incarnation (`r2`, then `r2.1` once slot 2 was restarted: two lives of one slot are two
replicas to the fake's records), a short `LEASE_TTL_SECONDS` and no scheduled syncs (only
activations' backfills and resume points make an installation due). Each process's JSON log
lines are read as they come (a full pipe would stall it) and kept.

The fakes: a `RecordingShopimind` (who pushed what, for which installation, when) in front
of `FakeShopimind`, and a `FakeVendorApp` serving `items` customers. Installations are
made by signed `installed` + `activated` webhooks, each with its own access token, so the
fake knows whose data it receives.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from sidecar.security.cipher import AesGcmCipher
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from sidecar.testing.recording import RecordingShopimind
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX
from tests.harness import inbound_headers, lifecycle, process_env, signed_headers

__all__ = [
    "ADMIN_TOKEN",
    "LEASE_TTL_SECONDS",
    "Cluster",
    "Gate",
    "Peers",
    "ProcessLog",
    "Replica",
    "open_cluster",
    "open_peers",
    "token_of",
]

LEASE_TTL_SECONDS: Final = 3.0
STARTUP_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 30.0
ADMIN_TOKEN: Final = "replicas-admin-token-" + "z" * 32
EVENT: Final = "replica_sale"
DECLARATION: Final = f"""
slug = "replicas-test"

[meta]
name = "Replicas test"
version = "1.0.0"

[[provisioning.events]]
code_name = "{EVENT}"
name = "Sale"

[[sync]]
entity = "customers"
target = "customers"
page_limit = 250

[inbound.sale]
target = "trigger_event:{EVENT}"
"""


def token_of(installation_id: str) -> str:
    """The access token ShopiMind gives `installation_id` (one per installation)."""
    return f"int_replicas_{installation_id}"


class ProcessLog:
    """A process's JSON log lines, read from its stderr as they come."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.ended = False
        self._changed = trio.Event()

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        """Read lines until the stream ends (the process is gone)."""
        buffer = b""
        try:
            while chunk := await stream.receive_some(65536):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    self._add(raw)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if buffer.strip():
                self._add(buffer)
            self.ended = True
            self._changed.set()

    def _add(self, raw: bytes) -> None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        self.lines.append(parsed if isinstance(parsed, dict) else {"raw": raw.decode("replace")})
        self._changed.set()
        self._changed = trio.Event()

    def find(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The first line seen so far for which `condition` holds."""
        return next((line for line in self.lines if condition(line)), None)

    async def until(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first line for which `condition` holds, waiting for it."""
        while True:
            found = self.find(condition)
            if found is not None:
                return found
            if self.ended:
                tail = self.lines[-20:]
                raise AssertionError(f"the process ended without such a line; last lines: {tail}")
            await self._changed.wait()

    async def until_message(self, message: str) -> dict[str, Any]:
        """The first line logged with `msg == message`."""
        return await self.until(lambda line: line.get("msg") == message)


@dataclass
class Replica:
    """One life of a replica slot: its process, log and addresses."""

    slot: int
    replica_id: str
    process: trio.Process
    log: ProcessLog
    url: str = ""
    admin_url: str = ""
    frozen: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


@dataclass
class Peers:
    """The fakes every replica talks to, served in the test's trio run."""

    api: RecordingShopimind
    vendor: FakeVendorApp
    api_url: str
    app_url: str
    gate: Gate

    def inbound_secret(self, installation_id: str) -> str:
        """The inbound secret the app received with the installation's last activation."""
        calls = [
            call
            for call in self.vendor.lifecycle_calls
            if call.event == "activated" and call.installation_id == installation_id
        ]
        assert calls, f"the app never saw {installation_id} activated"
        return str(calls[-1].inbound_secret)


class Gate:
    """ASGI wrapper: the app's requests wait until `opened` is set (replicas started one by
    one all begin syncing at the same moment, or an app hangs on a webhook)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.opened = trio.Event()
        self.waiting = 0
        """Requests held at the gate now."""

    def close(self) -> None:
        """Hold the next requests until `opened` is set again."""
        self.opened = trio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            opened = self.opened
            held = int(not opened.is_set())
            self.waiting += held
            try:
                await opened.wait()  # a checkpoint even when open, as it always was
            finally:
                self.waiting -= held
        await self.app(scope, receive, send)


@asynccontextmanager
async def open_peers(
    *, items: int, latency_seconds: float = 0.0, gated: bool = False
) -> AsyncIterator[Peers]:
    """A recording fake ShopiMind (optionally `latency_seconds` late per call) and a fake
    app serving `items` customers to every installation; with `gated`, the app answers
    nothing until `peers.gate.opened` is set."""
    api = RecordingShopimind(
        FakeShopimind(tokens=(), keep_items=0, request_log_limit=100),
        latency_seconds=latency_seconds,
    )
    vendor = FakeVendorApp(APP_SECRET, max_calls_kept=100)
    vendor.set_dataset("customers", Dataset(count=items))
    gate = Gate(vendor)
    if not gated:
        gate.opened.set()
    async with running(api) as api_url, running(gate) as app_url:
        yield Peers(
            api=api, vendor=vendor, api_url=api_url, app_url=app_url + vendor.prefix, gate=gate
        )


@dataclass
class Cluster:
    """Replica slots 1..N on one schema; `store` reads (and checks) what they wrote."""

    env: dict[str, str]
    store: PostgresStore
    peers: Peers
    nursery: trio.Nursery
    http: httpx.AsyncClient
    replicas: dict[int, Replica] = field(default_factory=dict)
    """The current life of each slot."""
    history: list[Replica] = field(default_factory=list)
    """Every life of every slot, in start order."""

    async def start(self, slot: int, **env: str) -> Replica:
        """Start (or restart) slot `slot`; return once it logged "sidecar ready" (an `info`
        line: LOG_LEVEL must stay `info` or `debug`)."""
        lives = sum(1 for replica in self.history if replica.slot == slot)
        replica_id = f"r{slot}" if lives == 0 else f"r{slot}.{lives}"
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "sidecar", "serve"],
            env=self.env | {"REPLICA_ID": replica_id} | env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert process.stderr is not None
        replica = Replica(slot=slot, replica_id=replica_id, process=process, log=ProcessLog())
        self.replicas[slot] = replica
        self.history.append(replica)
        self.nursery.start_soon(replica.log.pump, process.stderr)
        with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
            ready = await replica.log.until_message("sidecar ready")
        replica.url = str(ready["listen"][0])
        replica.admin_url = str((ready.get("admin") or [""])[0])
        return replica

    async def start_all(self, count: int) -> list[Replica]:
        """Start slots 1..count at once."""
        async with trio.open_nursery() as nursery:
            for slot in range(1, count + 1):
                nursery.start_soon(self.start, slot)
        return [self.replicas[slot] for slot in range(1, count + 1)]

    def live(self) -> list[Replica]:
        """The replicas running (not killed, not frozen), by slot."""
        return [r for _, r in sorted(self.replicas.items()) if r.alive and not r.frozen]

    def by_id(self, replica_id: str) -> Replica:
        """The life of a slot that `replica_id` names."""
        return next(r for r in self.history if r.replica_id == replica_id)

    def kill(self, slot: int) -> float:
        """SIGKILL the slot's process; return the trio time it was sent."""
        replica = self.replicas[slot]
        replica.process.send_signal(signal.SIGKILL)
        return trio.current_time()

    def freeze(self, slot: int) -> float:
        """SIGSTOP the slot's process (a GC pause, a frozen VM); return when."""
        replica = self.replicas[slot]
        replica.process.send_signal(signal.SIGSTOP)
        replica.frozen = True
        return trio.current_time()

    def thaw(self, slot: int) -> float:
        """SIGCONT a frozen process; return when."""
        replica = self.replicas[slot]
        replica.process.send_signal(signal.SIGCONT)
        replica.frozen = False
        return trio.current_time()

    async def restart(self, slot: int) -> Replica:
        """Reap the slot's dead process and start its next life."""
        with trio.fail_after(STOP_TIMEOUT_SECONDS):
            await self.replicas[slot].process.wait()
        return await self.start(slot)

    async def stop_all(self) -> None:
        """SIGTERM every live replica and wait for each to exit 0 (a graceful drain)."""
        for replica in self.replicas.values():
            if replica.frozen:
                self.thaw(replica.slot)
        live = [replica for replica in self.replicas.values() if replica.alive]
        for replica in live:
            replica.process.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT_SECONDS):
            for replica in live:
                assert await replica.process.wait() == 0, replica.log.lines[-20:]

    def holder_of(self, lease_owner: str | None) -> Replica | None:
        """The replica life a lease or run owner names (`<replica id>[/<tag>]`, or the
        `host:pid:tag` of a process before REPLICA_ID existed)."""
        if not lease_owner:
            return None
        for replica in reversed(self.history):
            if lease_owner == replica.replica_id or lease_owner.startswith(
                replica.replica_id + "/"
            ):
                return replica
            if f":{replica.pid}:" in lease_owner:
                return replica
        return None

    async def holder(self, installation_id: str) -> Replica | None:
        """The replica holding the installation's lease now (per the lease row)."""
        lease = await self.store.leases.get(f"installation:{installation_id}")
        return None if lease is None else self.holder_of(lease.owner)

    # --- traffic ----------------------------------------------------------------------------

    async def webhook(self, replica: Replica, payload: dict[str, object]) -> httpx.Response:
        """Sign `payload` as ShopiMind does and POST it to `replica`."""
        body = json.dumps(payload).encode()
        return await self.http.post(
            replica.url + "/webhook/receive", content=body, headers=signed_headers(body)
        )

    async def activate(self, replica: Replica, installation_id: str) -> str:
        """Install and activate `installation_id` through `replica` (its backfill starts);
        return the inbound secret the app received."""
        token = token_of(installation_id)
        self.peers.api.register(token, installation_id)
        for event in ("installed", "activated"):
            payload = lifecycle(event, installation_id, access_token=token, configs={})
            answer = await self.webhook(replica, payload)
            assert answer.json() == {"success": True}, (event, answer.text)
        return self.peers.inbound_secret(installation_id)

    async def inbound(
        self, replica: Replica, installation_id: str, secret: str, payload: object, key: str
    ) -> httpx.Response:
        """A signed queued `sale` call from the app, with idempotency key `key`."""
        body = json.dumps(payload).encode()
        headers = inbound_headers(
            body, secret=secret, installation_id=installation_id, idempotency_key=key
        )
        return await self.http.post(replica.url + "/inbound/sale", content=body, headers=headers)

    async def admin(self, replica: Replica, path: str) -> httpx.Response:
        """GET an admin route of `replica`."""
        return await self.http.get(
            replica.admin_url + path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        )


def replica_env(
    *,
    folder: Path,
    url: str,
    schema: str,
    peers: Peers,
    declaration_text: str = DECLARATION,
    **extra: str,
) -> dict[str, str]:
    """What every replica shares: the schema, the fakes, a short lease, no scheduled syncs."""
    declaration = folder / "integration.toml"
    declaration.write_text(declaration_text, encoding="utf-8")
    shared = {
        "PORT": "0",
        "ADMIN_PORT": "0",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LEASE_TTL_SECONDS": f"{LEASE_TTL_SECONDS:g}",
        "SYNC_INTERVAL_MINUTES": "0",
        "SYNC_WORKERS": "4",
        "DRAIN_TIMEOUT_SECONDS": "2",
        "LOG_LEVEL": "info",
    }
    env = process_env(
        database=folder / "unused.sqlite",
        api_url=peers.api_url,
        app_url=peers.app_url,
        declaration=declaration,
        **(shared | extra),
    )
    del env["DATABASE_PATH"]
    return env | {"DATABASE_URL": url, "DATABASE_SCHEMA": schema}


@asynccontextmanager
async def open_cluster(
    *,
    folder: Path,
    url: str,
    schema: str,
    peers: Peers,
    declaration_text: str = DECLARATION,
    **extra: str,
) -> AsyncIterator[Cluster]:
    """A cluster with no replica started yet; every process is killed at the end."""
    cipher = AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    # Opened first: the schema is migrated once, before any replica starts.
    store = await open_postgres_store(url, schema=schema, cipher=cipher, pool_size=2)
    try:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            trio.open_nursery() as nursery,
        ):
            cluster = Cluster(
                env=replica_env(
                    folder=folder,
                    url=url,
                    schema=schema,
                    peers=peers,
                    declaration_text=declaration_text,
                    **extra,
                ),
                store=store,
                peers=peers,
                nursery=nursery,
                http=http,
            )
            try:
                yield cluster
            finally:
                with trio.CancelScope(shield=True):
                    for replica in cluster.history:
                        if replica.alive:
                            replica.process.send_signal(signal.SIGCONT)
                            replica.process.kill()
                        await replica.process.wait()
    finally:
        await store.aclose()
