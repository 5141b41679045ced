"""Names of the per-installation state entries the sidecar's parts share.

One place, so the lifecycle that writes a key and the sync or inbound code that reads it
cannot drift apart.
"""

from __future__ import annotations

import secrets
from typing import Final

__all__ = [
    "ACCESS_TOKEN",
    "INBOUND_SECRET",
    "PROVISIONING_IDS",
    "PROVISIONING_REQUEST",
    "SYNC_REQUEST",
    "new_inbound_secret",
]

ACCESS_TOKEN: Final = "access_token"  # noqa: S105 - a key name, not a secret
"""ShopiMind's API key for the installation (secret; sent once, on install/activate)."""

INBOUND_SECRET: Final = "inbound_secret"  # noqa: S105 - a key name
"""The secret the vendor's app signs inbound calls with (secret; generated lazily)."""

PROVISIONING_IDS: Final = "provisioning"
"""`{"sourceIds": {key: id}, "defIds": {name: id}}`, merged after each provisioning run."""

PROVISIONING_REQUEST: Final = "provisioning.request"
"""Provisioning asked for while the installation was syncing; run before its next sync."""

SYNC_REQUEST: Final = "sync.request"
"""A sync asked for but not yet run (`{"full": bool, "at": timestamp}`); survives restarts."""


def new_inbound_secret() -> str:
    """A fresh inbound secret: `insec_` and 48 hex characters (PROTOCOL §5)."""
    return "insec_" + secrets.token_hex(24)
