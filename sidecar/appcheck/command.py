"""The `app-check` command: the environment and options in, a report and an exit code out.

    APP_BASE_URL, APP_SECRET (or _FILE), INTEGRATION_FILE, APP_HEALTH_PATH   what to check
    --json, --settings FILE, --page-limit N, --max-pages N                   options (see --help)

Exit 0 when every check passed, 1 when one failed, 2 when the configuration is wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import trio

from sidecar._env import EnvReader
from sidecar.appcheck.report import dumps, render_text
from sidecar.appcheck.run import AppCheckTarget, SyncLimits, run_app_check
from sidecar.config import DEFAULT_INTEGRATION_FILE, _app_health_path
from sidecar.declaration import load_declaration
from sidecar.errors import ConfigError, ConfigProblem

__all__ = ["run_app_check_command"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _settings_file(path: str | None, env: EnvReader) -> Mapping[str, object]:
    if path is None:
        return {}
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        env.problem("--settings", f"cannot read a JSON object from {path}: {exc}")
        return {}
    if not isinstance(settings, dict):
        env.problem("--settings", f"{path} must hold a JSON object of settings")
        return {}
    return settings


def _target(args: argparse.Namespace, environ: Mapping[str, str]) -> AppCheckTarget:
    env = EnvReader(environ)
    base_url = env.url("APP_BASE_URL", None, https_unless_loopback=False)
    if base_url is None and env.raw("APP_BASE_URL") is None:
        env.problem("APP_BASE_URL", "is required: the base URL of the app to check")
    secret = env.secret("APP_SECRET", None)
    if not secret and not env.unreadable("APP_SECRET"):
        env.problem("APP_SECRET", "is required (or APP_SECRET_FILE): the secret the app checks")
    health_path = _app_health_path(env)
    settings = _settings_file(args.settings, env)
    defaults = SyncLimits()
    page_limit = defaults.page_limit if args.page_limit is None else args.page_limit
    max_pages = defaults.max_pages if args.max_pages is None else args.max_pages
    if page_limit < 1:
        env.problem("--page-limit", "must be at least 1")
    if max_pages < 1:
        env.problem("--max-pages", "must be at least 1")
    if env.problems or base_url is None or not secret:
        raise ConfigError(env.problems or [ConfigProblem("APP_BASE_URL", "is required")])
    return AppCheckTarget(
        base_url=base_url,
        secret=secret,
        health_path=health_path,
        settings=settings,
        limits=SyncLimits(page_limit=page_limit, max_pages=max_pages),
    )


def _progress(err: TextIO) -> Callable[[str], None]:
    """One updating line on a terminal; nothing when stderr is a file or a pipe."""
    if not err.isatty():
        return lambda name: None

    def show(name: str) -> None:
        err.write(f"\r\x1b[Kchecking {name}…")
        err.flush()

    return show


def run_app_check_command(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run app-check as the CLI does; return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    environ = os.environ if environ is None else environ
    target = _target(args, environ)
    declaration = load_declaration(
        Path(EnvReader(environ).text("INTEGRATION_FILE", DEFAULT_INTEGRATION_FILE))
    )
    progress = _progress(err)
    # The report says everything the bridge's log would: keep the terminal for the report.
    logging.disable(logging.CRITICAL)
    try:
        report = trio.run(lambda: run_app_check(target, declaration, progress=progress))
    finally:
        logging.disable(logging.NOTSET)
    if err.isatty():
        err.write("\r\x1b[K")
        err.flush()
    if args.json:
        out.write(dumps(report) + "\n")
    else:
        render_text(report, out)
    return EXIT_OK if report.ok else EXIT_FAILED
