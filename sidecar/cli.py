"""The `shopimind-sidecar` command. Thin: parse, call one function of the core, format.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence

import trio

from sidecar import __version__
from sidecar.config import LoadedSettings, Settings, load_settings
from sidecar.errors import ConfigError, NotADatabaseError, SidecarError
from sidecar.logs import configure_logging, get_logger
from sidecar.security.cipher import make_cipher
from sidecar.store import open_store

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_log = get_logger("cli")


def _load(environ: dict[str, str] | None = None) -> LoadedSettings:
    return load_settings(os.environ if environ is None else environ)


def _start_logging(loaded: LoadedSettings) -> None:
    settings = loaded.settings
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    for warning in loaded.warnings:
        _log.warning(warning)


def _summary(settings: Settings) -> list[str]:
    key = "set (AES-256-GCM)" if settings.credentials_key else "NOT SET (plaintext, development)"
    admin = (
        "disabled (no ADMIN_TOKEN)"
        if settings.admin_token is None
        else f"{settings.admin_host}:{settings.admin_port}"
        if settings.admin_port is not None
        else "on the public listener"
    )
    return [
        f"declaration      {settings.integration_file}",
        f"database         {settings.database_path}",
        f"listen           {settings.host}:{settings.port}",
        f"admin            {admin}",
        f"app bridge       {settings.app_base_url}",
        f"shopimind api    {settings.shopimind_core_api_base}",
        f"webhook secrets  {len(settings.webhook_secrets)}",
        f"credentials key  {key}",
    ]


def _command_check(args: argparse.Namespace) -> int:
    loaded = _load()
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("configuration OK")
    for line in _summary(loaded.settings):
        print(f"  {line}")
    return EXIT_OK


async def _migrate(settings: Settings) -> int:
    key = settings.credentials_key.reveal() if settings.credentials_key else None
    store = await open_store(settings.database_path, cipher=make_cipher(key))
    try:
        return await store.schema_version()
    finally:
        await store.aclose()


def _command_migrate(args: argparse.Namespace) -> int:
    loaded = _load()
    _start_logging(loaded)
    version = trio.run(_migrate, loaded.settings)
    print(f"{loaded.settings.database_path}: schema version {version}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopimind-sidecar",
        description="Turns your app into a ShopiMind integration. "
        "Configured by environment variables; see README.md.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"shopimind-sidecar {__version__} "
        f"(Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check", help="validate the environment and exit (0 fine, 2 problems)"
    )
    check.set_defaults(run=_command_check)
    migrate = commands.add_parser("migrate", help="create or upgrade the database schema and exit")
    migrate.set_defaults(run=_command_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except NotADatabaseError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SidecarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
