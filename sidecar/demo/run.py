"""`shopimind-sidecar demo`: the whole flow in one command, with no configuration at all.

It starts an embedded fake ShopiMind API and a sample vendor app on free loopback ports,
generates throwaway secrets, runs the real sidecar (the same `run_sidecar` as `serve`)
on the example declaration, and walks through install → activate (provisioning) →
backfill → an inbound event → deactivate, printing each step and what ShopiMind
received. The workspace (database, declaration, log) is left for inspection.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TextIO

import httpx
import trio

from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.demo.sample_app import SAMPLE_COUNTS, sample_app
from sidecar.errors import SidecarError
from sidecar.logs import configure_logging
from sidecar.runtime import Running, run_sidecar
from sidecar.security.signature import sign
from sidecar.testing import FakeShopimind, FakeVendorApp, running

__all__ = ["DemoError", "example_declaration", "run_demo"]

INSTALLATION = "inst_demo_1042"
_DATABASE_FILE = "sidecar.sqlite"
_STEP_TIMEOUT_SECONDS = 60.0


class DemoError(SidecarError):
    """The demo cannot run in the workspace it was given."""


def example_declaration() -> Path:
    """The example `integration.toml` shipped inside the package."""
    return Path(str(resources.files("sidecar.demo").joinpath("integration.toml")))


def _signed(body: bytes, secret: str, prefix: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        f"x-{prefix}-timestamp": timestamp,
        f"x-{prefix}-signature": sign(secret, timestamp, body),
    }


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it is true: the demo waits for the sidecar's background work
    (trio.TooSlowError after a minute, which the CLI reports)."""
    with trio.fail_after(_STEP_TIMEOUT_SECONDS):
        # Polling on purpose: the demo watches the sidecar from outside, over HTTP, as a
        # user would.
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.2)


_SECRETS_FILE = "demo-secrets.json"


def _workspace_secrets(root: Path) -> dict[str, str]:
    """The workspace's throwaway secrets: made on the first run, reused on the next ones,
    since the database they left behind is encrypted with that key."""
    path = root / _SECRETS_FILE
    if path.is_file():
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DemoError(f"{path} is unreadable ({exc}); delete the workspace {root}") from exc
        names = ("credentials_key", "webhook_secret", "app_secret", "token")
        if not isinstance(kept, dict) or any(not isinstance(kept.get(n), str) for n in names):
            raise DemoError(f"{path} is not the demo's secrets file; delete the workspace {root}")
        return {name: kept[name] for name in names}
    if (root / _DATABASE_FILE).exists():
        raise DemoError(
            f"{root / _DATABASE_FILE} exists without {_SECRETS_FILE}, so its secrets are "
            f"unknown; pick an empty workspace or delete {root}"
        )
    made = {
        "credentials_key": secrets.token_hex(32),
        "webhook_secret": "whsec_" + secrets.token_hex(16),
        "app_secret": "appsec_" + secrets.token_hex(16),
        "token": "int_" + secrets.token_hex(12),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(made, indent=2) + "\n", encoding="utf-8")
    return made


class _Demo:
    def __init__(self, out: TextIO, workspace: Path, kept: dict[str, str]) -> None:
        self.out = out
        self.workspace = workspace
        self.credentials_key = kept["credentials_key"]
        self.webhook_secret = kept["webhook_secret"]
        self.app_secret = kept["app_secret"]
        self.token = kept["token"]

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def webhook(self, http: httpx.AsyncClient, payload: dict[str, object]) -> str:
        body = json.dumps(payload).encode()
        answer = await http.post(
            "/webhook/receive",
            content=body,
            headers=_signed(body, self.webhook_secret, "shopimind"),
        )
        return f"{answer.status_code} {answer.text.strip()}"


async def run_demo(*, out: TextIO, workspace: Path | None = None) -> int:
    """Run the demo; return the exit code (0 when every step worked)."""
    root = workspace or Path(tempfile.mkdtemp(prefix="shopimind-sidecar-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    declaration_path = root / "integration.toml"
    demo = _Demo(out, root, _workspace_secrets(root))
    shutil.copyfile(example_declaration(), declaration_path)
    log_file = (root / "sidecar.log").open("w", encoding="utf-8")
    configure_logging(level="info", fmt="text", stream=log_file)
    api = FakeShopimind(tokens={demo.token})
    app = sample_app(demo.app_secret)
    try:
        async with running(api) as api_url, running(app) as app_url, trio.open_nursery() as nursery:
            environ = {
                "INTEGRATION_FILE": str(declaration_path),
                "DATABASE_PATH": str(root / _DATABASE_FILE),
                "WEBHOOK_SECRET": demo.webhook_secret,
                "CREDENTIALS_KEY": demo.credentials_key,
                "APP_BASE_URL": app_url + app.prefix,
                "APP_SECRET": demo.app_secret,
                "SHOPIMIND_CORE_API_BASE": api_url,
                "PORT": "0",
                "DRAIN_TIMEOUT_SECONDS": "5",
            }
            settings = load_settings(environ).settings
            declaration = load_declaration(declaration_path)
            sidecar: Running = await nursery.start(
                lambda task_status: run_sidecar(
                    settings,
                    declaration,
                    handle_signals=False,
                    environ=environ,
                    task_status=task_status,
                )
            )
            try:
                await _walk(demo, sidecar.public_urls[0], api, app, api_url, app_url)
            finally:
                sidecar.stop()
    finally:
        log_file.close()
    demo.say()
    demo.say(f"Kept for inspection in {root}:")
    demo.say(
        f"  sidecar.sqlite     the database (e.g. sqlite3 {root / 'sidecar.sqlite'} "
        "'select kind, status, summary_json from sync_runs')"
    )
    demo.say("  sidecar.log        the sidecar's log")
    demo.say("  integration.toml   the example declaration")
    demo.say(f"  {_SECRETS_FILE:<18} its throwaway secrets (reused when the demo runs here again)")
    return 0


async def _last_run(http: httpx.AsyncClient) -> tuple[object, object]:
    """(started at, status) of the demo installation's last run, from `/health`."""
    rows = (await http.get("/health")).json().get("installations") or [{}]
    return rows[0].get("last_run_at"), rows[0].get("last_run_status")


async def _walk(
    demo: _Demo, url: str, api: FakeShopimind, app: FakeVendorApp, api_url: str, app_url: str
) -> None:
    say = demo.say
    say("shopimind-sidecar demo: the whole flow against an embedded ShopiMind and a sample app")
    say(f"  sidecar          {url}")
    say(f"  ShopiMind (fake) {api_url}")
    say(
        f"  your app         {app_url}{app.prefix}  (sample data: "
        + ", ".join(f"{n} {k}" for k, n in SAMPLE_COUNTS.items())
        + ")"
    )
    say()
    configs = {
        "api_url": "https://api.acme-pos.example",
        "api_key": "demo-key-" + secrets.token_hex(4),
        "store_id": "store-paris",
        "price_display": "tax_included",
        "sync_products": True,
        "sync_loyalty": True,
    }
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        answer = await demo.webhook(
            http,
            {
                "event": "integration.installed",
                "installation_id": INSTALLATION,
                "access_token": demo.token,
                "configs": configs,
                "shop_domain": "bistro.example",
                "shop_name": "Bistro",
            },
        )
        say(f"1. install     ShopiMind → POST /webhook/receive (integration.installed) → {answer}")
        say("               the access token is stored encrypted (AES-256-GCM), the config saved")

        before = len(api.requests)
        # A workspace used before already has runs: wait for the one this activation starts.
        activated_at = datetime.now(UTC)
        answer = await demo.webhook(
            http,
            {
                "event": "integration.activated",
                "installation_id": INSTALLATION,
                "access_token": demo.token,
                "configs": configs,
            },
        )
        say(f"2. activate    ShopiMind → POST /webhook/receive (integration.activated) → {answer}")
        calls = [f"{r.method} {r.path}" for r in list(api.requests)[before:]]
        say(
            f"               connection tested through your app, then provisioning on ShopiMind "
            f"({len(calls)} calls):"
        )
        for path in ("data-sources", "custom-data-definitions", "events", "orders-statuses"):
            made = sum(1 for c in calls if c.split(" ", 1)[1].startswith(path))
            say(f"                 {path:<26} {made} call{'s' if made != 1 else ''}")
        hook = app.lifecycle_calls[-1]
        say(
            f"               your app was told (POST /lifecycle/activated) with its inbound secret "
            f"{str(hook.inbound_secret)[:10]}…"
        )

        async def backfilled() -> bool:
            started, status = await _last_run(http)
            return (
                isinstance(started, str)
                and datetime.fromisoformat(started) >= activated_at
                and status in ("ok", "partial", "failed")
            )

        await _until(backfilled)
        status = (await _last_run(http))[1]
        say(f"3. backfill    started by the activation, done: {status}; ShopiMind received")
        for resource in ("customers", "orders", "products"):
            say(f"                 {resource:<12} {api.count(resource):>5} items")
        records = sum(len(api.records(d)) for d in api.definitions)
        say(f"                 {'loyalty cards':<12} {records:>5} custom data records")

        secret = str(hook.inbound_secret)
        body = json.dumps(
            {"email": "camille.martin.0@example.com", "amount": 42.5, "store": "store-paris"}
        ).encode()
        headers = _signed(body, secret, "integration") | {
            "x-integration-installation": INSTALLATION,
            "x-idempotency-key": f"sale-{secrets.token_hex(4)}",
        }
        answer_inbound = await http.post("/inbound/sale", content=body, headers=headers)
        event_id = answer_inbound.json().get("id")
        say(
            f"4. inbound     your app → POST /inbound/sale → {answer_inbound.status_code} "
            f"{answer_inbound.text.strip()}  (queued in a durable outbox)"
        )

        async def delivered() -> bool:
            status_headers = _signed(b"", secret, "integration") | {
                "x-integration-installation": INSTALLATION
            }
            event = await http.get(f"/inbound/events/{event_id}", headers=status_headers)
            return bool(event.json().get("event", {}).get("status") == "delivered")

        await _until(delivered)
        triggered = [r for r in api.requests if r.path.startswith("events/trigger/")]
        say(f"               delivered: ShopiMind received POST {triggered[-1].path}")

        answer = await demo.webhook(
            http,
            {
                "event": "integration.deactivated",
                "installation_id": INSTALLATION,
            },
        )
        say(
            f"5. deactivate  ShopiMind → POST /webhook/receive (integration.deactivated) → {answer}"
        )
