"""Fencing, on both backends: every fenced write of LEASES-SPEC.md refuses a stale fence
(its lease was taken over) with LeaseLostError and changes no row, and succeeds with the
current one. Without a fence the writes are unchecked (the rest of the suite)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sidecar.errors import LeaseLostError, StoreError
from sidecar.store.interface import Store
from sidecar.store.records import (
    Fence,
    InstallationUpsert,
    RejectedItemInput,
    ResumePoint,
)
from tests.conftest import FakeClock, outbox_entry
from tests.store.conftest import execute

NAME = "installation:i"
TTL = 60.0
TABLES = (
    "installations",
    "installation_state",
    "sync_cursors",
    "sync_resume_points",
    "sync_runs",
    "inbound_events",
    "inbound_outbox",
    "rejected_items",
    "backlog_tallies",
)


@dataclass(frozen=True)
class Seeded:
    """What every case may act on: one installation with a row of each kind."""

    run_id: int
    event_ids: tuple[int, ...]


def _point(**changes: Any) -> ResumePoint:
    values: dict[str, Any] = {
        "installation_id": "i",
        "entity": "orders",
        "source_key": "",
        "run_kind": "full",
        "window_since": "2025-11-26T09:00:00.000Z",
        "window_until": "2026-11-26T09:00:00.000Z",
        "next_token": "page-3",
        "pages": 2,
        "items": 1000,
    }
    return ResumePoint(**(values | changes))


async def _seed(store: Store) -> Seeded:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    await store.state.set("i", "plain", "v1")
    await store.state.set_json("i", "doc", {"a": {"b": 1}})
    await store.state.set("i", "request", '{"full": true}')
    await store.cursors.record_success(
        "i", "orders", "", synced_at="2026-11-25T09:00:00.000Z", items=3
    )
    await store.cursors.save_resume_point(_point())
    run_id = await store.runs.start("i", "full", owner="old")
    event_ids = []
    for key in ("e1", "e2", "e3"):
        claim = await store.outbox.enqueue(outbox_entry(key))
        event_ids.append(claim.id)
    return Seeded(run_id=run_id, event_ids=tuple(event_ids))


Write = Callable[[Store, Seeded, Fence], Awaitable[object]]
REJECTED = (RejectedItemInput(item={"id": 7}, reason="bad email"),)

WRITES: dict[str, Write] = {
    "Cursors.record_success": lambda s, _, f: s.cursors.record_success(
        "i", "orders", "", synced_at="2026-11-26T09:00:00.000Z", items=9, fence=f
    ),
    "Cursors.record_failure": lambda s, _, f: s.cursors.record_failure(
        "i", "orders", "", error="503", items=0, fence=f
    ),
    "Cursors.record_failure(keep_resume_point=False)": lambda s, _, f: s.cursors.record_failure(
        "i", "orders", "", error="rejected", items=0, keep_resume_point=False, fence=f
    ),
    "Cursors.reset": lambda s, _, f: s.cursors.reset("i", "orders", "", fence=f),
    "Cursors.save_resume_point": lambda s, _, f: s.cursors.save_resume_point(
        _point(next_token="page-4", pages=3), fence=f
    ),
    "Runs.start": lambda s, _, f: s.runs.start("i", "incremental", owner="new", fence=f),
    "Runs.finish": lambda s, seeded, f: s.runs.finish(seeded.run_id, "ok", {"sent": 1}, fence=f),
    "Runs.close_running": lambda s, _, f: s.runs.close_running("i", "taken over", fence=f),
    "Outbox.mark_delivered": lambda s, seeded, f: s.outbox.mark_delivered(
        seeded.event_ids[0], note="partly", rejected=REJECTED, fence=f
    ),
    "Outbox.mark_failed": lambda s, seeded, f: s.outbox.mark_failed(
        seeded.event_ids[1], error="503", retry_at="2026-11-26T09:05:00.000Z", fence=f
    ),
    "Outbox.mark_dead": lambda s, seeded, f: s.outbox.mark_dead(
        seeded.event_ids[2], error="refused", rejected=REJECTED, fence=f
    ),
    "DeadLetter.add": lambda s, seeded, f: s.dead_letter.add(
        "i",
        run_id=seeded.run_id,
        entity="orders",
        source_key="",
        target="orders",
        items=REJECTED,
        fence=f,
    ),
    "State.set": lambda s, _, f: s.state.set("i", "plain", "v2", fence=f),
    "State.set_json": lambda s, _, f: s.state.set_json("i", "doc", [1, 2], fence=f),
    "State.merge_json": lambda s, _, f: s.state.merge_json("i", "doc", {"a": {"c": 2}}, fence=f),
    "State.write_many": lambda s, _, f: s.state.write_many(
        "i", values={"plain": "v3"}, secrets={"token": "s3cret"}, delete=("doc",), fence=f
    ),
    "State.delete": lambda s, _, f: s.state.delete("i", "plain", fence=f),
    "State.take": lambda s, _, f: s.state.take("i", "request", fence=f),
    "Installations.set_external_account": lambda s, _, f: s.installations.set_external_account(
        "i", "acct-1", "Acme", fence=f
    ),
}


async def _rows(store: Store) -> dict[str, list[str]]:
    """Every row of the tables fenced writes touch, as sortable text."""
    return {
        table: sorted(repr(row) for row in await execute(store, f"SELECT * FROM {table}"))
        for table in TABLES
    }


async def _stale_and_current(store: Store, clock: FakeClock) -> tuple[Fence, Fence]:
    """The fence of a holder whose lease expired and was taken over, and the new one's."""
    old = await store.leases.acquire(NAME, "old", ttl_seconds=TTL)
    assert old is not None
    clock.advance(seconds=TTL + 1)
    new = await store.leases.acquire(NAME, "new", ttl_seconds=TTL)
    assert new is not None
    assert new.fence.epoch == old.fence.epoch + 1
    return old.fence, new.fence


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
async def test_a_stale_fence_changes_nothing_and_the_current_one_writes(
    store: Store, clock: FakeClock, write: str
) -> None:
    seeded = await _seed(store)
    stale, current = await _stale_and_current(store, clock)
    before = await _rows(store)
    with pytest.raises(LeaseLostError) as refused:
        await WRITES[write](store, seeded, stale)
    assert (refused.value.name, refused.value.owner, refused.value.epoch) == (NAME, "old", 1)
    assert not isinstance(refused.value, StoreError)  # "log and carry on" must not eat it
    assert await _rows(store) == before
    await WRITES[write](store, seeded, current)
    assert await _rows(store) != before


async def test_a_fence_of_a_name_never_held_is_refused(store: Store) -> None:
    seeded = await _seed(store)
    before = await _rows(store)
    ghost = Fence(name="installation:ghost", owner="me", epoch=1)
    with pytest.raises(LeaseLostError):
        await WRITES["Runs.finish"](store, seeded, ghost)
    assert await _rows(store) == before


async def test_the_same_owner_at_an_older_epoch_is_refused(store: Store, clock: FakeClock) -> None:
    """The epoch is the fence, not the owner: a holder that lapsed and came back (a new
    epoch) fences out what it started at the old one."""
    seeded = await _seed(store)
    first = await store.leases.acquire(NAME, "me", ttl_seconds=TTL)
    assert first is not None
    clock.advance(seconds=TTL + 1)
    second = await store.leases.acquire(NAME, "me", ttl_seconds=TTL)
    assert second is not None
    before = await _rows(store)
    with pytest.raises(LeaseLostError):
        await WRITES["Cursors.save_resume_point"](store, seeded, first.fence)
    assert await _rows(store) == before
    await WRITES["Cursors.save_resume_point"](store, seeded, second.fence)
