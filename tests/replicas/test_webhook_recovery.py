"""A replica killed (SIGKILL) or hung (SIGSTOP) while the app hangs on an activation
webhook leaves that webhook's claim uncompleted. ShopiMind's resend, sent to another
replica once the first one's heartbeat lapsed, is processed there at once: not answered
as a replay for the claim's stale time (WEBHOOK_CLAIM_STALE_SECONDS, 12 minutes)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import httpx
import pytest
import trio

from tests.harness import lifecycle, signed_headers
from tests.replicas.cluster import Cluster, open_cluster, open_peers, token_of
from tests.replicas.conftest import Database

INSTALLATION = "inst_recovery"
TIMEOUT_SECONDS = 60


async def _until_dead(cluster: Cluster, replica_id: str) -> None:
    """Until the replicas table says `replica_id` is not alive (its heartbeat lapsed)."""
    with trio.fail_after(TIMEOUT_SECONDS):
        while any(r.alive for r in await cluster.store.replicas.list() if r.id == replica_id):  # noqa: ASYNC110
            await trio.sleep(0.1)


@pytest.mark.parametrize("trouble", ["kill", "freeze"])
async def test_a_webhook_left_by_a_dead_replica_is_processed_by_another_on_the_resend(
    tmp_path: Path, database: Database, trouble: str
) -> None:
    async with (
        open_peers(items=10) as peers,
        open_cluster(
            folder=tmp_path, url=database.url, schema=database.schema, peers=peers
        ) as cluster,
    ):
        first, second = await cluster.start_all(2)
        token = token_of(INSTALLATION)
        peers.api.register(token, INSTALLATION)
        installed = lifecycle("installed", INSTALLATION, access_token=token, configs={})
        assert (await cluster.webhook(first, installed)).json() == {"success": True}

        body = json.dumps(
            lifecycle("activated", INSTALLATION, access_token=token, configs={})
        ).encode()
        headers = signed_headers(body)  # one signature: ShopiMind's resend of one delivery

        async def send_to_first() -> None:
            # Killed mid-webhook: ShopiMind gets no answer (frozen: none before the end).
            with contextlib.suppress(httpx.HTTPError):
                await cluster.http.post(
                    first.url + "/webhook/receive", content=body, headers=headers
                )

        peers.gate.close()  # the app hangs on the activation
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_to_first)
            with trio.fail_after(TIMEOUT_SECONDS):
                while peers.gate.waiting == 0:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            if trouble == "kill":
                cluster.kill(first.slot)
            else:
                cluster.freeze(first.slot)
            await _until_dead(cluster, first.replica_id)
            peers.gate.opened.set()

            resent = await cluster.http.post(
                second.url + "/webhook/receive", content=body, headers=headers
            )
            assert resent.json() == {"success": True}
            nursery.cancel_scope.cancel()

        installation = await cluster.store.installations.get(INSTALLATION)
        assert installation is not None
        assert installation.status == "active"  # processed by the second replica
        assert not second.log.find(lambda line: "webhook replayed" in str(line.get("msg")))
        # Completed now: a further resend is a replay.
        again = await cluster.http.post(
            second.url + "/webhook/receive", content=body, headers=headers
        )
        assert again.json() == {"success": True}
        assert second.log.find(lambda line: "webhook replayed" in str(line.get("msg")))
