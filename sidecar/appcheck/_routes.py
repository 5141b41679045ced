"""Checks of the app's small routes: signatures, test-connection, remote-data, provisioning,
lifecycle hooks and the health path."""

from __future__ import annotations

import json
import secrets
import time
from typing import Final

import httpx

from sidecar.appcheck._session import Session, shown_body
from sidecar.appcheck._settings import config_fields
from sidecar.appcheck.report import Check, ShownRequest
from sidecar.bridge import SIGNATURE_HEADER, TIMESTAMP_HEADER, AppProbe
from sidecar.declaration import LIFECYCLE_EVENTS, parse_provisioning_plan
from sidecar.declaration.model import ConfigField
from sidecar.errors import BridgeError, DeclarationError
from sidecar.security.signature import sign

__all__ = [
    "UNREACHABLE",
    "check_health",
    "check_lifecycle",
    "check_provisioning",
    "check_remote_data",
    "check_signatures",
    "check_test_connection",
    "remote_fields",
]

_STALE_SECONDS: Final = 600
"""Ten minutes: well past the five a verifier may accept."""
_REQUEST_TIMEOUT_SECONDS: Final = 10.0
UNREACHABLE: Final = "no answer: is the app running at APP_BASE_URL?"


def _headers(timestamp: str | None, signature: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if timestamp is not None:
        headers[TIMESTAMP_HEADER] = timestamp
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return headers


async def check_signatures(session: Session) -> list[Check]:
    """A call the sidecar did not sign must be refused with 401, whatever is wrong with it."""
    body = json.dumps({"settings": session.settings}, separators=(",", ":")).encode()
    now = int(time.time())
    other_secret = "not-" + session.secret
    cases = (
        ("an unsigned call", "unsigned", _headers(None, None)),
        (
            "a call signed with another secret",
            "signed with another secret",
            _headers(str(now), sign(other_secret, str(now), body)),
        ),
        (
            "a call with a 10-minute-old timestamp",
            "signed with APP_SECRET, timestamp 10 minutes old",
            _headers(str(now - _STALE_SECONDS), sign(session.secret, now - _STALE_SECONDS, body)),
        ),
        (
            "a call with a timestamp 10 minutes ahead",
            "signed with APP_SECRET, timestamp 10 minutes ahead",
            _headers(str(now + _STALE_SECONDS), sign(session.secret, now + _STALE_SECONDS, body)),
        ),
    )
    url = session.bridge.base_url + "/test-connection"
    checks: list[Check] = []
    for what, signing, headers in cases:
        name = f"signature: {what} is refused with 401"
        session.progress(name)
        shown = ShownRequest(
            method="POST",
            url=url,
            signing=signing,
            body=shown_body(body, session.log.sensitive_keys),
        )
        try:
            response = await session.http.post(
                url, content=body, headers=headers, timeout=_REQUEST_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            checks.append(Check.failed(name, [UNREACHABLE, f"({type(exc).__name__})"], shown))
            break  # the other cases would only say the same
        if response.status_code == 401:
            checks.append(Check.passed(name))
        elif response.is_success:
            checks.append(
                Check.failed(
                    name,
                    [
                        f"the app answered {response.status_code}: it does not check "
                        f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER}, so anyone can call it "
                        "(see README, 'Verifying the sidecar's signature')"
                    ],
                    shown,
                )
            )
        else:
            checks.append(
                Check.failed(
                    name,
                    [f"the app answered {response.status_code}, the contract wants 401"],
                    shown,
                )
            )
    return checks


async def check_test_connection(session: Session) -> Check:
    """`/test-connection` answers `{ok: true}` or `{ok: false, error}`."""
    name = "/test-connection answers {ok, error?}"
    session.progress(name)
    try:
        verdict = await session.bridge.test_connection(session.settings)
    except BridgeError as exc:
        return Check.failed(name, [str(exc)], session.log.shown())
    if verdict.ok:
        return Check.passed(name, "the settings work")
    return Check.passed(
        name,
        f"the app says these settings do not work ({verdict.error or 'no reason'}); "
        "pass real ones with --settings",
    )


def remote_fields(session: Session) -> list[ConfigField]:
    """The config fields whose options the app provides."""
    return [f for f in config_fields(session.declaration) if f.remote is not None]


async def check_remote_data(session: Session, field: ConfigField, resource: str) -> Check:
    """`/remote-data/{resource}` answers `{data: [{value, label}]}`; its first value becomes
    the field's setting, as a merchant would pick it."""
    name = f"/remote-data/{resource} answers {{data: [{{value, label}}]}}"
    session.progress(name)
    try:
        options = await session.bridge.remote_data(resource, session.settings)
    except BridgeError as exc:
        return Check.failed(name, [str(exc)], session.log.shown())
    if options and session.settings.get(field.key) in (None, ""):
        session.settings[field.key] = options[0].value
    return Check.passed(name, f"{len(options)} options")


async def check_provisioning(session: Session) -> Check:
    """`/provisioning` answers a plan the declaration's rules accept."""
    name = "/provisioning answers a valid provisioning plan"
    if not session.declaration.provisioning.dynamic:
        return Check.skipped(name, "the declaration does not ask for one (dynamic = false)")
    session.progress(name)
    try:
        answer = await session.bridge.provisioning(session.installation_id, session.settings)
        plan = parse_provisioning_plan(
            answer, origin="/provisioning", base=session.declaration.provisioning.plan
        )
    except BridgeError as exc:
        return Check.failed(name, [str(exc)], session.log.shown())
    except DeclarationError as exc:
        return Check.failed(name, [str(p) for p in exc.problems], session.log.shown())
    return Check.passed(
        name, f"{len(plan.data_sources)} data sources, {len(plan.custom_data)} definitions"
    )


async def check_lifecycle(session: Session) -> list[Check]:
    """Each forwarded event is accepted, and accepted again when repeated (ShopiMind resends)."""
    inbound_secret = "insec_" + secrets.token_hex(24)
    checks: list[Check] = []
    for event in LIFECYCLE_EVENTS:
        name = f"/lifecycle/{event} accepts the event, and the same event again"
        if event not in session.declaration.hooks.forward:
            checks.append(Check.skipped(name, "not forwarded ([hooks] forward)"))
            continue
        session.progress(name)
        problems: list[str] = []
        for attempt in ("the first time", "when repeated"):
            try:
                answer = await session.bridge.lifecycle(
                    event,
                    installation_id=session.installation_id,
                    settings=session.settings,
                    shop_domain="app-check.example",
                    shop_name="app-check",
                    inbound_secret=inbound_secret if event == "activated" else None,
                )
            except BridgeError as exc:
                problems.append(f"{attempt}: {exc}")
                break
            if not answer.ok:
                problems.append(
                    f"{attempt}: the app answered ok=false ({answer.error or 'no reason'}); "
                    "a repeated event must be accepted (ShopiMind resends)"
                )
                break
        if problems:
            checks.append(Check.failed(name, problems, session.log.shown()))
        else:
            checks.append(Check.passed(name))
    return checks


async def check_health(session: Session) -> Check:
    """`GET APP_BASE_URL + APP_HEALTH_PATH` answers a 2xx."""
    name = "the health path answers 2xx"
    if session.health_path is None:
        return Check.skipped(name, "APP_HEALTH_PATH is not set: the sidecar will not probe the app")
    session.progress(name)
    probe = AppProbe(
        base_url=session.base_url,
        path=session.health_path,
        secret=session.secret,
        http=session.http,
    )
    if await probe.healthy():
        return Check.passed(name, f"GET {probe.url}")
    return Check.failed(
        name, [f"GET {probe.url} did not answer a 2xx within 5 s"], session.log.shown()
    )
