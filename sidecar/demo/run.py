"""`shopimind-sidecar simulate` and `demo`: the real sidecar, an embedded stand-in for
ShopiMind, and an app — the vendor's own (`simulate`) or the sample one (`demo`).

Throwaway secrets are generated, the real sidecar (the same `run_sidecar` as `serve`) runs
on a free loopback port, and the flow is walked: install → activate (provisioning) →
backfill → an inbound call → deactivate, printing what ShopiMind received at each step.
The workspace (database, declaration, log) is left for inspection.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TextIO

import trio

from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.demo.flow import Flow, FlowResult, walk_flow
from sidecar.demo.sample_app import SAMPLE_COUNTS, sample_app
from sidecar.errors import SidecarError
from sidecar.logs import configure_logging
from sidecar.runtime import Running, run_sidecar
from sidecar.testing import FakeShopimind, running

__all__ = ["DEMO_CONFIGS", "DemoError", "example_declaration", "run_demo", "run_simulation"]

DEMO_CONFIGS: Mapping[str, object] = {
    "api_url": "https://api.acme-pos.example",
    "api_key": "demo-key",
    "store_id": "store-paris",
    "price_display": "tax_included",
    "sync_products": True,
    "sync_loyalty": True,
}
"""The merchant's settings of the demo (the example declaration's form, filled in)."""


_DATABASE_FILE = "sidecar.sqlite"
_KEY_FILE = "credentials-key"


class DemoError(SidecarError):
    """The demo cannot run in the workspace it was given."""


def _workspace_key(root: Path) -> str:
    """The workspace's throwaway CREDENTIALS_KEY: made on the first run and reused by the
    next ones, since the database left behind is encrypted with it. (The other secrets
    are stored nowhere and are made afresh each time.)"""
    path = root / _KEY_FILE
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise DemoError(f"{path} is not a demo key; delete the workspace {root}")
        return key
    if (root / _DATABASE_FILE).exists():
        raise DemoError(
            f"{root / _DATABASE_FILE} exists without {_KEY_FILE}, so its key is unknown; "
            f"pick an empty workspace or delete {root}"
        )
    key = secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(key + "\n", encoding="utf-8")
    return key


def example_declaration() -> Path:
    """The example `integration.toml` shipped inside the package."""
    return Path(str(resources.files("sidecar.demo").joinpath("integration.toml")))


async def run_simulation(
    *,
    out: TextIO,
    app_base_url: str,
    app_secret: str,
    declaration_path: Path,
    configs: Mapping[str, object],
    workspace: Path | None = None,
    inbound_trigger: str | None = None,
    port: int = 0,
    title: str = "shopimind-sidecar simulate: the whole flow against an embedded ShopiMind "
    "and your app",
) -> FlowResult:
    """Walk the whole flow with the app at `app_base_url`; return how it went.

    `port` is the sidecar's (0: any free one); an app that sends inbound calls needs it.
    """
    root = workspace or Path(tempfile.mkdtemp(prefix="shopimind-sidecar-simulate-"))
    root.mkdir(parents=True, exist_ok=True)
    copied = root / "integration.toml"
    with contextlib.suppress(shutil.SameFileError):  # the workspace is the file's own folder
        shutil.copyfile(declaration_path, copied)
    credentials_key = _workspace_key(root)
    webhook_secret = "whsec_" + secrets.token_hex(16)
    token = "int_" + secrets.token_hex(12)
    log_file = (root / "sidecar.log").open("w", encoding="utf-8")
    logger = logging.getLogger()
    saved_logging = (list(logger.handlers), logger.level)
    configure_logging(level="info", fmt="text", stream=log_file)
    api = FakeShopimind(tokens={token})
    try:
        async with running(api) as api_url, trio.open_nursery() as nursery:
            environ = {
                "INTEGRATION_FILE": str(copied),
                "DATABASE_PATH": str(root / _DATABASE_FILE),
                "WEBHOOK_SECRET": webhook_secret,
                "CREDENTIALS_KEY": credentials_key,
                "APP_BASE_URL": app_base_url,
                "APP_SECRET": app_secret,
                "SHOPIMIND_CORE_API_BASE": api_url,
                "PORT": str(port),
                "DRAIN_TIMEOUT_SECONDS": "5",
            }
            settings = load_settings(environ).settings
            declaration = load_declaration(copied)
            sidecar: Running = await nursery.start(
                lambda task_status: run_sidecar(
                    settings,
                    declaration,
                    handle_signals=False,
                    environ=environ,
                    task_status=task_status,
                )
            )
            url = sidecar.public_urls[0]
            try:
                print(title, file=out)
                print(f"  sidecar          {url}", file=out)
                print(f"  ShopiMind (fake) {api_url}", file=out)
                print(f"  your app         {app_base_url}", file=out)
                print(file=out, flush=True)
                result = await walk_flow(
                    Flow(
                        sidecar_url=url,
                        api=api,
                        settings=settings,
                        declaration=declaration,
                        access_token=token,
                        webhook_secret=webhook_secret,
                        configs=configs,
                        inbound_trigger=inbound_trigger,
                        out=out,
                    )
                )
            finally:
                sidecar.stop()
    finally:
        # The log file closes here: give the process its logging back.
        logger.handlers[:] = saved_logging[0]
        logger.setLevel(saved_logging[1])
        log_file.close()
    print(file=out)
    print(f"Kept for inspection in {root}:", file=out)
    print(
        f"  sidecar.sqlite     the database (e.g. sqlite3 {root / 'sidecar.sqlite'} "
        "'select kind, status, summary_json from sync_runs')",
        file=out,
    )
    print("  sidecar.log        the sidecar's log", file=out)
    print("  integration.toml   the declaration", file=out)
    print(f"  {_KEY_FILE:<18} its throwaway CREDENTIALS_KEY (reused here next time)", file=out)
    return result


async def run_demo(*, out: TextIO, workspace: Path | None = None) -> int:
    """`simulate` with the sample app; return the exit code (0 when every step worked)."""
    app_secret = "appsec_" + secrets.token_hex(16)
    app = sample_app(app_secret)
    async with running(app) as app_url:
        result = await run_simulation(
            out=out,
            app_base_url=app_url + app.prefix,
            app_secret=app_secret,
            declaration_path=example_declaration(),
            configs=DEMO_CONFIGS,
            workspace=workspace or Path(tempfile.mkdtemp(prefix="shopimind-sidecar-demo-")),
            title="shopimind-sidecar demo: the whole flow against an embedded ShopiMind and a "
            "sample app (sample data: "
            + ", ".join(f"{n} {k}" for k, n in SAMPLE_COUNTS.items())
            + ")",
        )
    return 0 if result.ok else 1
