"""The inbound context (installation status, inbound secret, whether a token exists) is
kept in memory between calls: every change to installations or their state is seen by
the next call, whether this process made it or another connection committed it."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

import sidecar.store.sqlite.inbound
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.store.sqlite.inbound import CONTEXT_CACHE_ENTRIES


async def _active(store: SqliteStore, installation_id: str, secret: str) -> None:
    await store.installations.upsert(
        InstallationUpsert(installation_id=installation_id, status="active")
    )
    await store.state.write_many(
        installation_id, secrets={ACCESS_TOKEN: "int_tok", INBOUND_SECRET: secret}
    )


async def test_every_change_made_here_is_seen_by_the_next_call(store: SqliteStore) -> None:
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


async def test_another_connections_commit_is_seen_from_the_next_store_operation(
    store: SqliteStore,
) -> None:
    await _active(store, "inst_1", "insec_one")
    cached = await store.inbound_events.context("inst_1")
    assert cached is not None
    assert cached.status == "active"
    # Another process (a CLI command) changes the installation in the same file.
    with closing(sqlite3.connect(store.path)) as other, other:
        other.execute(
            "UPDATE installations SET status = 'inactive' WHERE installation_id = ?", ("inst_1",)
        )
    # Any batch of this store reads PRAGMA data_version first and notices the commit.
    await store.installations.count()
    seen = await store.inbound_events.context("inst_1")
    assert seen is not None
    assert seen.status == "inactive"


async def test_the_kept_contexts_are_bounded(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CONTEXT_CACHE_ENTRIES >= 1000
    monkeypatch.setattr(sidecar.store.sqlite.inbound, "CONTEXT_CACHE_ENTRIES", 20)
    await _active(store, "inst_1", "insec_one")
    for n in range(30):
        await store.inbound_events.context(f"probe_{n}")
    kept = store.inbound_events._contexts
    assert len(kept) == 20
    assert "probe_0" not in kept  # the oldest made way
    found = await store.inbound_events.context("inst_1")
    assert found is not None
    assert found.inbound_secret == "insec_one"
