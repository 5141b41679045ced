"""The inbound context (installation status, inbound secret, whether a token exists): every
change to installations or their state is seen by the next call, whether this process made
it or another connection committed it. (SQLite keeps contexts in memory and watches
PRAGMA data_version; PostgreSQL reads them at each call: tests/store/sqlite has the cache's
own tests.)"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import psycopg
import trio
from psycopg import sql

from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert
from sidecar.store.postgres.store import PostgresStore
from sidecar.store.sqlite import SqliteStore


async def _active(store: Any, installation_id: str, secret: str) -> None:
    await store.installations.upsert(
        InstallationUpsert(installation_id=installation_id, status="active")
    )
    await store.state.write_many(
        installation_id, secrets={ACCESS_TOKEN: "int_tok", INBOUND_SECRET: secret}
    )


async def test_every_change_made_here_is_seen_by_the_next_call(store: Any) -> None:
    events = store.inbound_events
    assert await events.context("inst_1") is None  # unknown, and remembered as such…
    await _active(store, "inst_1", "insec_one")  # …until it is created
    first = await events.context("inst_1")
    assert first is not None
    assert (first.status, first.inbound_secret, first.has_access_token) == (
        "active",
        "insec_one",
        True,
    )
    assert await events.context("inst_1") == first

    await store.state.write_many("inst_1", secrets={INBOUND_SECRET: "insec_two"})
    rotated = await events.context("inst_1")
    assert rotated is not None
    assert rotated.inbound_secret == "insec_two"

    await store.state.delete("inst_1", ACCESS_TOKEN)
    tokenless = await events.context("inst_1")
    assert tokenless is not None
    assert not tokenless.has_access_token

    await store.installations.set_status("inst_1", "uninstalled")
    gone = await events.context("inst_1")
    assert gone is not None
    assert gone.status == "uninstalled"


def _deactivate_elsewhere(store: Any, installation_id: str) -> None:
    """What another process (a CLI command, another host) does: its own connection."""
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as lite, lite:
            lite.execute(
                "UPDATE installations SET status = 'inactive' WHERE installation_id = ?",
                (installation_id,),
            )
        return
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.db.url) as other:
        other.execute(
            sql.SQL(
                "UPDATE {}.installations SET status = 'inactive' WHERE installation_id = %s"
            ).format(sql.Identifier(store.db.schema)),
            (installation_id,),
        )


async def test_another_connections_commit_is_seen_from_the_next_store_operation(
    store: Any,
) -> None:
    await _active(store, "inst_1", "insec_one")
    cached = await store.inbound_events.context("inst_1")
    assert cached is not None
    assert cached.status == "active"
    await trio.to_thread.run_sync(_deactivate_elsewhere, store, "inst_1")
    # On SQLite, any batch of the store reads PRAGMA data_version first and notices it.
    await store.installations.count()
    seen = await store.inbound_events.context("inst_1")
    assert seen is not None
    assert seen.status == "inactive"
