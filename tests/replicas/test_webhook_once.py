"""One signed webhook sent to three replicas at the same moment is processed once: the
anti-replay claim lives in the shared database, not in a replica's memory."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from tests.harness import lifecycle, signed_headers
from tests.replicas.cluster import open_cluster, open_peers, token_of
from tests.replicas.conftest import Database

ITEMS = 120
INSTALLATION = "inst_once"


async def test_the_same_webhook_at_three_replicas_is_processed_once(
    tmp_path: Path, database: Database
) -> None:
    async with (
        open_peers(items=ITEMS) as peers,
        open_cluster(
            folder=tmp_path, url=database.url, schema=database.schema, peers=peers
        ) as cluster,
    ):
        replicas = await cluster.start_all(3)
        peers.api.register(token_of(INSTALLATION), INSTALLATION)
        installed = lifecycle(
            "installed", INSTALLATION, access_token=token_of(INSTALLATION), configs={}
        )
        assert (await cluster.webhook(replicas[0], installed)).json() == {"success": True}

        body = json.dumps(
            lifecycle("activated", INSTALLATION, access_token=token_of(INSTALLATION), configs={})
        ).encode()
        headers = signed_headers(body)  # one signature: ShopiMind's resend of one delivery
        answers: list[object] = []

        async def send(url: str) -> None:
            answer = await cluster.http.post(
                url + "/webhook/receive", content=body, headers=headers
            )
            answers.append(answer.json())

        async with trio.open_nursery() as nursery:
            for replica in replicas:
                nursery.start_soon(send, replica.url)
        assert answers == [{"success": True}] * 3

        # The one activation's backfill: every item once, by one run.
        with trio.fail_after(60):
            await peers.api.wait_until(lambda: len(peers.api.state(INSTALLATION)) == ITEMS)
            while [r.status for r in await cluster.store.runs.recent(INSTALLATION)] != ["ok"]:  # noqa: ASYNC110
                await trio.sleep(0.1)
        await cluster.stop_all()

    activations = [
        call
        for call in peers.vendor.lifecycle_calls
        if call.event == "activated" and call.installation_id == INSTALLATION
    ]
    assert len(activations) == 1  # the app was told once
    replayed = [
        replica.replica_id
        for replica in replicas
        if replica.log.find(lambda line: str(line.get("msg")).startswith("webhook replayed"))
    ]
    assert len(replayed) == 2, replayed
    bulk = peers.api.pushes(kind="bulk", installation=INSTALLATION)
    pushed = [item for push in bulk for item in push.ids]
    assert sorted(pushed) == sorted(f"item-{n}" for n in range(ITEMS))  # one backfill, not two
    events = [p for p in peers.api.pushes(installation=INSTALLATION) if p.path == "events"]
    assert len(events) == 1  # provisioned once
