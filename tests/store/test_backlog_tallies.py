"""The backlog tallies (migration 7) always equal a count of the rows they stand for,
whichever way rows come and go: queued, delivered, failed, dead, purged by retention
(a cascade), dead-lettered and removed; and a database migrated with rows already in it
starts with the right tallies."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert, RejectedItemInput
from sidecar.store.interface import Store
from sidecar.store.records import RetentionPolicy
from sidecar.store.sqlite import MIGRATIONS, open_sqlite_store
from sidecar.store.sqlite.migrations import migrate
from tests.conftest import FakeClock, outbox_entry
from tests.store.conftest import execute

STATUSES = ("queued", "failed", "delivered", "dead")


async def _counted(store: Any, installation_id: str | None = None) -> dict[str, int]:
    """What the tallies must say, counted the slow way."""
    where, args = ("WHERE installation_id = ?", (installation_id,)) if installation_id else ("", ())
    counts = dict.fromkeys(STATUSES, 0)
    rows = await execute(
        store, f"SELECT status, COUNT(*) FROM inbound_outbox {where} GROUP BY status", *args
    )
    counts.update((str(status), int(n)) for status, n in rows)
    ((dead_letter,),) = await execute(store, f"SELECT COUNT(*) FROM rejected_items {where}", *args)
    counts["dead_letter"] = int(dead_letter)
    return counts


async def _tallied(store: Store, installation_id: str | None = None) -> dict[str, int]:
    counts = {str(status): n for status, n in (await store.outbox.counts(installation_id)).items()}
    counts["dead_letter"] = await store.dead_letter.count(installation_id)
    return counts


async def _check(store: Store) -> None:
    for iid in (None, "a", "b"):
        assert await _tallied(store, iid) == await _counted(store, iid), iid
    counted = await _counted(store)
    assert await store.outbox.pending_count() == counted["queued"] + counted["failed"]


async def test_tallies_follow_every_change(store: Store, clock: FakeClock) -> None:
    for iid in ("a", "b"):
        await store.installations.upsert(InstallationUpsert(installation_id=iid, status="active"))
    events = [
        (await store.outbox.enqueue(outbox_entry(f"k{n}", "a" if n % 3 else "b"))).id
        for n in range(12)
    ]
    await _check(store)
    assert await store.outbox.oldest_pending_at() is not None
    retry_at = "2026-11-26T10:00:00.000Z"
    for event_id in events[:6]:
        assert await store.outbox.mark_delivered(event_id)
    await store.outbox.mark_failed(events[6], error="503", retry_at=retry_at)
    await store.outbox.mark_failed(events[6], error="503", retry_at=retry_at)  # failed again
    rejected = (RejectedItemInput(item={"id": 1}, reason="bad"),)
    await store.outbox.mark_dead(events[7], error="400", rejected=rejected)
    assert not await store.outbox.mark_delivered(events[0])  # no change: no tally moves
    await _check(store)
    added = await store.dead_letter.add(
        "b",
        run_id=None,
        entity="customers",
        source_key="",
        target="customers",
        items=rejected * 3,
    )
    assert added == 3
    await _check(store)
    (first, *_) = await store.dead_letter.list(installation_id="b")
    assert await store.dead_letter.delete([first.id]) == 1
    await _check(store)
    await store.dead_letter.clear("a")
    await _check(store)
    # Retention purges old inbound events; their outbox rows go by cascade, except
    # those still pending, which the purge keeps.
    clock.advance(days=200)
    await store.purge_expired(RetentionPolicy(days=30, dead_letter_days=30))
    await _check(store)
    assert (await store.outbox.counts())["delivered"] == 0
    assert await store.outbox.pending_count() == 5


async def test_a_database_migrated_with_rows_starts_with_the_right_tallies(
    tmp_path: Path, cipher: AesGcmCipher
) -> None:
    path = tmp_path / "old.sqlite"
    before = tuple(m for m in MIGRATIONS if m.version < 7)
    with sqlite3.connect(path, isolation_level=None) as connection:
        migrate(connection, "2026-11-26T09:00:00.000Z", before)
        connection.execute(
            "INSERT INTO installations (installation_id, status, created_at, updated_at) "
            "VALUES ('a', 'active', 't', 't')"
        )
        for n, status in enumerate(("queued", "delivered", "delivered", "dead", "failed")):
            connection.execute(
                "INSERT INTO inbound_events (id, installation_id, dedup_key, action, status, "
                "received_at) VALUES (?, 'a', ?, 'sale', 'received', 't')",
                (n + 1, f"k{n}"),
            )
            connection.execute(
                "INSERT INTO inbound_outbox (event_id, installation_id, action, target, route, "
                "payload_json, idempotency_key, status, next_attempt_at, created_at, updated_at) "
                "VALUES (?, 'a', 'sale', 't', 'r', '{}', ?, ?, 't', ?, 't')",
                (n + 1, f"i{n}", status, f"2026-11-26T09:00:0{n}.000Z"),
            )
        connection.execute(
            "INSERT INTO rejected_items (installation_id, entity, target, item_json, reason, "
            "created_at) VALUES ('a', 'e', 't', '{}', 'bad', 't')"
        )
    store = await open_sqlite_store(path, cipher=cipher)
    try:
        assert await _tallied(store, "a") == {
            "queued": 1,
            "failed": 1,
            "delivered": 2,
            "dead": 1,
            "dead_letter": 1,
        }
        assert await store.outbox.oldest_pending_at() == "2026-11-26T09:00:00.000Z"
    finally:
        await store.aclose()
