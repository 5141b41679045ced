"""The app bridge: signed calls from the sidecar to the vendor's app, and its answers.

The vendor's app answers a handful of plain JSON calls about its own data (test the
merchant's settings, list options, hear about lifecycle events, list sources, page
through items). `AppBridge` makes those calls and turns every answer into a checked
value or a `BridgeError` that says what was wrong.
"""

from sidecar.bridge.answers import (
    ConnectionCheck,
    ExternalAccount,
    LifecycleAnswer,
    RemoteOption,
    SyncPage,
)
from sidecar.bridge.client import (
    DEFAULT_BRIDGE_TIMEOUT_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AppBridge,
)
from sidecar.bridge.probe import AppProbe

__all__ = [
    "DEFAULT_BRIDGE_TIMEOUT_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AppBridge",
    "AppProbe",
    "ConnectionCheck",
    "ExternalAccount",
    "LifecycleAnswer",
    "RemoteOption",
    "SyncPage",
]
