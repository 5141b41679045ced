"""`store copy --to postgresql://…`: a populated SQLite store moves to PostgreSQL with every
row unchanged (encrypted values too), verified per table, refused onto a non-empty target,
and safe to run again after an interruption."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sidecar.errors import StoreError
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert, RejectedItemInput
from sidecar.store.copy import TABLES, copy_store
from sidecar.store.postgres.store import open_postgres_store
from sidecar.store.records import ReplicaRegistration, ResumePoint
from sidecar.store.sqlite import open_sqlite_store
from tests.backends import dump_schema
from tests.conftest import FakeClock, outbox_entry
from tests.postgres import PostgresCluster, new_schema
from tests.test_cli import run

TOKEN = "int_live_copy_5e1f"
PASSWORD = "copy-Pa55word"
INSTALLATIONS = 20
EVENTS = 30


async def _populate(path: Path, cipher: AesGcmCipher, clock: FakeClock) -> None:
    store = await open_sqlite_store(path, cipher=cipher, clock=clock)
    try:
        for n in range(INSTALLATIONS):
            iid = f"inst_{n}"
            await store.installations.upsert(
                InstallationUpsert(installation_id=iid, status="active", shop_name=f"Shop {n}")
            )
            await store.state.set_secret(iid, "access_token", f"{TOKEN}_{n}")
            await store.state.set_json(iid, "config", {"n": n})
            await store.cursors.record_success(
                iid, "customers", "", synced_at="2026-11-26T09:00:00.000Z", items=n
            )
        await store.cursors.save_resume_point(
            ResumePoint(
                installation_id="inst_0",
                entity="orders",
                source_key="",
                run_kind="full",
                window_since="2026-01-01T00:00:00.000Z",
                window_until="2026-11-26T09:00:00.000Z",
                next_token="page-7",
                pages=7,
            )
        )
        run_id = await store.runs.start("inst_0", "full", owner="host:1:x")
        await store.runs.finish(run_id, "ok", {"items": 3})
        for n in range(EVENTS):
            await store.outbox.enqueue(outbox_entry(f"k{n}", installation_id=f"inst_{n % 3}"))
        await store.outbox.mark_dead(
            1, error="rejected", rejected=[RejectedItemInput(item={"id": 1}, reason="bad")]
        )
        await store.inbound_events.claim("inst_1", "direct-1", "lookup")
        await store.webhook_claims.claim(
            "inst_0", "sig-1", claimed_by="replica-a", stale_after_seconds=180
        )
        await store.webhook_claims.complete("inst_0", "sig-1")
        await store.webhook_log.append(
            event="installed", installation_id="inst_0", signature_ok=True, payload_json="{}"
        )
        await store.audit.record(actor="cli:root", action="sync", installation_id="inst_0")
        await store.leases.acquire("sync:inst_0", "host:1:x", ttl_seconds=60)
        await store.replicas.register(
            ReplicaRegistration(id="host:1:x", version="1", host="host", pid=1, alive_seconds=30)
        )
    finally:
        await store.aclose()


def _counts(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as connection:
        return {
            table: int(
                connection.execute(
                    sql.SQL("SELECT COUNT(*) FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchone()[0]  # type: ignore[index]
            )
            for table in TABLES
        }


async def test_an_interrupted_copy_leaves_nothing_and_runs_again(
    tmp_path: Path, cipher: AesGcmCipher, clock: FakeClock, postgres_server: PostgresCluster
) -> None:
    path = tmp_path / "sidecar.sqlite"
    await _populate(path, cipher, clock)
    schema = new_schema()
    seen: list[str] = []

    def interrupt(table: str, done: int, total: int) -> None:
        seen.append(table)
        if table == "inbound_outbox":
            raise KeyboardInterrupt  # Ctrl-C half-way through

    with pytest.raises(KeyboardInterrupt):
        await copy_store(
            path, postgres_server.url, schema=schema, applied_at="x", progress=interrupt
        )
    assert "installations" in seen
    assert set(_counts(postgres_server.url, schema).values()) == {0}  # rolled back entirely

    report = await copy_store(
        path, postgres_server.url, schema=schema, applied_at="x", progress=lambda *_: None
    )
    counts = _counts(postgres_server.url, schema)
    assert counts == report.counts
    assert counts["installations"] == INSTALLATIONS
    assert counts["inbound_outbox"] == EVENTS
    assert all(counts[table] > 0 for table in TABLES)

    # The same key reads the copied secrets; cursors and resume points carry on from where
    # SQLite left them; new rows continue after the copied ids.
    copied = await open_postgres_store(
        postgres_server.url, schema=schema, cipher=cipher, clock=clock
    )
    source = await open_sqlite_store(path, cipher=cipher, clock=clock)
    try:
        assert await copied.state.get("inst_7", "access_token") == f"{TOKEN}_7"
        for iid in ("inst_0", "inst_19"):
            assert await copied.cursors.list(iid) == await source.cursors.list(iid)
        assert await copied.cursors.resume_points() == await source.cursors.resume_points()
        assert await copied.outbox.heads() == await source.outbox.heads()
        # The claim's completion is carried: a completed claim is never retaken.
        assert not await copied.webhook_claims.claim(
            "inst_0", "sig-1", claimed_by="replica-a", stale_after_seconds=0
        )
        claim = await copied.outbox.enqueue(outbox_entry("after-the-move", "inst_0"))
        assert claim.fresh
        assert claim.id > max(event.id for event in await source.outbox.list(limit=1000))
    finally:
        await copied.aclose()
        await source.aclose()

    with pytest.raises(StoreError, match="already holds data"):
        await copy_store(
            path, postgres_server.url, schema=schema, applied_at="x", progress=lambda *_: None
        )


async def test_the_command_copies_verifies_and_never_shows_the_password(
    tmp_path: Path,
    cipher: AesGcmCipher,
    clock: FakeClock,
    postgres_server: PostgresCluster,
    valid_env: dict[str, str],
) -> None:
    path = Path(valid_env["DATABASE_PATH"])
    await _populate(path, cipher, clock)
    schema = new_schema()
    url = postgres_server.url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    env = valid_env | {"DATABASE_SCHEMA": schema}
    result = run(env, "store", "copy", "--to", url)
    assert result.returncode == 0, result.stderr
    assert "installations" in result.stderr  # progress
    assert f"installations        {INSTALLATIONS:>10,} rows (verified)" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    again = run(env, "store", "copy", "--to", url)
    assert again.returncode == 1
    assert "already holds data" in again.stderr
    assert PASSWORD not in again.stdout + again.stderr
    dump = dump_schema(postgres_server.url, schema)
    assert b"inst_19" in dump
    assert TOKEN.encode() not in dump
