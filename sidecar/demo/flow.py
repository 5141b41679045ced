"""The whole flow, step by step, against a running sidecar and an embedded ShopiMind:
install → activate → backfill → an inbound call → deactivate, printing what ShopiMind
received at each step. `demo` walks it with the sample app, `simulate` with the vendor's.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

import httpx
import trio

from sidecar.config import Settings
from sidecar.declaration import Declaration, InboundAction
from sidecar.inbound import reveal_inbound_secret
from sidecar.security.signature import sign
from sidecar.testing import FakeShopimind
from sidecar.wiring import open_settings_store

__all__ = ["INSTALLATION", "Flow", "FlowResult", "walk_flow"]

INSTALLATION: Final = "inst_demo_1042"
_STEP_TIMEOUT_SECONDS: Final = 60.0
_PROVISIONED: Final = ("data-sources", "custom-data-definitions", "events", "orders-statuses")


def _signed(body: bytes, secret: str, prefix: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        f"x-{prefix}-timestamp": timestamp,
        f"x-{prefix}-signature": sign(secret, timestamp, body),
    }


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it is true: the flow waits for the sidecar's background work
    (trio.TooSlowError after a minute, which the CLI reports)."""
    with trio.fail_after(_STEP_TIMEOUT_SECONDS):
        # Polling on purpose: the flow watches the sidecar from outside, over HTTP, as a
        # user would.
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """What the walk needs: the sidecar, the fake ShopiMind, and how to reach the app."""

    sidecar_url: str
    api: FakeShopimind
    settings: Settings
    declaration: Declaration
    access_token: str
    webhook_secret: str
    configs: Mapping[str, object]
    inbound_trigger: str | None = None
    """An app route that makes the app send its inbound call (POSTed `{installation_id}`);
    without it the flow sends one itself, as the app would."""
    out: TextIO


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowResult:
    """How the walk went: every step answered as ShopiMind wants, and what it received."""

    ok: bool
    received: Mapping[str, int]
    """Items ShopiMind received per sync target."""


def _inbound_request_path(action: InboundAction, definition_ids: Mapping[str, int]) -> str:
    target = action.target
    if target.startswith("trigger_event:"):
        return "events/trigger/" + target.split(":", 1)[1]
    if target.startswith("custom_data:"):
        name = target.split(":", 1)[1]
        return f"custom-data-records/{definition_ids.get(name, '')}"
    return target


class _Walker:
    def __init__(self, flow: Flow, http: httpx.AsyncClient) -> None:
        self.flow = flow
        self.http = http
        self.ok = True
        self.activated_at = datetime.now(UTC)

    def say(self, text: str = "") -> None:
        print(text, file=self.flow.out, flush=True)

    async def webhook(self, payload: dict[str, object]) -> tuple[bool, str]:
        body = json.dumps(payload).encode()
        answer = await self.http.post(
            "/webhook/receive",
            content=body,
            headers=_signed(body, self.flow.webhook_secret, "shopimind"),
        )
        worked = answer.status_code == 200 and answer.json().get("success") is True
        self.ok = self.ok and worked
        return worked, f"{answer.status_code} {answer.text.strip()}"

    def definition_ids(self) -> dict[str, int]:
        return {str(d.get("name")): ident for ident, d in self.flow.api.definitions.items()}

    def received(self) -> dict[str, int]:
        api = self.flow.api
        ids = self.definition_ids()
        counts: dict[str, int] = {}
        for step in self.flow.declaration.sync:
            name = step.custom_data_name
            if name is None:
                counts[step.target] = api.count(step.target)
            else:
                counts[step.target] = len(api.records(ids[name])) if name in ids else 0
        return counts

    async def walk(self) -> FlowResult:
        flow = self.flow
        say = self.say
        worked, answer = await self.webhook(
            {
                "event": "integration.installed",
                "installation_id": INSTALLATION,
                "access_token": flow.access_token,
                "configs": dict(flow.configs),
                "shop_domain": "bistro.example",
                "shop_name": "Bistro",
            }
        )
        say(f"1. install     ShopiMind → POST /webhook/receive (integration.installed) → {answer}")
        say("               the access token is stored encrypted (AES-256-GCM), the config saved")
        before = len(flow.api.requests)
        # A workspace used before already has runs: the backfill waited for is this one's.
        self.activated_at = datetime.now(UTC)
        worked, answer = await self.webhook(
            {
                "event": "integration.activated",
                "installation_id": INSTALLATION,
                "access_token": flow.access_token,
                "configs": dict(flow.configs),
            }
        )
        say(f"2. activate    ShopiMind → POST /webhook/receive (integration.activated) → {answer}")
        if not worked:
            if "connection_failed" in answer:
                say(
                    "               your app's /test-connection refused these settings: "
                    "pass working ones with --settings"
                )
            say("               the activation failed: see sidecar.log in the workspace")
            return FlowResult(ok=False, received=self.received())
        calls = [r.path for r in list(flow.api.requests)[before:]]
        say(
            "               connection tested through your app (POST /test-connection), then "
            f"provisioning on ShopiMind ({len(calls)} calls):"
        )
        for path in _PROVISIONED:
            made = sum(1 for c in calls if c.startswith(path))
            say(f"                 {path:<26} {made} call{'s' if made != 1 else ''}")
        say("               your app was told (POST /lifecycle/activated), with its inbound secret")
        await self.backfill()
        await self.inbound()
        worked, answer = await self.webhook(
            {"event": "integration.deactivated", "installation_id": INSTALLATION}
        )
        say(
            f"5. deactivate  ShopiMind → POST /webhook/receive (integration.deactivated) → {answer}"
        )
        return FlowResult(ok=self.ok, received=self.received())

    async def last_run(self) -> tuple[object, object]:
        """(started at, status) of the installation's last run, from `/health`."""
        rows = (await self.http.get("/health")).json().get("installations") or [{}]
        return rows[0].get("last_run_at"), rows[0].get("last_run_status")

    async def backfill(self) -> None:
        async def finished() -> bool:
            started, status = await self.last_run()
            return (
                isinstance(started, str)
                and datetime.fromisoformat(started) >= self.activated_at
                and status in ("ok", "partial", "failed")
            )

        await _until(finished)
        status = (await self.last_run())[1]
        self.ok = self.ok and status == "ok"
        self.say(f"3. backfill    started by the activation, done: {status}; ShopiMind received")
        for target, count in self.received().items():
            self.say(f"                 {target:<32} {count:>6} items")

    async def inbound(self) -> None:
        flow = self.flow
        actions = list(flow.declaration.inbound.values())
        if not actions:
            self.say("4. inbound     (the declaration has no [inbound] action)")
            return
        before = len(flow.api.requests)
        if flow.inbound_trigger is not None:
            answer = await self.http.post(
                flow.inbound_trigger, json={"installation_id": INSTALLATION}
            )
            self.say(
                f"4. inbound     your app (asked at {flow.inbound_trigger}) → POST /inbound/… "
                f"→ {answer.status_code} {answer.text.strip()}"
            )
            paths = {_inbound_request_path(a, self.definition_ids()) for a in actions}
        else:
            action = next((a for a in actions if a.target.startswith("trigger_event:")), actions[0])
            answer = await self.send_inbound(action)
            self.say(
                f"4. inbound     your app → POST /inbound/{action.name} → "
                f"{answer.status_code} {answer.text.strip()}"
            )
            paths = {_inbound_request_path(action, self.definition_ids())}
        if not answer.is_success:
            self.ok = False
            return

        async def delivered() -> bool:
            return any(r.path in paths for r in list(flow.api.requests)[before:])

        await _until(delivered)
        made = [r for r in list(flow.api.requests)[before:] if r.path in paths]
        self.say(f"               delivered: ShopiMind received {made[0].method} {made[0].path}")

    async def send_inbound(self, action: InboundAction) -> httpx.Response:
        async with open_settings_store(self.flow.settings) as store:
            secret = await reveal_inbound_secret(store, INSTALLATION, actor="simulate")
        body = json.dumps({"simulated": True, "amount": 42.5, "store": "store-paris"}).encode()
        headers = _signed(body, secret, "integration") | {
            "x-integration-installation": INSTALLATION,
            "x-idempotency-key": "simulated-" + secrets.token_hex(4),
        }
        return await self.http.post(f"/inbound/{action.name}", content=body, headers=headers)


async def walk_flow(flow: Flow) -> FlowResult:
    """Walk the whole flow against the running sidecar at `flow.sidecar_url`."""
    async with httpx.AsyncClient(base_url=flow.sidecar_url, timeout=60) as http:
        return await _Walker(flow, http).walk()
