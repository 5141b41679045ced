"""Webhook claims on PostgreSQL: staleness is judged by the server's clock (as leases are),
whatever the replicas' clocks say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import trio

from sidecar.clock import parse_timestamp
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.records import ReplicaRegistration
from tests.backends import Backend
from tests.conftest import FakeClock
from tests.store.postgres.test_leases import _server_now, replicas


def _claimed_at(url: str, schema: str) -> str:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            psycopg.sql.SQL("SELECT claimed_at FROM {}.webhook_claims").format(
                psycopg.sql.Identifier(schema)
            )
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_claim_goes_stale_by_the_database_clock(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    # Host a's clock is an hour slow, host b's an hour fast; both use the server's clock.
    slow = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    fast = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    async with replicas(backend, cipher, [slow, fast], database_clock=True) as (a, b):
        before = await trio.to_thread.run_sync(_server_now, backend.url)
        assert await a.webhook_claims.claim("i", "sig", claimed_by=None, stale_after_seconds=600)
        after = await trio.to_thread.run_sync(_server_now, backend.url)
        stamped = parse_timestamp(
            await trio.to_thread.run_sync(_claimed_at, backend.url, backend.schema)
        )
        floor = before.replace(microsecond=before.microsecond // 1000 * 1000)
        assert floor <= stamped <= after  # by the server, not by a's slow clock
        # b's clock says the claim is two hours old: the server's says it is fresh.
        assert not await b.webhook_claims.claim(
            "i", "sig", claimed_by=None, stale_after_seconds=600
        )
        # Stale at once by the server's clock: retaken (then fresh again for a).
        assert await b.webhook_claims.claim("i", "sig", claimed_by=None, stale_after_seconds=0)
        assert not await a.webhook_claims.claim(
            "i", "sig", claimed_by=None, stale_after_seconds=600
        )
        await b.webhook_claims.complete("i", "sig")
        assert not await a.webhook_claims.claim("i", "sig", claimed_by=None, stale_after_seconds=0)


async def test_a_claimers_liveness_is_judged_by_the_database_clock(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    # a's clock is an hour fast: by it, b's heartbeat lapsed long ago; by the server's,
    # b is alive, and its claim is held. Once b stops, a retakes it at once.
    slow = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    fast = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    async with replicas(backend, cipher, [fast, slow], database_clock=True) as (a, b):
        await b.replicas.register(
            ReplicaRegistration(id="b", version="1", host="h", pid=2, alive_seconds=60)
        )
        assert await b.webhook_claims.claim("i", "sig", claimed_by="b", stale_after_seconds=600)
        assert not await a.webhook_claims.claim("i", "sig", claimed_by="a", stale_after_seconds=600)
        await b.replicas.stopped("b")
        assert await a.webhook_claims.claim("i", "sig", claimed_by="a", stale_after_seconds=600)
