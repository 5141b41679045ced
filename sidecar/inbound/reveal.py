"""Showing an installation's inbound secret to an operator, on purpose and on the record.

The secret normally reaches the vendor's app in the `/lifecycle/activated` bridge call.
When the app lost it (or is set up by hand), an operator can read it with
`shopimind-sidecar installations --show-inbound-secret <id>`: every such reading leaves a
row in the audit log and a log line, neither holding the secret itself.
"""

from __future__ import annotations

from sidecar.errors import SidecarError
from sidecar.logs import get_logger
from sidecar.state_keys import INBOUND_SECRET, new_inbound_secret
from sidecar.store.interface import Store

__all__ = ["AUDIT_ACTION", "InboundSecretUnavailableError", "reveal_inbound_secret"]

AUDIT_ACTION = "inbound_secret.show"

_log = get_logger("inbound")


class InboundSecretUnavailableError(SidecarError):
    """The installation does not exist, or was uninstalled (its secret was erased)."""


async def reveal_inbound_secret(store: Store, installation_id: str, *, actor: str) -> str:
    """The installation's inbound secret, created now if it has none yet; audited and logged.

    Raises InboundSecretUnavailableError for an unknown or uninstalled installation.
    """
    installation = await store.installations.get(installation_id)
    if installation is None:
        raise InboundSecretUnavailableError(f"no installation {installation_id!r}")
    if installation.status == "uninstalled":
        raise InboundSecretUnavailableError(
            f"installation {installation_id!r} is uninstalled: its inbound secret was erased"
        )
    existing = await store.state.get(installation_id, INBOUND_SECRET)
    secret = existing or await store.state.setdefault_secret(
        installation_id, INBOUND_SECRET, new_inbound_secret
    )
    created = existing is None
    await store.audit.record(
        actor=actor,
        action=AUDIT_ACTION,
        installation_id=installation_id,
        detail={"created": created},
    )
    _log.warning(
        "inbound secret shown to an operator",
        installation_id=installation_id,
        actor=actor,
        created=created,
    )
    return secret
