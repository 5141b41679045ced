"""`shopimind-sidecar app-check`: play the sidecar's side of every bridge call the
declaration needs against the vendor's running app, and report what breaks the contract.

It only talks to the app: nothing is written to ShopiMind, nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from sidecar.appcheck._routes import (
    UNREACHABLE,
    check_health,
    check_lifecycle,
    check_provisioning,
    check_remote_data,
    check_signatures,
    check_test_connection,
    remote_fields,
)
from sidecar.appcheck._session import RequestLog, Session
from sidecar.appcheck._settings import default_settings, sensitive_keys
from sidecar.appcheck._sync import SyncLimits, check_step
from sidecar.appcheck.report import Check, Report
from sidecar.declaration import Declaration

__all__ = [
    "APP_CHECK_INSTALLATION",
    "AppCheckTarget",
    "SyncLimits",
    "default_settings",
    "run_app_check",
]

APP_CHECK_INSTALLATION: Final = "inst_app_check"
"""The installation id of every call app-check makes: the app may keep state under it."""
_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AppCheckTarget:
    """The app to check (APP_BASE_URL, APP_SECRET, APP_HEALTH_PATH) and how."""

    base_url: str
    secret: str
    health_path: str | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    """The merchant's settings to send, over the declaration's defaults."""
    limits: SyncLimits = field(default_factory=SyncLimits)


async def run_app_check(
    target: AppCheckTarget,
    declaration: Declaration,
    *,
    progress: Callable[[str], None] = lambda name: None,
) -> Report:
    """Run every check against the app; the report says what passed and what did not."""
    log = RequestLog(sensitive_keys=sensitive_keys(declaration))
    settings = {**default_settings(declaration), **target.settings}
    async with httpx.AsyncClient(
        timeout=_TIMEOUT_SECONDS, follow_redirects=False, event_hooks={"request": [log]}
    ) as http:
        session = Session(
            base_url=target.base_url,
            secret=target.secret,
            declaration=declaration,
            http=http,
            log=log,
            settings=settings,
            installation_id=APP_CHECK_INSTALLATION,
            health_path=target.health_path,
            progress=progress,
        )
        checks: list[Check] = [await check_health(session)]
        checks += await check_signatures(session)
        if all(check.problems[:1] == (UNREACHABLE,) for check in checks[-1:]):
            # Nothing answers there: one clear failure, not one per route.
            return _report(target, declaration, checks)
        for config_field in remote_fields(session):
            if config_field.remote is not None:
                checks.append(
                    await check_remote_data(session, config_field, config_field.remote.resource)
                )
        checks.append(await check_test_connection(session))
        checks.append(await check_provisioning(session))
        checks += await check_lifecycle(session)
        for step in declaration.sync:
            checks += await check_step(session, step, target.limits)
    return _report(target, declaration, checks)


def _report(target: AppCheckTarget, declaration: Declaration, checks: list[Check]) -> Report:
    source = declaration.source
    return Report(
        app_base_url=target.base_url,
        integration_file=str(source) if source is not None else "(declaration)",
        checks=tuple(checks),
    )
