"""The replicas an operator sees (`GET /admin/replicas`, `shopimind-sidecar replicas`, the
console's Replicas screen): every process on this database, alive first, each with its
version, when it started and last said it was alive, and the leases it holds now."""

from __future__ import annotations

import dataclasses

from sidecar.store.interface import Store
from sidecar.store.records import Replica

__all__ = ["replica_view", "replicas_listing"]

JsonObject = dict[str, object]


def replica_view(replica: Replica, *, self_id: str | None = None) -> JsonObject:
    """One replica; `self` is true for the process answering."""
    return {**dataclasses.asdict(replica), "self": replica.id == self_id}


async def replicas_listing(store: Store, *, self_id: str | None = None) -> JsonObject:
    """Every replica with how many are alive; `self` names the answering process (None for
    a command run on its own)."""
    replicas = await store.replicas.list()
    return {
        "self": self_id,
        "alive": sum(replica.alive for replica in replicas),
        "items": [replica_view(replica, self_id=self_id) for replica in replicas],
    }
