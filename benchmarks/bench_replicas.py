"""Several replicas on one PostgreSQL: does the work spread, and how fast is a takeover?

Real processes, real clock: `python -m sidecar serve` replicas on a throwaway PostgreSQL
cluster (as the tests start theirs), the fake app and a recording fake ShopiMind on
loopback in this process, ShopiMind answering every call LATENCY_MS late.

1. Sweep: SWEEP_INSTALLATIONS installations with SWEEP_ITEMS customers each, every one
   due (an activation's full backfill, written to the store), with 1 replica and then
   3 replicas, each with SYNC_WORKERS=WORKERS, SWEEP_ROUNDS times interleaved. The app
   holds its answers until every replica is ready, so the clock starts for all at once;
   the sweep ends when the fake holds every item. Target: 3 replicas ≥ 2.5× faster
   (best against best).
2. Failover: one installation backfilling FAILOVER_ITEMS items on 3 replicas; the holder
   of its lease is killed (SIGKILL) after a few pages; seconds until another replica pushes
   its next page, FAILOVER_TRIALS times. Target: ≤ TTL + TTL/3.

    make bench BENCH=replicas            # ~3 minutes here
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import trio

from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store import InstallationUpsert
from sidecar.store.postgres.store import open_postgres_store
from sidecar.sync.requests import DurableSyncRequests
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.postgres import PostgresCluster, new_schema, postgres_cluster
from tests.replicas.cluster import Cluster, Peers, open_cluster, open_peers, token_of

SWEEP_INSTALLATIONS = 48
SWEEP_ITEMS = 1_000
WORKERS = 4
"""SYNC_WORKERS of every replica (the default), the same for 1 and 3 replicas."""
SWEEP_ROUNDS = 2
"""Sweeps of 1 and 3 replicas, interleaved; the best of each is compared."""
LATENCY_MS = 50
FAILOVER_ITEMS = 5_000
FAILOVER_TRIALS = 3
TTL_SECONDS = 6.0
PAGE_LIMIT = 50
TIMEOUT_SECONDS = 600
DECLARATION = f"""
slug = "bench-replicas"

[meta]
name = "Bench replicas"
version = "1.0.0"

[[sync]]
entity = "customers"
target = "customers"
page_limit = {PAGE_LIMIT}
"""


async def seed(url: str, schema: str, peers: Peers, installations: list[str]) -> None:
    """Active installations, each with its token and an activation's sync request."""
    store = await open_postgres_store(
        url, schema=schema, cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    requests = DurableSyncRequests(store.state)
    try:
        for installation_id in installations:
            peers.api.register(token_of(installation_id), installation_id)
            await store.installations.upsert(
                InstallationUpsert(installation_id=installation_id, status="active")
            )
            await store.state.write_many(
                installation_id, secrets={ACCESS_TOKEN: token_of(installation_id)}
            )
            await store.state.set_json(
                installation_id, PROVISIONING_IDS, {"sourceIds": {}, "defIds": {}}
            )
            await requests.request(installation_id, full=True)
    finally:
        await store.aclose()


Sweep = dict[str, float]


def _env(workers: int) -> dict[str, str]:
    return {
        "SYNC_WORKERS": str(workers),
        "LEASE_TTL_SECONDS": f"{TTL_SECONDS:g}",
    }


def _cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (the fakes) and of its reaped children (the replicas)."""
    times = os.times()
    return times.user + times.system, times.children_user + times.children_system


async def sweep(server: PostgresCluster, replicas: int, workers: int) -> dict[str, float]:
    """Seconds for `replicas` replicas of `workers` sync workers to backfill everything."""
    installations = [f"sweep_{n:02d}" for n in range(SWEEP_INSTALLATIONS)]
    schema = new_schema()
    with tempfile.TemporaryDirectory() as folder:
        async with open_peers(
            items=SWEEP_ITEMS, latency_seconds=LATENCY_MS / 1000, gated=True
        ) as peers:
            await seed(server.url, schema, peers, installations)
            async with open_cluster(
                folder=Path(folder),
                url=server.url,
                schema=schema,
                peers=peers,
                declaration_text=DECLARATION,
                **_env(workers),
            ) as cluster:
                await cluster.start_all(replicas)
                load = os.getloadavg()[0]
                cpu_before = _cpu_seconds()
                started = trio.current_time()
                peers.gate.opened.set()
                api = peers.api
                with trio.fail_after(TIMEOUT_SECONDS):
                    await api.wait_until(
                        lambda: all(len(api.state(i)) == SWEEP_ITEMS for i in installations)
                    )
                pushes = api.pushes(kind="bulk")
                finished = max(push.answered for push in pushes)
                fakes_cpu = _cpu_seconds()[0] - cpu_before[0]
                await cluster.stop_all()
    # Reaped at stop: the replicas' CPU from their start, which is mostly the sweep.
    replicas_cpu = _cpu_seconds()[1] - cpu_before[1]
    writers: dict[str, int] = {}
    for push in pushes:
        writers[push.replica] = writers.get(push.replica, 0) + 1
    return {
        "seconds": finished - started,
        "pushes": len(pushes),
        "items": sum(len(push.ids) for push in pushes),
        "busiest_share": max(writers.values()) / len(pushes),
        "replicas_cpu": replicas_cpu,
        "fakes_cpu": fakes_cpu,
        "load": load,
    }


async def _failover_once(server: PostgresCluster) -> float:
    installation = "failover"
    schema = new_schema()
    with tempfile.TemporaryDirectory() as folder:
        async with open_peers(items=FAILOVER_ITEMS, latency_seconds=LATENCY_MS / 1000) as peers:
            await seed(server.url, schema, peers, [installation])
            async with open_cluster(
                folder=Path(folder),
                url=server.url,
                schema=schema,
                peers=peers,
                declaration_text=DECLARATION,
                **_env(WORKERS),
            ) as cluster:
                await cluster.start_all(3)
                seconds = await _kill_holder(cluster, installation)
                await cluster.stop_all()
    return seconds


async def _kill_holder(cluster: Cluster, installation: str) -> float:
    api = cluster.peers.api
    with trio.fail_after(TIMEOUT_SECONDS):
        await api.wait_until(lambda: len(api.pushes(kind="bulk", installation=installation)) >= 6)
    holder = await cluster.holder(installation)
    assert holder is not None, "nobody holds the lease of the running backfill"
    killed_at = cluster.kill(holder.slot)

    def next_page() -> list[float]:
        return [
            push.arrived
            for push in api.pushes(kind="bulk", installation=installation)
            if push.arrived > killed_at and push.replica != holder.replica_id
        ]

    with trio.fail_after(TIMEOUT_SECONDS):
        await api.wait_until(lambda: bool(next_page()))
    return next_page()[0] - killed_at


async def bench() -> str:
    began = time.perf_counter()
    with postgres_cluster() as server:
        sweeps: list[tuple[int, Sweep]] = []
        for _ in range(SWEEP_ROUNDS):
            for replicas in (1, 3):
                sweeps.append((replicas, await sweep(server, replicas, WORKERS)))
        takeovers = [await _failover_once(server) for _ in range(FAILOVER_TRIALS)]
    return report(sweeps, takeovers, began)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _row(replicas: int, r: Sweep) -> str:
    return (
        f"| {replicas} | {r['seconds']:.1f} s | {r['pushes']:,.0f} | "
        f"{r['items']:,.0f} | {r['busiest_share']:.0%} | {r['replicas_cpu']:.1f} / "
        f"{r['fakes_cpu']:.1f} | {r['load']:.1f} |"
    )


def report(sweeps: list[tuple[int, Sweep]], takeovers: list[float], began: float) -> str:
    best = {n: min(r["seconds"] for m, r in sweeps if m == n) for n in (1, 3)}
    speedup = best[1] / best[3]
    target = TTL_SECONDS * 4 / 3
    worst = max(takeovers)
    lines = [
        "## Several replicas on one PostgreSQL",
        "",
        f"Real `serve` processes on a throwaway PostgreSQL cluster on loopback; the fake app "
        f"and a recording fake ShopiMind in the benchmark's process, ShopiMind answering "
        f"every call {LATENCY_MS} ms late; `LEASE_TTL_SECONDS={TTL_SECONDS:g}`, "
        f"`page_limit = {PAGE_LIMIT}`.",
        "",
        f"Sweep: {SWEEP_INSTALLATIONS} installations × {SWEEP_ITEMS:,} customers, each due "
        f"(a full backfill), with 1 replica and with 3, each with `SYNC_WORKERS={WORKERS}`, "
        f"{SWEEP_ROUNDS} rounds interleaved; the clock starts when every replica is ready "
        "and ends when ShopiMind holds every item. "
        "CPU seconds: of the replicas (from their start) and of the benchmark's process (the "
        "fakes), during the sweep; the load average is the machine's, others' work included.",
        "",
        "| replicas | sweep | bulk pushes | items pushed | "
        "busiest replica's share | CPU s: replicas / fakes | load average at start |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(replicas, r) for replicas, r in sweeps),
        "",
        "The sweep scales with replicas while it waits on ShopiMind; once the machine's two "
        "cores are busy (the replicas, PostgreSQL, the fakes, and whatever else runs on the "
        "machine: see the load average), more replicas only share the same CPU.",
        "",
        f"Failover: one installation backfilling {FAILOVER_ITEMS:,} customers on 3 replicas "
        f"(`SYNC_WORKERS={WORKERS}`); the holder of its lease is killed with SIGKILL "
        "after a few pages; seconds until another replica pushes its next page "
        f"({FAILOVER_TRIALS} trials): "
        + ", ".join(f"{t:.1f} s" for t in takeovers)
        + f" (median {statistics.median(takeovers):.1f} s).",
        "",
        f"- 3 replicas sweep **{speedup:.2f}×** faster than 1 (best of {SWEEP_ROUNDS} each: "
        f"{best[1]:.1f} s and {best[3]:.1f} s; target ≥ 2.5×: {verdict(speedup >= 2.5)})",
        f"- takeover after a SIGKILL at most **{worst:.1f} s** (target ≤ TTL + TTL/3 = "
        f"{target:.1f} s: {verdict(worst <= target)})",
        "",
        f"_Run took {time.perf_counter() - began:.0f} s._",
    ]
    return "\n".join(lines)


def main() -> None:
    print(trio.run(bench))


if __name__ == "__main__":
    main()
