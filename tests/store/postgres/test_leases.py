"""Leases on the server's clock: every host judges expiry by the same clock."""

from __future__ import annotations

import re

from sidecar.clock import system_clock
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert
from tests.backends import Backend


async def test_expiry_is_judged_by_the_database_clock(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    store = await backend.open(cipher=cipher, clock=system_clock)
    try:
        await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
        assert await store.leases.acquire("sync:i", "a", ttl_seconds=60)
        assert not await store.leases.acquire("sync:i", "b", ttl_seconds=60)
        held = await store.leases.get("sync:i")
        assert held is not None
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        assert re.fullmatch(stamp, held.acquired_at)
        assert re.fullmatch(stamp, held.expires_at)
        assert held.expires_at > held.acquired_at
        # A hold renewed into the past has expired by the server's clock: taken over.
        assert await store.leases.renew("sync:i", "a", ttl_seconds=-1)
        assert await store.leases.acquire("sync:i", "b", ttl_seconds=60)
        assert not await store.leases.renew("sync:i", "a", ttl_seconds=60)
    finally:
        await store.aclose()
