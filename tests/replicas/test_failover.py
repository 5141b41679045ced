"""A replica holding an installation mid-backfill dies (SIGKILL) or hangs (SIGSTOP past the
lease): another replica takes the backfill over and completes it. The hung one, resumed
(SIGCONT), commits nothing more for that installation: the end state is as if it had died.
"""

from __future__ import annotations

from pathlib import Path

import trio

from sidecar.testing.recording import Push
from tests.replicas.cluster import LEASE_TTL_SECONDS, Cluster, Replica, open_cluster, open_peers
from tests.replicas.conftest import Database

ITEMS = 5_000
LATENCY_SECONDS = 0.15  # ShopiMind answers late: the backfill lasts through the takeover
INSTALLATION = "inst_failover"
PUSHES_BEFORE_TROUBLE = 10  # two pages of 250 pushed, in chunks of 50
TIMEOUT_SECONDS = 120


def _all_items() -> set[str]:
    return {f"item-{n}" for n in range(ITEMS)}


async def _holder_mid_backfill(cluster: Cluster) -> Replica:
    """The replica holding the installation once a few pages went out."""
    api = cluster.peers.api
    with trio.fail_after(TIMEOUT_SECONDS):
        await api.wait_until(
            lambda: len(api.pushes(kind="bulk", installation=INSTALLATION)) >= PUSHES_BEFORE_TROUBLE
        )
    holder = await cluster.holder(INSTALLATION)
    assert holder is not None, "the backfill runs, yet nobody holds the installation's lease"
    return holder


async def _first_push_by_another(cluster: Cluster, holder: Replica, since: float) -> Push:
    """The first bulk push for the installation, after `since`, by another replica."""
    api = cluster.peers.api

    def others() -> list[Push]:
        return [
            push
            for push in api.pushes(kind="bulk", installation=INSTALLATION)
            if push.arrived > since and push.replica != holder.replica_id
        ]

    with trio.move_on_after(TIMEOUT_SECONDS):
        await api.wait_until(lambda: bool(others()))
    assert others(), f"no other replica took {INSTALLATION} over in {TIMEOUT_SECONDS} s"
    first = others()[0]
    known = {replica.replica_id for replica in cluster.history}
    assert first.replica in known, f"the push names replica {first.replica!r}: {known}"
    return first


async def _backfill_done(cluster: Cluster) -> None:
    """Every item is at ShopiMind and the installation's last run closed `ok`."""
    api = cluster.peers.api
    with trio.fail_after(TIMEOUT_SECONDS):
        await api.wait_until(lambda: api.state(INSTALLATION) == _all_items())
        while True:
            runs = await cluster.store.runs.recent(INSTALLATION)
            if runs and runs[0].status == "ok" and all(r.status != "running" for r in runs):
                return
            await trio.sleep(0.1)


async def _snapshot(cluster: Cluster) -> tuple[object, ...]:
    """What the store holds for the installation's sync."""
    store = cluster.store
    return (
        await store.cursors.list(INSTALLATION),
        await store.cursors.resume_points(INSTALLATION),
        await store.runs.recent(INSTALLATION, limit=100),
        await store.state.keys(INSTALLATION),
    )


async def _idle(cluster: Cluster, replica: Replica) -> bool:
    """Wait (bounded) until `replica` has no sync worker busy; False if it never gets there."""
    with trio.move_on_after(30):
        while True:
            answer = await cluster.admin(replica, "/admin/overview")
            if answer.status_code == 200 and answer.json()["sync_workers"]["in_use"] == 0:
                return True
            await trio.sleep(1.0)  # the admin API allows one call a second
    return False


async def test_a_killed_holder_is_taken_over_within_the_lease(
    tmp_path: Path, database: Database
) -> None:
    async with (
        open_peers(items=ITEMS, latency_seconds=LATENCY_SECONDS) as peers,
        open_cluster(
            folder=tmp_path, url=database.url, schema=database.schema, peers=peers
        ) as cluster,
    ):
        replicas = await cluster.start_all(3)
        await cluster.activate(replicas[0], INSTALLATION)
        holder = await _holder_mid_backfill(cluster)
        killed_at = cluster.kill(holder.slot)
        taker = await _first_push_by_another(cluster, holder, since=killed_at)
        takeover = taker.arrived - killed_at
        await _backfill_done(cluster)
        runs = await cluster.store.runs.recent(INSTALLATION)
        await cluster.stop_all()

    target = LEASE_TTL_SECONDS * 4 / 3
    print(  # noqa: T201 - the measured figure, reported (never asserted: timings drift)
        f"\ntakeover after SIGKILL of the holder: {takeover:.2f} s "
        f"(LEASE_TTL_SECONDS={LEASE_TTL_SECONDS:g}; TTL + TTL/3 = {target:.1f} s: "
        f"{'within' if takeover <= target else 'BEYOND'})"
    )
    assert peers.api.state(INSTALLATION) == _all_items()
    assert all(run.status != "running" for run in runs)
    owners = [cluster.holder_of(run.owner) for run in runs]
    assert holder in owners  # its run was closed by someone else
    killed_run = runs[owners.index(holder)]
    assert killed_run.status == "interrupted"


async def test_a_frozen_holder_commits_nothing_once_resumed(
    tmp_path: Path, database: Database
) -> None:
    async with (
        open_peers(items=ITEMS, latency_seconds=LATENCY_SECONDS) as peers,
        open_cluster(
            folder=tmp_path, url=database.url, schema=database.schema, peers=peers
        ) as cluster,
    ):
        replicas = await cluster.start_all(2)
        await cluster.activate(replicas[0], INSTALLATION)
        zombie = await _holder_mid_backfill(cluster)
        frozen_at = cluster.freeze(zombie.slot)
        taker = await _first_push_by_another(cluster, zombie, since=frozen_at)
        await _backfill_done(cluster)
        before = await _snapshot(cluster)

        seen = len(zombie.log.lines)
        cluster.thaw(zombie.slot)
        settled = await _idle(cluster, zombie)
        after = await _snapshot(cluster)
        await cluster.stop_all()

    late = [
        push
        for push in peers.api.pushes(installation=INSTALLATION)
        if push.replica == zombie.replica_id and push.arrived >= taker.arrived
    ]
    assert late == [], f"the zombie wrote after the takeover: {late[:3]}"
    assert peers.api.state(INSTALLATION) == _all_items()  # every item, once in the end state
    assert after == before, "the zombie changed the installation's sync state once resumed"
    assert settled, f"the zombie kept a sync worker busy: {zombie.log.lines[-10:]}"
    stopped = [
        line
        for line in zombie.log.lines[seen:]
        if line.get("msg") == "lease lost mid-run; this installation's work stopped"
    ]
    assert [line.get("lease") for line in stopped] == [f"installation:{INSTALLATION}"]
    runs = before[2]
    assert isinstance(runs, list)
    assert [cluster.holder_of(run.owner) for run in runs[:2]] == [
        cluster.by_id(taker.replica),
        zombie,
    ]
    assert [run.status for run in runs[:2]] == ["ok", "interrupted"]
