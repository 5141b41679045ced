"""Provisioning an installation: the declared plan plus the app's dynamic part, run against
ShopiMind, its id map merged into the installation's state (PROTOCOL §4).

Merging, not replacing: a run that fails for a resource never erases the id an earlier
run resolved for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sidecar.declaration import parse_provisioning_plan
from sidecar.errors import BridgeError, DeclarationError
from sidecar.lifecycle.deps import LifecycleDeps
from sidecar.logs import get_logger
from sidecar.shopimind.provisioning import ProvisioningOutcome, provision
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS

__all__ = ["NoAccessTokenError", "provision_installation"]

_log = get_logger("provisioning")


class NoAccessTokenError(Exception):
    """The installation has no ShopiMind access token yet: nothing can be provisioned."""


async def provision_installation(
    deps: LifecycleDeps, installation_id: str, settings: Mapping[str, object]
) -> ProvisioningOutcome:
    """Provision `installation_id` and merge the ids into its state; return the outcome."""
    token = await deps.store.state.get(installation_id, ACCESS_TOKEN)
    if not token:
        raise NoAccessTokenError(installation_id)
    declared = deps.declaration.provisioning
    plan = declared.plan
    extra_errors: list[str] = []
    if declared.dynamic:
        try:
            answer = await deps.bridge.provisioning(installation_id, settings)
            plan = plan.merged_with(
                parse_provisioning_plan(
                    answer, origin="the app's /provisioning answer", base=declared.plan
                )
            )
        except (BridgeError, DeclarationError) as exc:
            extra_errors.append(f"dynamic provisioning plan: {exc}")
    api = deps.shopimind.api(token, installation_id=installation_id)
    outcome = await provision(api, plan)
    if extra_errors:
        outcome = dataclasses.replace(outcome, errors=(*extra_errors, *outcome.errors))
    await deps.store.state.merge_json(installation_id, PROVISIONING_IDS, outcome.to_state())
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
