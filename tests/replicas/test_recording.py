"""The recording fake ShopiMind the multi-process tests judge by: it must attribute each
write to its installation and replica, and see two replicas writing at once."""

from __future__ import annotations

import httpx
import trio

from sidecar.testing.recording import (
    UNKNOWN_REPLICA,
    Push,
    RecordingShopimind,
    overlapping,
    replica_of,
)
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind


def test_the_replica_is_read_from_the_user_agent() -> None:
    assert replica_of("shopimind-sidecar/1.2.0 (replica/r2.1)") == "r2.1"
    assert replica_of("shopimind-sidecar/1.2.0 (replica/host:12:ab12cd34)") == "host:12:ab12cd34"
    assert replica_of("shopimind-sidecar/1.2.0") == UNKNOWN_REPLICA
    assert replica_of(None) == UNKNOWN_REPLICA


async def test_writes_are_recorded_with_installation_replica_and_times() -> None:
    api = RecordingShopimind(FakeShopimind(tokens=()), latency_seconds=0.01)
    api.register("tok_a", "inst_a")
    async with running(api) as url, httpx.AsyncClient(base_url=url + "/v1/") as http:

        async def push(items: list[dict[str, object]], replica: str) -> int:
            headers = {"spm-api-key": "tok_a", "user-agent": f"sidecar/1 (replica/{replica})"}
            return (await http.post("customers", json=items, headers=headers)).status_code

        assert await push([{"id": "c1"}, {"id": "c2"}], "r1") == 200
        assert await push([{"id": "c2"}, {"id": "c3"}], "r2") == 200
        trigger = await http.post(
            "events/trigger/sale", json={"seq": 1}, headers={"spm-api-key": "tok_a"}
        )
        assert trigger.status_code == 404  # no such event: recorded all the same
        refused = await http.post("customers", json=[{"id": "x"}], headers={"spm-api-key": "no"})
        assert refused.status_code == 401
        with trio.fail_after(5):
            await api.wait_until(lambda: len(api.pushes()) == 4)

    first, second, event, stranger = api.pushes()
    assert (first.installation, first.replica, first.ids) == ("inst_a", "r1", ("c1", "c2"))
    assert (second.replica, second.kind, second.status) == ("r2", "bulk", 200)
    assert first.arrived + 0.01 <= first.answered <= second.arrived
    assert (event.kind, event.body, event.replica) == ("event", {"seq": 1}, UNKNOWN_REPLICA)
    assert api.events("inst_a") == []  # only accepted triggers count
    assert (stranger.installation, stranger.status) == ("?", 401)
    assert api.state("inst_a") == {"c1", "c2", "c3"}  # upserts: each id once
    assert api.state("?") == set()  # a refused push changes nothing
    assert overlapping(api.pushes(kind="bulk", installation="inst_a")) == []


def _push(replica: str, arrived: float, answered: float, installation: str = "i") -> Push:
    return Push(
        installation=installation,
        replica=replica,
        method="POST",
        path="customers",
        kind="bulk",
        arrived=arrived,
        answered=answered,
        status=200,
    )


def test_overlapping_writes_of_two_replicas_are_found() -> None:
    # r1 writes concurrently with itself (chunks in flight): fine; r2 starts after r1's last
    # answer: fine; r1 again while r2's write is still unanswered: an overlap.
    writes = [
        _push("r1", 0.0, 2.0),
        _push("r1", 0.5, 1.0),
        _push("r2", 2.5, 3.5),
        _push("r2", 3.0, 4.5),
        _push("r1", 4.0, 5.0),
        _push("r3", 0.0, 9.0, installation="other"),
    ]
    found = overlapping(writes)
    assert [(o.installation, o.first.replica, o.second.replica) for o in found] == [
        ("i", "r2", "r1")
    ]
    assert found[0].first.answered == 4.5
    assert overlapping(writes[:4]) == []
