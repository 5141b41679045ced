"""Provisioning an installation: the declared plan plus the app's dynamic part, run against
ShopiMind, its id map merged into the installation's state (PROTOCOL §4).

Merging, not replacing: a run that fails for a resource never erases the id an earlier
run resolved for it. An installation never provisions while it syncs (PROTOCOL §8): the
lifecycle takes the installation's lease first (`provision_exclusively`); when a sync holds
it, the request is recorded and the sync engine provisions before its next run. The ids
are written with the lease's fence: a holder that lost its lease meanwhile writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sidecar.bridge import AppBridge
from sidecar.declaration import parse_provisioning_plan
from sidecar.declaration.model import Declaration
from sidecar.errors import BridgeError, DeclarationError
from sidecar.lifecycle.deps import LifecycleDeps
from sidecar.logs import get_logger
from sidecar.shopimind.client import ShopimindClient
from sidecar.shopimind.provisioning import ProvisioningOutcome, provision
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store.interface import Store
from sidecar.store.records import Fence
from sidecar.sync.leases import hold_lease, installation_lease_name

__all__ = ["NoAccessTokenError", "provision_exclusively", "provision_installation"]

_log = get_logger("provisioning")


class NoAccessTokenError(Exception):
    """The installation has no ShopiMind access token yet: nothing can be provisioned."""


async def provision_exclusively(
    deps: LifecycleDeps,
    installation_id: str,
    settings: Mapping[str, object],
    *,
    token: str | None = None,
    record: bool = True,
) -> ProvisioningOutcome:
    """Provision while holding the installation's lease; LeaseBusyError when it syncs.

    `token` and `record` as for `provision_installation`.
    """
    name = installation_lease_name(installation_id)
    async with hold_lease(
        deps.store.leases, name, deps.owner, ttl_seconds=deps.lease_ttl_seconds
    ) as lease:
        return await provision_installation(
            store=deps.store,
            declaration=deps.declaration,
            bridge=deps.bridge,
            shopimind=deps.shopimind,
            installation_id=installation_id,
            settings=settings,
            token=token,
            record=record,
            fence=lease.fence,
        )


async def provision_installation(
    *,
    store: Store,
    declaration: Declaration,
    bridge: AppBridge,
    shopimind: ShopimindClient,
    installation_id: str,
    settings: Mapping[str, object],
    token: str | None = None,
    record: bool = True,
    fence: Fence | None = None,
) -> ProvisioningOutcome:
    """Provision `installation_id` and merge the ids into its state; return the outcome.

    The caller holds the installation's lease, and passes its `fence`: the ids are written
    only while it still holds it (else LeaseLostError). `token`: the access token to use
    (None: the stored one). `record=False` leaves the ids for the caller to store
    (`to_state()`) with the rest of its change, in one transaction.
    """
    if token is None:
        token = await store.state.get(installation_id, ACCESS_TOKEN)
    if not token:
        raise NoAccessTokenError(installation_id)
    declared = declaration.provisioning
    plan = declared.plan
    extra_errors: list[str] = []
    if declared.dynamic:
        try:
            answer = await bridge.provisioning(installation_id, settings)
            plan = plan.merged_with(
                parse_provisioning_plan(
                    answer, origin="the app's /provisioning answer", base=declared.plan
                )
            )
        except (BridgeError, DeclarationError) as exc:
            extra_errors.append(f"dynamic provisioning plan: {exc}")
    api = shopimind.api(token, installation_id=installation_id)
    outcome = await provision(api, plan)
    if extra_errors:
        outcome = dataclasses.replace(outcome, errors=(*extra_errors, *outcome.errors))
    if record:
        await store.state.merge_json(
            installation_id, PROVISIONING_IDS, outcome.to_state(), fence=fence
        )
    log = _log.bind(installation_id=installation_id)
    for warning in outcome.warnings:
        log.warning("provisioning warning", detail=warning)
    if outcome.errors:
        log.warning(
            "provisioning finished with errors",
            errors=list(outcome.errors),
            provisioned=outcome.provisioned,
        )
    return outcome
