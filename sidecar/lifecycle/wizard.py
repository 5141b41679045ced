"""The config wizard's routes (PROTOCOL §1.4): answered by asking the vendor's app.

No installation exists yet in this context, so the ShopiMind API is never called here.
Whatever goes wrong in the app, ShopiMind gets the documented negative answer, never an
error page: `connection_failed`, or an empty option list.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.bridge import AppBridge
from sidecar.declaration.model import Declaration
from sidecar.errors import BridgeError
from sidecar.lifecycle.answers import Answer
from sidecar.logs import get_logger

__all__ = ["ConfigWizard"]

_log = get_logger("wizard")


class ConfigWizard:
    """Test-connection and remote-data answers for ShopiMind's configuration form."""

    def __init__(self, *, bridge: AppBridge, declaration: Declaration) -> None:
        self._bridge = bridge
        self._resources = frozenset(declaration.config_schema.remote_resources())

    async def test_connection(self, settings: object) -> Answer:
        """`{"success": true}` when the app accepts the merchant's settings."""
        if not isinstance(settings, Mapping):
            return Answer.failure("connection_failed")
        try:
            check = await self._bridge.test_connection(settings)
        except BridgeError as exc:
            _log.warning("connection test: the app did not answer", error=str(exc))
            return Answer.failure("connection_failed")
        if not check.ok:
            _log.info("connection test refused by the app", error=check.error)
            return Answer.failure("connection_failed")
        return Answer.ok()

    async def remote_data(self, resource: str, settings: object) -> Answer:
        """`{"data": [{value, label}]}`; empty for an unknown resource or a failing app."""
        if resource not in self._resources or not isinstance(settings, Mapping):
            return Answer(200, {"data": []})
        try:
            options = await self._bridge.remote_data(resource, settings)
        except BridgeError as exc:
            _log.warning("remote data: the app did not answer", resource=resource, error=str(exc))
            return Answer(200, {"data": []})
        return Answer(200, {"data": [{"value": o.value, "label": o.label} for o in options]})
