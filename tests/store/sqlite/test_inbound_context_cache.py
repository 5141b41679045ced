"""The SQLite store's cache of inbound contexts is bounded (the oldest make way)."""

from __future__ import annotations

import pytest

import sidecar.store.sqlite.inbound
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.store.sqlite.inbound import CONTEXT_CACHE_ENTRIES


async def test_the_kept_contexts_are_bounded(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CONTEXT_CACHE_ENTRIES >= 1000
    monkeypatch.setattr(sidecar.store.sqlite.inbound, "CONTEXT_CACHE_ENTRIES", 20)
    await store.installations.upsert(InstallationUpsert(installation_id="inst_1", status="active"))
    await store.state.write_many(
        "inst_1", secrets={ACCESS_TOKEN: "int_tok", INBOUND_SECRET: "insec_one"}
    )
    for n in range(30):
        await store.inbound_events.context(f"probe_{n}")
    kept = store.inbound_events._contexts
    assert len(kept) == 20
    assert "probe_0" not in kept  # the oldest made way
    found = await store.inbound_events.context("inst_1")
    assert found is not None
    assert found.inbound_secret == "insec_one"
