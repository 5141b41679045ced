"""Per-installation state: plain values, encrypted secrets bound to their row, JSON merge."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import trio

from sidecar.errors import CipherError, StoreError
from sidecar.security.cipher import AesGcmCipher, PlaintextCipher
from sidecar.store import InstallationUpsert, Store
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.harness import raw_database_bytes
from tests.store.conftest import dump, execute

TOKEN = "int_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"


async def _installed(store: Store, *ids: str) -> None:
    for installation_id in ids:
        await store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="inactive")
        )


async def test_plain_and_secret_values(store: SqliteStore) -> None:
    await _installed(store, "i")
    await store.state.set("i", "plan", "gold")
    await store.state.set_secret("i", "access_token", TOKEN)
    assert await store.state.get("i", "plan") == "gold"
    assert await store.state.get("i", "access_token") == TOKEN
    assert await store.state.get("i", "missing") is None
    assert [(e.key, e.encrypted) for e in await store.state.keys("i")] == [
        ("access_token", True),
        ("plan", False),
    ]
    assert await store.state.delete("i", "plan")
    assert not await store.state.delete("i", "plan")


async def test_raw_database_bytes_hold_no_plaintext_secret(store: Store) -> None:
    await _installed(store, "inst_raw")
    await store.state.set_secret("inst_raw", "access_token", TOKEN)
    await store.state.set_secret("inst_raw", "config.api_password", "pa55-w0rd-Ünïcode")
    for blob in (await dump(store), b""):
        if not blob:
            if not isinstance(store, SqliteStore):
                break
            # …and once more after closing, when the WAL is folded into the file.
            await store.aclose()
            blob = raw_database_bytes(store.path)
        assert b"inst_raw" in blob  # the rows are there…
        for secret in (TOKEN, "pa55-w0rd-Ünïcode"):
            assert secret.encode() not in blob  # …their secrets are not


async def test_a_secret_moved_to_another_row_fails(store: SqliteStore) -> None:
    await _installed(store, "a", "b")
    await store.state.set_secret("a", "access_token", TOKEN)

    [(value,)] = await execute(
        store, "SELECT value FROM installation_state WHERE installation_id='a'"
    )
    await execute(
        store, "INSERT INTO installation_state VALUES ('b', 'access_token', ?, 1, 'x')", value
    )
    await execute(
        store, "INSERT INTO installation_state VALUES ('a', 'inbound_secret', ?, 1, 'x')", value
    )
    assert await store.state.get("a", "access_token") == TOKEN
    with pytest.raises(CipherError, match="another row or installation"):
        await store.state.get("b", "access_token")
    with pytest.raises(CipherError, match="another row or installation"):
        await store.state.get("a", "inbound_secret")


async def test_plaintext_secrets_are_refused_once_a_key_is_set(tmp_path: Path) -> None:
    path = tmp_path / "dev.sqlite"
    dev = await open_sqlite_store(path, cipher=PlaintextCipher())
    await _installed(dev, "i")
    await dev.state.set_secret("i", "access_token", TOKEN)
    await dev.aclose()
    assert TOKEN.encode() in raw_database_bytes(path)  # development mode really is plaintext
    prod = await open_sqlite_store(path, cipher=AesGcmCipher(secrets.token_bytes(32)))
    with pytest.raises(CipherError, match="refusing a plaintext secret"):
        await prod.state.get("i", "access_token")
    await prod.aclose()


async def test_state_of_an_unknown_installation_is_refused(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="no installation 'ghost'"):
        await store.state.set("ghost", "k", "v")


async def test_merge_json_deep_merges_in_one_transaction(store: SqliteStore) -> None:
    await _installed(store, "i")
    await store.state.merge_json("i", "provisioning", {"sourceIds": {"web": 1}, "defIds": {}})
    merged = await store.state.merge_json("i", "provisioning", {"sourceIds": {"pos": 2}})
    assert merged == {"sourceIds": {"web": 1, "pos": 2}, "defIds": {}}

    async def add(n: int) -> None:
        await store.state.merge_json("i", "provisioning", {"defIds": {f"d{n}": n}})

    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(add, n)
    final = await store.state.get_json("i", "provisioning")
    assert isinstance(final, dict)
    assert final["sourceIds"] == {"web": 1, "pos": 2}
    assert final["defIds"] == {f"d{n}": n for n in range(50)}


async def test_merge_refuses_non_objects_and_secrets(store: SqliteStore) -> None:
    await _installed(store, "i")
    await store.state.set_json("i", "list", [1, 2])
    with pytest.raises(StoreError, match="not a JSON object"):
        await store.state.merge_json("i", "list", {"a": 1})
    await store.state.set_secret("i", "secret_map", '{"a": 1}')
    with pytest.raises(StoreError, match="would store it in clear"):
        await store.state.merge_json("i", "secret_map", {"b": 2})
    assert await store.state.get("i", "secret_map") == '{"a": 1}'


async def test_setdefault_secret_first_caller_wins(store: SqliteStore) -> None:
    await _installed(store, "i")
    results: list[str] = []

    async def fetch(n: int) -> None:
        results.append(
            await store.state.setdefault_secret("i", "inbound_secret", lambda: f"insec_{n:048x}")
        )

    async with trio.open_nursery() as nursery:
        for n in range(30):
            nursery.start_soon(fetch, n)
    assert len(set(results)) == 1
    assert await store.state.get("i", "inbound_secret") == results[0]
    (entry,) = await store.state.keys("i")
    assert entry.encrypted


async def test_write_many_is_one_transaction(store: SqliteStore) -> None:
    await _installed(store, "i")
    await store.state.set_secret("i", "config.secret.old", "x")
    await store.state.write_many(
        "i",
        values={"config": '{"a": 1}'},
        secrets={"config.secret.api_key": "k-1"},
        delete=["config.secret.old", "absent"],
    )
    entries = {(e.key, e.encrypted) for e in await store.state.keys("i")}
    assert entries == {("config", False), ("config.secret.api_key", True)}
    assert await store.state.get("i", "config.secret.api_key") == "k-1"
    with pytest.raises(StoreError, match="no installation 'ghost'"):
        await store.state.write_many("ghost", values={"a": "1"}, secrets={"b": "2"})
    assert await store.state.keys("ghost") == []


async def test_take_reads_and_removes_at_once(store: SqliteStore) -> None:
    await _installed(store, "i")
    await store.state.set("i", "request", "full")
    assert await store.state.take("i", "request") == "full"
    assert await store.state.take("i", "request") is None
    await store.state.set_secret("i", "s", "x")
    with pytest.raises(StoreError, match="plain values only"):
        await store.state.take("i", "s")


async def test_holders_of_a_key(store: SqliteStore) -> None:
    await _installed(store, "a", "b", "c")
    await store.state.set("c", "sync.request", "{}")
    await store.state.set("a", "sync.request", "{}")
    await store.state.set("b", "other", "{}")
    assert await store.state.holders("sync.request") == ["a", "c"]
