"""The `shopimind-sidecar` command. Thin: parse, call one function of the core, format.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sidecar import __version__
from sidecar._env import EnvReader
from sidecar.config import DEFAULT_INTEGRATION_FILE, LoadedSettings, Settings, load_settings
from sidecar.declaration import (
    Declaration,
    build_manifest,
    declaration_json_schema,
    load_declaration,
)
from sidecar.errors import ConfigError, DeclarationError, NotADatabaseError, SidecarError
from sidecar.logs import configure_logging, get_logger
from sidecar.store_target import store_target

if TYPE_CHECKING:
    from sidecar.overview import InstallationOverview
    from sidecar.sync.cursor_sync import CursorReport

# What a command needs beyond parsing and the configuration (trio, the runtime, the store,
# the admin command layer, the demo and its fakes) is imported inside that command: `check`
# and `--version` stay cheap, and `serve` loads nothing it does not run
# (tests/test_lean_start.py).

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_log = get_logger("cli")
T = TypeVar("T")


def _run_async(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`trio.run`, with trio imported only by the commands that run something."""
    import trio

    return trio.run(fn, *args)


def _load(environ: dict[str, str] | None = None) -> LoadedSettings:
    return load_settings(os.environ if environ is None else environ)


def _integration_file() -> Path:
    """INTEGRATION_FILE alone: commands that only read the declaration need nothing else."""
    return Path(EnvReader(os.environ).text("INTEGRATION_FILE", DEFAULT_INTEGRATION_FILE))


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _start_logging(loaded: LoadedSettings, *, quiet: bool = False) -> None:
    """Logs on stderr at LOG_LEVEL; `quiet` (a command with its own progress output and
    no `-v`) shows warnings and errors only."""
    settings = loaded.settings
    level = "warning" if quiet and settings.log_level in ("debug", "info") else settings.log_level
    configure_logging(level=level, fmt=settings.log_format, fields={"replica": settings.replica_id})
    for warning in loaded.warnings:
        _log.warning(warning)


def _summary(settings: Settings, declaration: Declaration) -> list[str]:
    key = "set (AES-256-GCM)" if settings.credentials_key else "NOT SET (plaintext, development)"
    admin = (
        "disabled (no ADMIN_TOKEN)"
        if settings.admin_token is None
        else f"{settings.admin_host}:{settings.admin_port}"
        if settings.admin_port is not None
        else "on the public listener"
    )
    return [
        f"declaration      {settings.integration_file} ({declaration.slug} "
        f"{declaration.meta.version}: {len(declaration.sync)} sync steps, "
        f"{len(declaration.inbound)} inbound actions)",
        f"database         {store_target(settings).describe()}",
        f"listen           {settings.host}:{settings.port}",
        f"admin            {admin}",
        f"app bridge       {settings.app_base_url}",
        f"app health       {settings.app_health_path or 'not probed (no APP_HEALTH_PATH)'}",
        f"shopimind api    {settings.shopimind_core_api_base}",
        f"webhook secrets  {len(settings.webhook_secrets)}",
        f"credentials key  {key}",
    ]


def _checked() -> tuple[LoadedSettings, Declaration] | list[str]:
    """The settings and the declaration, or every problem with them (one line each)."""
    problems: list[str] = []
    loaded: LoadedSettings | None = None
    try:
        loaded = _load()
    except ConfigError as exc:
        problems += [str(problem) for problem in exc.problems]
    path = loaded.settings.integration_file if loaded is not None else _integration_file()
    declaration: Declaration | None = None
    if path.is_file():  # otherwise INTEGRATION_FILE's problem is already reported
        try:
            declaration = load_declaration(path)
        except DeclarationError as exc:
            problems += [str(problem) for problem in exc.problems]
    if problems or loaded is None or declaration is None:
        return problems
    return loaded, declaration


def _command_check(args: argparse.Namespace) -> int:
    checked = _checked()
    if isinstance(checked, list):
        for problem in checked:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    loaded, declaration = checked
    server = None
    database_url = loaded.settings.database_url
    if database_url is not None:
        try:
            server = _run_async(
                _check_server, database_url.reveal(), loaded.settings.database_schema
            )
        except SidecarError as exc:
            print(f"DATABASE_URL: {exc}", file=sys.stderr)
            return EXIT_USAGE
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("configuration OK")
    for line in _summary(loaded.settings, declaration):
        print(f"  {line}")
    if server is not None:
        print(f"  {server}")
    return EXIT_OK


async def _check_server(url: str, schema: str) -> str:
    """Connect to the PostgreSQL server once: version, privileges, schema version."""
    from sidecar.store.postgres.check import check_server  # the driver, only when used

    report = await check_server(url, schema)
    schema = (
        f"schema version {report.schema_version}"
        if report.schema_exists
        else "schema to be created at the first start"
    )
    return f"postgresql       server {report.version}, {schema}"


def _command_schema(args: argparse.Namespace) -> int:
    _print_json(declaration_json_schema())
    return EXIT_OK


def _command_manifest(args: argparse.Namespace) -> int:
    _print_json(build_manifest(load_declaration(_integration_file())))
    return EXIT_OK


async def _migrate(settings: Settings) -> int:
    from sidecar.wiring import open_settings_store

    async with open_settings_store(settings) as store:
        return await store.schema_version()


def _command_serve(args: argparse.Namespace) -> int:
    # `check` is part of the start (the unit runs no separate step): every problem of the
    # settings and the declaration, one line each, then exit 2 before anything is opened.
    checked = _checked()
    if isinstance(checked, list):
        for problem in checked:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    loaded, declaration = checked
    _start_logging(loaded)
    from sidecar.runtime import run_sidecar

    _run_async(run_sidecar, loaded.settings, declaration)
    return EXIT_OK


def _command_migrate(args: argparse.Namespace) -> int:
    loaded = _load()
    _start_logging(loaded)
    version = _run_async(_migrate, loaded.settings)
    print(f"{store_target(loaded.settings).describe()}: schema version {version}")
    return EXIT_OK


def _installation_lines(overview: InstallationOverview) -> list[str]:
    from sidecar.sync.run_outcome import describe_run

    installation = overview.installation
    run = overview.last_run
    last = (
        f"last run {run.status} ({run.kind}) at {run.started_at}: {describe_run(run)}"
        if run
        else "never synced"
    )
    lines = [
        f"{installation.installation_id}  {installation.status:<11} "
        f"{installation.shop_domain or '-'}  {last}"
    ]
    for cursor in overview.cursors:
        name = cursor.entity + (f"[{cursor.source_key}]" if cursor.source_key else "")
        state = cursor.last_status or "-"
        if cursor.consecutive_failures:
            state += f" x{cursor.consecutive_failures}: {cursor.last_error or ''}"
        if cursor.retry_at and cursor.consecutive_failures:
            state += f" (ShopiMind asked to wait: next try after {cursor.retry_at})"
        lines.append(f"    {name:<28} synced to {cursor.last_synced_at or '-':<24} {state}")
    for point in overview.resume_points:
        name = point.entity + (f"[{point.source_key}]" if point.source_key else "")
        lines.append(
            f"    {name:<28} in progress: {point.items} items in {point.pages} pages of the "
            f"window {point.window_since} → {point.window_until}"
        )
    return lines


def _overview_json(overview: InstallationOverview) -> dict[str, object]:
    from sidecar.sync.run_outcome import describe_run

    shown = dataclasses.asdict(overview)
    if overview.last_run is not None:
        shown["last_run"]["ended"] = describe_run(overview.last_run)
    return shown


def _operator() -> str:
    """Who runs the command, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (e.g. in a container)
        return f"cli:uid-{os.getuid()}"


async def _show_inbound_secret(settings: Settings, installation_id: str) -> int:
    from sidecar.inbound import InboundSecretUnavailableError, reveal_inbound_secret
    from sidecar.wiring import open_settings_store

    async with open_settings_store(settings) as store:
        try:
            secret = await reveal_inbound_secret(store, installation_id, actor=_operator())
        except InboundSecretUnavailableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    print(secret)
    return EXIT_OK


async def _installations(settings: Settings, args: argparse.Namespace) -> int:
    if args.show_inbound_secret is not None:
        return await _show_inbound_secret(settings, args.show_inbound_secret)
    from sidecar.overview import installation_overviews
    from sidecar.wiring import open_settings_store

    async with open_settings_store(settings) as store:
        overviews = await installation_overviews(store, installation_id=args.installation_id)
    if args.installation_id is not None and not overviews:
        print(f"error: no installation {args.installation_id!r}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        _print_json([_overview_json(overview) for overview in overviews])
        return EXIT_OK
    if not overviews:
        print("no installations yet")
    for overview in overviews:
        for line in _installation_lines(overview):
            print(line)
    return EXIT_OK


def _command_installations(args: argparse.Namespace) -> int:
    loaded = _load()
    _start_logging(loaded)
    return _run_async(_installations, loaded.settings, args)


async def _replicas(settings: Settings, args: argparse.Namespace) -> int:
    from sidecar.admin.replicas import replica_view
    from sidecar.wiring import open_settings_store

    async with open_settings_store(settings) as store:
        replicas = await store.replicas.list()
    if args.json:
        _print_json([replica_view(replica) for replica in replicas])
        return EXIT_OK
    if not replicas:
        print("no replica has run on this database yet")
        return EXIT_OK
    alive = sum(replica.alive for replica in replicas)
    print(f"{alive} of {len(replicas)} replica(s) alive")
    print(f"{'REPLICA':<34} {'STATE':<8} {'VERSION':<10} {'STARTED':<25} {'HEARTBEAT':<25} LEASES")
    for r in replicas:
        state = "alive" if r.alive else "stopped" if r.stopped_at else "dead"
        print(
            f"{r.id:<34} {state:<8} {r.version:<10} {r.started_at:<25} {r.heartbeat_at:<25} "
            f"{r.leases_held}"
        )
    return EXIT_OK


def _command_replicas(args: argparse.Namespace) -> int:
    loaded = _load()
    _start_logging(loaded)
    return _run_async(_replicas, loaded.settings, args)


class _ProgressLine:
    """`customers: 12,500 items, 25 pages, 8,130 items/s` on stderr: the first page of
    every step (entity and source), then at most twice a second."""

    def __init__(self) -> None:
        self._step = ""
        self._started = self._shown = 0.0

    def __call__(self, report: CursorReport) -> None:
        now = time.monotonic()
        name = report.entity + (f"[{report.source_key}]" if report.source_key else "")
        if name != self._step:
            self._step, self._started = name, now - 1e-3
        elif now - self._shown < 0.5:
            return
        self._shown = now
        rate = report.items / max(now - self._started, 1e-6)
        print(
            f"{name}: {report.items:,} items, {report.pages:,} pages, {rate:,.0f} items/s",
            file=sys.stderr,
            flush=True,
        )


async def _sync(settings: Settings, declaration: Declaration, args: argparse.Namespace) -> int:
    from sidecar.sync.leases import LeaseBusyError, LeaseLostError
    from sidecar.wiring import open_parts

    async with open_parts(settings, declaration) as parts:
        try:
            report = await parts.sync_engine().sync(
                args.installation_id, full=args.full, progress=_ProgressLine()
            )
        except LeaseBusyError as exc:
            print(
                f"error: installation {args.installation_id!r} is already being synced "
                f"(by {exc.holder or 'another process'}); try again when it is done",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        except LeaseLostError as exc:
            print(
                f"error: the sync of {args.installation_id!r} stopped: {exc}; another "
                "process took the installation over and continues its work",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    print(f"run {report.run_id}: {report.status} ({report.kind}), {report.items:,} items")
    for cursor in report.cursors:
        name = cursor.entity + (f"[{cursor.source_key}]" if cursor.source_key else "")
        state = "skipped (backoff)" if cursor.skipped else "advanced" if cursor.advanced else "held"
        resumed = ", resumed" if cursor.resumed else ""
        print(
            f"  {name:<28} {cursor.items:>9,} items {cursor.pages:>6,} pages  "
            f"{cursor.rejected:,} rejected  {state}{resumed}"
        )
    for error in report.errors:
        print(f"  error: {error}")
    return EXIT_OK if report.status == "ok" else EXIT_FAILURE


async def _admin(settings: Settings, declaration: Declaration, args: argparse.Namespace) -> int:
    from sidecar.admin.commands import run_admin_command
    from sidecar.admin.errors import AdminError, InvalidRequestError
    from sidecar.wiring import open_parts

    async with open_parts(settings, declaration) as parts:
        try:
            result = await run_admin_command(
                parts, args, actor=_operator(), progress=_ProgressLine()
            )
        except AdminError as exc:
            print(f"error: {exc} ({exc.code})", file=sys.stderr)
            return EXIT_USAGE if isinstance(exc, InvalidRequestError) else EXIT_FAILURE
    _print_json(result)
    # A sync runs to its end here: like `sync`, the exit code says whether it went well.
    return EXIT_FAILURE if result.get("status") in ("partial", "failed", "cancelled") else EXIT_OK


def _command_admin(args: argparse.Namespace) -> int:
    loaded = _load()
    declaration = load_declaration(loaded.settings.integration_file)
    _start_logging(loaded)
    return _run_async(_admin, loaded.settings, declaration, args)


def _command_backup(args: argparse.Namespace) -> int:
    loaded = _load()
    _start_logging(loaded)
    target = store_target(loaded.settings)
    if target.is_postgres:
        # Never a silent no-op: PostgreSQL has its own tool, which knows the server's state.
        print(
            "backup copies the SQLite file; with DATABASE_URL the store is on PostgreSQL: "
            f"back it up with pg_dump, e.g. pg_dump --schema={target.schema} --format=custom "
            f"--file={args.path} <DATABASE_URL>",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from sidecar.store.sqlite.backup import backup_database

    result = _run_async(backup_database, loaded.settings.database_path, Path(args.path))
    print(
        f"{result.target}: {result.size_bytes:,} bytes, schema version {result.schema_version}, "
        "integrity ok"
    )
    return EXIT_OK


def _command_store_copy(args: argparse.Namespace) -> int:
    from sidecar.clock import format_timestamp, system_clock
    from sidecar.postgres_url import redact_url, url_problem
    from sidecar.store.copy import copy_store  # the PostgreSQL driver, only when used

    loaded = _load()
    settings = loaded.settings
    if settings.database_url is not None:
        print(
            "store copy reads the SQLite file at DATABASE_PATH: unset DATABASE_URL while copying",
            file=sys.stderr,
        )
        return EXIT_USAGE
    problem = url_problem(args.to)
    if problem is not None:
        print(f"--to {problem}", file=sys.stderr)
        return EXIT_USAGE
    target = f"{redact_url(args.to)} (schema {settings.database_schema})"
    print(f"copying {settings.database_path} to {target}", file=sys.stderr)

    def progress(table: str, done: int, total: int) -> None:
        print(f"  {table}: {done:,}/{total:,}", file=sys.stderr)

    report = _run_async(
        lambda: copy_store(
            settings.database_path,
            args.to,
            schema=settings.database_schema,
            applied_at=format_timestamp(system_clock()),
            progress=progress,
        )
    )
    for table, count in report.counts.items():
        print(f"{table:<20} {count:>10,} rows (verified)")
    print(
        f"copied {sum(report.counts.values()):,} rows; now set DATABASE_URL (and "
        f"DATABASE_SCHEMA={settings.database_schema}), unset DATABASE_PATH, and start the sidecar"
    )
    return EXIT_OK


def _command_demo(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace) if args.workspace else None
    from sidecar.demo import run_demo

    return _run_async(lambda: run_demo(out=sys.stdout, workspace=workspace))


def _command_app_check(args: argparse.Namespace) -> int:
    from sidecar.appcheck.command import run_app_check_command

    return run_app_check_command(args)


def _command_simulate(args: argparse.Namespace) -> int:
    from sidecar.demo.command import run_simulate_command

    return run_simulate_command(args)


def _versions() -> str:
    """The version line: ours, the build's Python and SQLite, and the key dependencies."""
    import importlib.metadata  # ~25 ms: only for this line

    parts = [f"Python {sys.version.split()[0]}", f"SQLite {sqlite3.sqlite_version}"]
    for name in ("trio", "hypercorn", "quart", "quart-trio", "httpx", "cryptography", "psycopg"):
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{name} ?")
    return f"shopimind-sidecar {__version__} ({', '.join(parts)})"


class _VersionAction(argparse.Action):
    """`--version` on one line (argparse's own action wraps it at the terminal's width)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(_versions())
        parser.exit()


def _command_sync(args: argparse.Namespace) -> int:
    loaded = _load()
    declaration = load_declaration(loaded.settings.integration_file)
    _start_logging(loaded, quiet=not args.verbose)
    return _run_async(_sync, loaded.settings, declaration, args)


def _parser(*, admin_actions: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopimind-sidecar",
        description="Turns your app into a ShopiMind integration. "
        "Configured by environment variables; see README.md.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the version, the build's Python and SQLite, and the dependencies, and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the sidecar (the default command)")
    serve.set_defaults(run=_command_serve)
    check = commands.add_parser(
        "check",
        help="validate the environment and the declaration file, then exit (0 fine, 2 problems)",
    )
    check.set_defaults(run=_command_check)
    schema = commands.add_parser(
        "schema", help="print the JSON Schema of the declaration file (for editors)"
    )
    schema.set_defaults(run=_command_schema)
    manifest = commands.add_parser(
        "manifest", help="print the manifest ShopiMind reads, derived from INTEGRATION_FILE"
    )
    manifest.set_defaults(run=_command_manifest)
    migrate = commands.add_parser("migrate", help="create or upgrade the database schema and exit")
    migrate.set_defaults(run=_command_migrate)
    installations = commands.add_parser(
        "installations", help="list installations with their cursors and last run"
    )
    backup = commands.add_parser(
        "backup", help="copy the live database to a new file (SQLite online backup)"
    )
    backup.add_argument("path", help="the new file to write (never overwritten)")
    backup.set_defaults(run=_command_backup)
    store = commands.add_parser("store", help="operations on the store as a whole")
    store_commands = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    store_copy = store_commands.add_parser(
        "copy",
        help="copy the SQLite store (DATABASE_PATH) into an empty PostgreSQL store, verified",
    )
    store_copy.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://user:password@host:5432/db"
    )
    store_copy.set_defaults(run=_command_store_copy)
    demo = commands.add_parser(
        "demo",
        help="run the whole flow against an embedded ShopiMind and a sample app (no setup)",
    )
    demo.add_argument(
        "--workspace", help="folder for the demo's files (default: a new temp folder)"
    )
    demo.set_defaults(run=_command_demo)
    simulate = commands.add_parser(
        "simulate",
        help="rehearse the whole flow with your running app (APP_BASE_URL) and an embedded "
        "ShopiMind: install, activate, backfill, inbound, deactivate",
    )
    simulate.add_argument(
        "--settings",
        metavar="FILE",
        help="a JSON object of the merchant's settings (default: the form's defaults)",
    )
    simulate.add_argument(
        "--inbound-trigger",
        metavar="URL",
        help="a route of your app that makes it send its inbound call (POSTed "
        '{"installation_id": ...}); without it, simulate sends one itself',
    )
    simulate.add_argument(
        "--port",
        type=int,
        default=0,
        help="the sidecar's port, for your app's inbound calls (default: any free port)",
    )
    simulate.add_argument(
        "--workspace", help="folder for the simulation's files (default: a new temp folder)"
    )
    simulate.set_defaults(run=_command_simulate)
    app_check = commands.add_parser(
        "app-check",
        help="check your running app (APP_BASE_URL) against the bridge contract; "
        "exit 0 when every check passed",
    )
    app_check.add_argument("--json", action="store_true", help="print the report as JSON")
    app_check.add_argument(
        "--settings",
        metavar="FILE",
        help="a JSON object of the merchant's settings to send (default: the form's defaults)",
    )
    app_check.add_argument("--page-limit", type=int, help="items asked per sync page (default 100)")
    app_check.add_argument(
        "--max-pages", type=int, help="pages walked per sync window before stopping (default 50)"
    )
    app_check.set_defaults(run=_command_app_check)
    sync = commands.add_parser(
        "sync",
        help="sync one installation now, with a progress line; exit 0 when the run is ok",
    )
    sync.add_argument("installation_id", help="the installation to sync")
    sync.add_argument(
        "--full", action="store_true", help="a full backfill (BACKFILL_DAYS), not incremental"
    )
    sync.add_argument(
        "-v", "--verbose", action="store_true", help="show the log at LOG_LEVEL (default: warnings)"
    )
    sync.set_defaults(run=_command_sync)
    installations.add_argument("installation_id", nargs="?", help="show only this installation")
    installations.add_argument("--json", action="store_true", help="print JSON")
    installations.add_argument(
        "--show-inbound-secret",
        metavar="INSTALLATION_ID",
        help="print the secret the app signs this installation's inbound calls with "
        "(created if it has none; recorded in the audit log and the log)",
    )
    installations.set_defaults(run=_command_installations)
    replicas = commands.add_parser(
        "replicas",
        help="list the replicas sharing the database: alive or not, version, heartbeat, leases",
    )
    replicas.add_argument("--json", action="store_true", help="print JSON")
    replicas.set_defaults(run=_command_replicas)
    admin = commands.add_parser(
        "admin",
        help="the admin API's reads and actions on the local store (JSON; actions audited)",
    )
    if admin_actions:  # the admin command layer is imported only when it may run
        from sidecar.admin.commands import add_admin_commands

        add_admin_commands(admin)
    admin.set_defaults(run=_command_admin)
    return parser


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as trio's nurseries raise them."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _exit_code(error: BaseException) -> int:
    """Report a failure the way an operator needs it: one line each, never a traceback."""
    leaves = _leaves(error)
    if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
        return 130
    code = EXIT_FAILURE
    for leaf in leaves:
        if isinstance(leaf, ConfigError | DeclarationError):
            for problem in leaf.problems:
                print(problem, file=sys.stderr)
            code = EXIT_USAGE
        elif isinstance(leaf, NotADatabaseError):
            print(leaf, file=sys.stderr)
            code = EXIT_USAGE
        elif isinstance(leaf, SidecarError):
            print(f"error: {leaf}", file=sys.stderr)
        elif not isinstance(leaf, KeyboardInterrupt):
            _log.error(
                "unexpected failure",
                error=f"{type(leaf).__name__}: {leaf}",
                traceback="".join(traceback.format_exception(leaf)),
            )
            print(f"error: unexpected {type(leaf).__name__}: {leaf}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            args = _parser(admin_actions="admin" in arguments).parse_args(arguments)
        finally:  # --help and --version exit here: their output is flushed while caught
            sys.stdout.flush()
        run: Callable[[argparse.Namespace], int] = getattr(args, "run", _command_serve)
        code = run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`… | head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (Exception, KeyboardInterrupt, BaseExceptionGroup) as error:  # noqa: BLE001
        return _exit_code(error)
