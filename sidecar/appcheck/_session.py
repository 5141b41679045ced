"""What every check shares: the bridge to the app, and a record of the last request sent.

The checks call the app through the sidecar's own `AppBridge` (what a call looks like is
defined once, there), without retries: app-check reports what the app answers, it does
not paper over it. An httpx request hook keeps the last request, so a failed check can
show exactly what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import httpx

from sidecar.appcheck.report import ShownRequest
from sidecar.bridge import SIGNATURE_HEADER, TIMESTAMP_HEADER, AppBridge
from sidecar.declaration import Declaration
from sidecar.outbound import NO_RETRY
from sidecar.security.redaction import redact

__all__ = ["RequestLog", "Session", "shown_body"]


def shown_body(content: bytes, sensitive_keys: Collection[str]) -> str:
    """A request body as the report shows it: JSON with secrets masked, or a byte count."""
    if not content:
        return ""
    try:
        parsed = json.loads(content)
    except ValueError:
        return f"({len(content)} bytes, not JSON)"
    return json.dumps(redact(parsed, extra_keys=sensitive_keys), ensure_ascii=False)


@dataclass(slots=True)
class RequestLog:
    """Keeps the last request the client sent (an httpx `request` event hook)."""

    sensitive_keys: frozenset[str]
    last: httpx.Request | None = None

    async def __call__(self, request: httpx.Request) -> None:
        self.last = request

    def shown(self, signing: str | None = None) -> ShownRequest | None:
        """The last request, for a report."""
        request = self.last
        if request is None:
            return None
        if signing is None:
            signed = SIGNATURE_HEADER in request.headers and TIMESTAMP_HEADER in request.headers
            signing = "signed with APP_SECRET" if signed else "unsigned"
        return ShownRequest(
            method=request.method,
            url=str(request.url),
            signing=signing,
            body=shown_body(request.content, self.sensitive_keys),
        )


@dataclass(slots=True, kw_only=True)
class Session:
    """The app under check, its declaration, and the settings sent in every call."""

    base_url: str
    secret: str
    declaration: Declaration
    http: httpx.AsyncClient
    log: RequestLog
    settings: dict[str, object]
    installation_id: str
    health_path: str | None
    progress: Callable[[str], None] = field(default=lambda name: None)
    bridge: AppBridge = field(init=False)

    def __post_init__(self) -> None:
        self.bridge = AppBridge(
            base_url=self.base_url, secret=self.secret, http=self.http, policy=NO_RETRY
        )
