"""The `simulate` command: APP_BASE_URL, APP_SECRET and INTEGRATION_FILE in, the walk of the
whole flow and an exit code out (0 when every step answered as ShopiMind wants, the
backfill included; 1 otherwise; 2 when the configuration is wrong)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import trio

from sidecar._env import EnvReader
from sidecar.appcheck import default_settings
from sidecar.config import DEFAULT_INTEGRATION_FILE
from sidecar.declaration import load_declaration
from sidecar.demo.run import run_simulation
from sidecar.errors import ConfigError

__all__ = ["run_simulate_command"]


def run_simulate_command(
    args: argparse.Namespace, *, environ: Mapping[str, str] | None = None
) -> int:
    """Run `simulate` as the CLI does; return the exit code."""
    env = EnvReader(os.environ if environ is None else environ)
    base_url = env.url("APP_BASE_URL", None, https_unless_loopback=False)
    if base_url is None and env.raw("APP_BASE_URL") is None:
        env.problem("APP_BASE_URL", "is required: the base URL of your running app's bridge")
    secret = env.secret("APP_SECRET", None)
    if not secret and not env.unreadable("APP_SECRET"):
        env.problem("APP_SECRET", "is required (or APP_SECRET_FILE): the secret your app checks")
    overrides: object = {}
    if args.settings is not None:
        try:
            overrides = json.loads(Path(args.settings).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            env.problem("--settings", f"cannot read a JSON object from {args.settings}: {exc}")
        if not isinstance(overrides, dict):
            env.problem("--settings", f"{args.settings} must hold a JSON object of settings")
            overrides = {}
    if env.problems or base_url is None or not secret or not isinstance(overrides, dict):
        raise ConfigError(env.problems)
    path = Path(env.text("INTEGRATION_FILE", DEFAULT_INTEGRATION_FILE))
    declaration = load_declaration(path)
    configs = {**default_settings(declaration), **overrides}
    result = trio.run(
        lambda: run_simulation(
            out=sys.stdout,
            app_base_url=base_url,
            app_secret=secret,
            declaration_path=path,
            configs=configs,
            workspace=Path(args.workspace) if args.workspace else None,
            inbound_trigger=args.inbound_trigger,
            port=args.port,
        )
    )
    return 0 if result.ok else 1
