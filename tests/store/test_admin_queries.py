"""The store's queries behind the admin API: resetting a cursor, the dead-letter by id,
listings newest first with bounded pages, the outbox's oldest pending event, one webhook."""

from __future__ import annotations

import pytest
import trio

from sidecar.store import InstallationUpsert, RejectedItemInput
from sidecar.store.records import ResumePoint
from sidecar.store.sqlite import SqliteStore
from sidecar.store.sqlite._rows import MAX_PAGE, page
from tests.conftest import FakeClock, outbox_entry


@pytest.fixture
async def installed(store: SqliteStore) -> SqliteStore:
    for iid in ("i", "j"):
        await store.installations.upsert(InstallationUpsert(installation_id=iid, status="active"))
    return store


def resume_point(
    installation_id: str = "i", entity: str = "orders", source_key: str = ""
) -> ResumePoint:
    return ResumePoint(
        installation_id=installation_id,
        entity=entity,
        source_key=source_key,
        run_kind="full",
        window_since="2026-01-01T00:00:00.000Z",
        window_until="2026-02-01T00:00:00.000Z",
        next_token="t",
    )


entry = outbox_entry


# --- page bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "bounds"),
    [
        ((10, 5), (10, 5)),
        ((0, 0), (1, 0)),
        ((-7, -3), (1, 0)),
        ((MAX_PAGE, 0), (MAX_PAGE, 0)),
        ((MAX_PAGE + 1, 0), (MAX_PAGE, 0)),
        ((10**12, 10**6), (MAX_PAGE, 10**6)),
    ],
)
def test_page_bounds(asked: tuple[int, int], bounds: tuple[int, int]) -> None:
    assert page(*asked) == bounds


async def test_an_absurd_offset_is_an_empty_page(installed: SqliteStore) -> None:
    await installed.runs.start("i", "full")
    assert await installed.runs.recent("i", offset=10**30) == []


# --- cursors.reset --------------------------------------------------------------------------


async def test_reset_removes_the_cursor_and_its_resume_point_together(
    installed: SqliteStore,
) -> None:
    cursors = installed.cursors
    await cursors.record_failure("i", "orders", "", error="app down", items=0)
    await cursors.save_resume_point(resume_point())
    # Neighbours that must survive: another source, another entity, another installation.
    await cursors.record_success("i", "orders", "s2", synced_at="2026-01-01T00:00:00Z", items=1)
    await cursors.record_success("i", "sales", "", synced_at="2026-01-01T00:00:00Z", items=1)
    await cursors.record_failure("j", "orders", "", error="app down", items=0)
    await cursors.save_resume_point(resume_point("j"))
    assert await cursors.count_in_error() == 2

    assert await cursors.reset("i", "orders") is True
    assert await cursors.get("i", "orders") is None
    assert await cursors.resume_point("i", "orders") is None
    assert await cursors.count_in_error() == 1
    assert [(c.entity, c.source_key) for c in await cursors.list("i")] == [
        ("orders", "s2"),
        ("sales", ""),
    ]
    assert await cursors.get("j", "orders") is not None
    assert [p.installation_id for p in await cursors.resume_points()] == ["j"]


async def test_reset_of_a_cursor_alone_or_a_resume_point_alone(installed: SqliteStore) -> None:
    cursors = installed.cursors
    await cursors.record_success("i", "orders", "", synced_at="2026-01-01T00:00:00Z", items=1)
    await cursors.save_resume_point(resume_point(entity="sales", source_key="s1"))
    assert await cursors.reset("i", "orders") is True
    assert await cursors.reset("i", "sales", "s1") is True
    assert await cursors.resume_point("i", "sales", "s1") is None
    assert await cursors.list("i") == []


async def test_reset_of_nothing_is_false(installed: SqliteStore) -> None:
    cursors = installed.cursors
    assert await cursors.reset("i", "orders") is False
    await cursors.record_success("i", "orders", "s1", synced_at="2026-01-01T00:00:00Z", items=1)
    assert await cursors.reset("i", "orders") is False  # another source key
    assert await cursors.reset("nobody", "orders", "s1") is False
    assert await cursors.reset("i", "orders", "s1") is True
    assert await cursors.reset("i", "orders", "s1") is False  # already gone


# --- dead-letter ----------------------------------------------------------------------------


async def _rejected(store: SqliteStore, installation_id: str, count: int) -> list[int]:
    await store.dead_letter.add(
        installation_id,
        run_id=None,
        entity="orders",
        source_key="s1",
        target="orders",
        items=[RejectedItemInput(item={"id": f"o{n}"}, reason="bad email") for n in range(count)],
    )
    listed = await store.dead_letter.list(installation_id=installation_id, limit=MAX_PAGE)
    return [item.id for item in listed]


async def test_dead_letter_get(installed: SqliteStore, clock: FakeClock) -> None:
    [item_id] = await _rejected(installed, "i", 1)
    item = await installed.dead_letter.get(item_id)
    assert item is not None
    assert (item.id, item.installation_id, item.entity, item.source_key, item.target) == (
        item_id,
        "i",
        "orders",
        "s1",
        "orders",
    )
    assert (item.item_json, item.reason, item.run_id) == ('{"id": "o0"}', "bad email", None)
    assert item.created_at.startswith("2026-11-26T09:00:00")
    assert await installed.dead_letter.get(item_id + 1) is None


async def test_dead_letter_delete_within_one_installation(installed: SqliteStore) -> None:
    mine = await _rejected(installed, "i", 3)
    theirs = await _rejected(installed, "j", 2)
    # An id of another installation is not removed when the installation is given.
    assert await installed.dead_letter.delete([*mine[:2], *theirs], installation_id="i") == 2
    assert [item.id for item in await installed.dead_letter.list()] == [
        *theirs,
        mine[2],
    ]
    assert await installed.dead_letter.delete(theirs, installation_id="nobody") == 0
    assert await installed.dead_letter.count("j") == 2


async def test_dead_letter_delete_without_an_installation(installed: SqliteStore) -> None:
    mine = await _rejected(installed, "i", 2)
    theirs = await _rejected(installed, "j", 1)
    assert await installed.dead_letter.delete([mine[0], mine[0], theirs[0], 10_000]) == 2
    assert [item.id for item in await installed.dead_letter.list()] == [mine[1]]
    assert await installed.dead_letter.delete([]) == 0


async def test_dead_letter_delete_of_many_ids(installed: SqliteStore) -> None:
    # More ids than one statement may bind: the delete goes in chunks.
    ids = await _rejected(installed, "i", 700)
    assert len(ids) == 700
    assert await installed.dead_letter.delete(ids, installation_id="i") == 700
    assert await installed.dead_letter.count() == 0


async def test_dead_letter_clear(installed: SqliteStore) -> None:
    await _rejected(installed, "i", 3)
    await _rejected(installed, "j", 2)
    assert await installed.dead_letter.clear("i") == 3
    assert await installed.dead_letter.count("i") == 0
    assert await installed.dead_letter.count("j") == 2
    assert await installed.dead_letter.clear("i") == 0
    assert await installed.dead_letter.clear("nobody") == 0


# --- inbound events -------------------------------------------------------------------------


async def test_inbound_events_newest_first_with_filter_and_paging(
    installed: SqliteStore, clock: FakeClock
) -> None:
    events = installed.inbound_events
    ids = []
    for n, iid in enumerate(["i", "j", "i", "i", "j"]):
        clock.advance(seconds=1)
        ids.append((await events.claim(iid, f"k{n}", "member")).id)
    await events.finish(ids[0], "failed", "503")
    assert [e.id for e in await events.list()] == ids[::-1]
    mine = await events.list(installation_id="i")
    assert [e.id for e in mine] == [ids[3], ids[2], ids[0]]
    assert (mine[-1].dedup_key, mine[-1].status, mine[-1].error) == ("k0", "failed", "503")
    assert [e.id for e in await events.list(installation_id="i", limit=1, offset=1)] == [ids[2]]
    assert await events.list(installation_id="i", offset=3) == []
    assert await events.list(installation_id="nobody") == []
    # Out-of-range bounds are clamped, not refused.
    assert [e.id for e in await events.list(limit=0)] == [ids[4]]
    assert [e.id for e in await events.list(limit=-5, offset=-2)] == [ids[4]]


async def test_a_listing_never_returns_more_than_a_page(installed: SqliteStore) -> None:
    events = installed.inbound_events
    async with trio.open_nursery() as nursery:
        for n in range(MAX_PAGE + 5):
            nursery.start_soon(events.claim, "i", f"k{n}", "member")
    listed = await events.list(limit=10 * MAX_PAGE)
    assert len(listed) == MAX_PAGE
    assert len(await events.list(limit=10 * MAX_PAGE, offset=MAX_PAGE)) == 5


# --- outbox ---------------------------------------------------------------------------------


async def test_outbox_list_newest_first_with_filters(installed: SqliteStore) -> None:
    outbox = installed.outbox
    a = (await outbox.enqueue(entry("a"))).id
    b = (await outbox.enqueue(entry("b", "j"))).id
    c = (await outbox.enqueue(entry("c"))).id
    d = (await outbox.enqueue(entry("d"))).id
    await outbox.mark_delivered(a)
    await outbox.mark_failed(c, error="503", retry_at="2030-01-01T00:00:00.000Z")
    assert [e.id for e in await outbox.list()] == [d, c, b, a]
    assert [e.id for e in await outbox.list(installation_id="i")] == [d, c, a]
    assert [e.id for e in await outbox.list(status="queued")] == [d, b]
    assert [e.id for e in await outbox.list(installation_id="i", status="queued")] == [d]
    assert [e.id for e in await outbox.list(status="dead")] == []
    [failed] = await outbox.list(status="failed")
    assert (failed.id, failed.installation_id, failed.attempts, failed.last_error) == (
        c,
        "i",
        1,
        "503",
    )
    assert (failed.idempotency_key, failed.payload_json) == ("inbound-c", '{"amount": 1}')
    assert [e.id for e in await outbox.list(limit=2, offset=1)] == [c, b]
    assert [e.id for e in await outbox.list(limit=0, offset=-1)] == [d]
    assert await outbox.list(offset=4) == []


async def test_oldest_pending_at(installed: SqliteStore, clock: FakeClock) -> None:
    outbox = installed.outbox
    assert await outbox.oldest_pending_at() is None
    first = (await outbox.enqueue(entry("first"))).id
    clock.advance(minutes=1)
    second = (await outbox.enqueue(entry("second", "j"))).id
    second_at = (await outbox.get(second)).created_at  # type: ignore[union-attr]
    clock.advance(minutes=1)
    third = (await outbox.enqueue(entry("third"))).id
    first_at = (await outbox.get(first)).created_at  # type: ignore[union-attr]
    assert await outbox.oldest_pending_at() == first_at
    await outbox.mark_delivered(first)  # no longer pending: the next one is the oldest
    assert await outbox.oldest_pending_at() == second_at
    await outbox.mark_failed(second, error="503", retry_at="2030-01-01T00:00:00.000Z")
    assert await outbox.oldest_pending_at() == second_at  # failed is still to deliver
    await outbox.mark_dead(second, error="422", rejected=[])
    await outbox.mark_delivered(third)
    assert await outbox.oldest_pending_at() is None


async def test_pending_count_counts_queued_and_failed_only(installed: SqliteStore) -> None:
    outbox = installed.outbox
    assert await outbox.pending_count() == 0
    ids = [(await outbox.enqueue(entry(key, iid))).id for key, iid in [("a", "i"), ("b", "j")]]
    ids += [(await outbox.enqueue(entry(key))).id for key in ("c", "d")]
    assert await outbox.pending_count() == 4
    await outbox.mark_failed(ids[0], error="503", retry_at="2030-01-01T00:00:00.000Z")
    await outbox.mark_delivered(ids[1])
    await outbox.mark_dead(ids[2], error="422", rejected=[])
    assert await outbox.pending_count() == 2  # the failed one and the queued one


# --- runs -----------------------------------------------------------------------------------


async def test_recent_runs_with_an_offset(installed: SqliteStore) -> None:
    ids = [await installed.runs.start("i", "incremental") for _ in range(5)]
    await installed.runs.start("j", "full")
    newest_first = ids[::-1]
    assert [r.id for r in await installed.runs.recent("i")] == newest_first
    assert [r.id for r in await installed.runs.recent("i", limit=2, offset=2)] == newest_first[2:4]
    assert [r.id for r in await installed.runs.recent("i", limit=10, offset=4)] == [ids[0]]
    assert await installed.runs.recent("i", offset=5) == []
    assert [r.id for r in await installed.runs.recent("i", limit=1, offset=-3)] == [ids[4]]
    assert await installed.runs.recent("nobody") == []


# --- webhook log ----------------------------------------------------------------------------


async def test_one_webhook_log_entry(installed: SqliteStore, clock: FakeClock) -> None:
    log = installed.webhook_log
    good = await log.append(
        event="integration.installed",
        installation_id="i",
        signature_ok=True,
        payload_json='{"event": "integration.installed"}',
    )
    clock.advance(seconds=5)
    bad = await log.append(event=None, installation_id=None, signature_ok=False, payload_json="{}")
    entry_ = await log.get(good)
    assert entry_ is not None
    assert (entry_.id, entry_.event, entry_.installation_id, entry_.signature_ok) == (
        good,
        "integration.installed",
        "i",
        True,
    )
    assert entry_.payload_json == '{"event": "integration.installed"}'
    unsigned = await log.get(bad)
    assert unsigned is not None
    assert unsigned.signature_ok is False  # a bool, as in `list`, not the stored 0
    assert (unsigned.event, unsigned.installation_id) == (None, None)
    assert unsigned.received_at > entry_.received_at
    assert await log.get(bad + 1) is None
    assert await log.list() == [unsigned, entry_]


async def test_runs_of_every_installation_newest_first(installed: SqliteStore) -> None:
    first = await installed.runs.start("i", "incremental")
    second = await installed.runs.start("j", "full")
    third = await installed.runs.start("i", "incremental")
    await installed.runs.finish(second, "ok", {})
    assert [r.id for r in await installed.runs.list()] == [third, second, first]
    assert [r.id for r in await installed.runs.list(status="running")] == [third, first]
    assert [r.id for r in await installed.runs.list(status="ok")] == [second]
    assert await installed.runs.list(status="failed") == []
    assert [r.id for r in await installed.runs.list(limit=1, offset=1)] == [second]
    assert [r.id for r in await installed.runs.list(limit=0, offset=-1)] == [third]


async def test_statuses_of_the_last_runs(installed: SqliteStore) -> None:
    assert await installed.runs.latest_statuses() == {}
    first = await installed.runs.start("i", "full")
    await installed.runs.finish(first, "failed", {})
    await installed.runs.start("i", "incremental")  # i's last run: running
    done = await installed.runs.start("j", "full")
    await installed.runs.finish(done, "ok", {})
    assert await installed.runs.latest_statuses() == {"running": 1, "ok": 1}
    latest = await installed.runs.latest()
    assert {iid: run.status for iid, run in latest.items()} == {"i": "running", "j": "ok"}


async def test_audit_log_filtered_by_action_and_installation(installed: SqliteStore) -> None:
    audit = installed.audit
    for action, iid in (("sync", "i"), ("sync", "j"), ("payload.reveal", "i"), ("login", None)):
        await audit.record(
            actor="a", action=action, installation_id=iid, target=None, detail={}, client_ip=None
        )
    assert [e.action for e in await audit.list()] == ["login", "payload.reveal", "sync", "sync"]
    assert [e.installation_id for e in await audit.list(action="sync")] == ["j", "i"]
    assert [e.action for e in await audit.list(installation_id="i")] == ["payload.reveal", "sync"]
    assert [e.action for e in await audit.list(action="sync", installation_id="i")] == ["sync"]
    assert await audit.list(action="nope") == []
    assert [e.installation_id for e in await audit.list(action="sync", limit=1, offset=1)] == ["i"]
