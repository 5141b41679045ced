"""Environment variables → one frozen, typed `Settings` (DESIGN.md, "Configuration").

`load_settings(os.environ)` validates every variable and raises `ConfigError` listing
*all* problems at once, each naming the variable and what is expected. Secrets
(`WEBHOOK_SECRET`, `CREDENTIALS_KEY`, `ADMIN_TOKEN`, `APP_SECRET`) may also come from
`<NAME>_FILE` or from `$CREDENTIALS_DIRECTORY/<name>` (systemd `LoadCredential=`), and so
may `DATABASE_URL` (PostgreSQL instead of the SQLite file), whose password it may hold.
Secrets are held in `Secret` wrappers so a settings object can be printed or logged
without revealing them.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar, cast

from sidecar._env import EnvReader
from sidecar.client_address import Network, parse_trusted_proxies
from sidecar.errors import ConfigError
from sidecar.postgres_url import DEFAULT_DATABASE_SCHEMA, schema_problem, url_problem
from sidecar.security.cipher import KEY_BYTES
from sidecar.shopimind.resources import DEFAULT_PUSH_CONCURRENCY
from sidecar.sqlite_file import database_path_problem

__all__ = [
    "DEFAULT_BACKFILL_DAYS",
    "DEFAULT_BODY_TIMEOUT_SECONDS",
    "DEFAULT_DATABASE_PATH",
    "DEFAULT_DRAIN_TIMEOUT_SECONDS",
    "DEFAULT_HEADER_TIMEOUT_SECONDS",
    "DEFAULT_LEASE_TTL_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_CLIENT",
    "DEFAULT_PORT",
    "DEFAULT_SHOPIMIND_CORE_API_BASE",
    "DEFAULT_SYNC_INTERVAL_MINUTES",
    "DEFAULT_SYNC_WORKERS",
    "LoadedSettings",
    "LogFormat",
    "OutboundLimits",
    "Secret",
    "Settings",
    "default_replica_id",
    "load_settings",
]

DEFAULT_INTEGRATION_FILE = "integration.toml"
DEFAULT_DATABASE_PATH = "./data/sidecar.sqlite"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ADMIN_HOST = "127.0.0.1"
DEFAULT_SHOPIMIND_CORE_API_BASE = "https://core.shopimind.com"
DEFAULT_SYNC_INTERVAL_MINUTES = 15
DEFAULT_SYNC_WORKERS = 4
MAX_PUSH_CONCURRENCY = 16
"""Chunks in flight per installation; all syncs share one pool of 100 connections."""
DEFAULT_BACKFILL_DAYS = 365
DEFAULT_OVERLAP_SECONDS = 0
DEFAULT_RETENTION_DAYS = 90
DEFAULT_AUDIT_RETENTION_DAYS = 365
DEFAULT_DRAIN_TIMEOUT_SECONDS = 10.0
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
# The circuit breakers' defaults (sidecar.peer_guard reads them from here: this module stays
# free of httpx and trio, so `check` loads neither).
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_COOL_DOWN_SECONDS = 30.0
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
DEFAULT_LEASE_TTL_SECONDS = 30.0
"""How long a lease outlives its holder's last renewal (sidecar.sync.leases reads it here)."""
MAX_LEASE_TTL_SECONDS = 86400.0
REPLICA_ID_MAX_LENGTH = 64
_REPLICA_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{REPLICA_ID_MAX_LENGTH}}}")
_NOT_IN_REPLICA_ID = re.compile(r"[^A-Za-z0-9._:-]")

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]

T = TypeVar("T", str, bytes)


def default_replica_id() -> str:
    """`<hostname>:<pid>:<8 hex>`: the host name cut short (and any character REPLICA_ID
    does not allow replaced) so that the whole fits in 64 characters."""
    tail = f":{os.getpid()}:{secrets.token_hex(4)}"
    host = _NOT_IN_REPLICA_ID.sub("-", socket.gethostname()) or "host"
    return host[: REPLICA_ID_MAX_LENGTH - len(tail)] + tail


@dataclass(frozen=True, slots=True)
class Secret(Generic[T]):
    """A secret value that does not show itself in `repr`, `str` or f-strings."""

    _value: T = field(repr=False)

    def reveal(self) -> T:
        """The secret itself: call only where it is used, never to log or display it."""
        return self._value

    def __str__(self) -> str:
        return "[redacted]"

    def __repr__(self) -> str:
        return "Secret([redacted])"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundLimits:
    """Back-pressure toward the peers (`sidecar.peer_guard`)."""

    shopimind_requests_per_second: float = 0.0
    """All installations together; 0: unlimited."""
    shopimind_requests_per_second_per_installation: float = 0.0
    """One installation; 0: unlimited."""
    circuit_failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    circuit_cool_down_seconds: float = DEFAULT_COOL_DOWN_SECONDS


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the sidecar reads from its environment, validated."""

    integration_file: Path
    database_path: Path
    webhook_secrets: tuple[Secret[str], ...]
    credentials_key: Secret[bytes] | None
    allow_plaintext_secrets: bool
    host: str
    port: int
    admin_token: Secret[str] | None
    admin_host: str
    admin_port: int | None
    app_base_url: str
    app_secret: Secret[str]
    shopimind_core_api_base: str
    sync_interval_minutes: int
    sync_workers: int
    backfill_days: int
    overlap_seconds: int
    retention_days: int
    dead_letter_retention_days: int
    audit_retention_days: int
    drain_timeout_seconds: float
    signature_tolerance_seconds: int
    log_level: LogLevel
    log_format: LogFormat
    app_health_path: str | None = None
    """Probed under APP_BASE_URL; scheduled syncs pause while it fails. None: no probe."""
    outbound: OutboundLimits = field(default_factory=OutboundLimits)
    """Rate limits toward ShopiMind and the circuit breakers of both peers."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open client connections in all (both listeners), lowered to what LimitNOFILE allows."""
    max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    database_url: Secret[str] | None = None
    """A PostgreSQL server (DATABASE_URL) instead of the SQLite file; it may hold a password."""
    database_schema: str = DEFAULT_DATABASE_SCHEMA
    """The PostgreSQL schema holding the sidecar's tables (DATABASE_SCHEMA)."""
    admin_readonly_token: Secret[str] | None = None
    """Signs in to the admin console to look, never to act (ADMIN_READONLY_TOKEN)."""
    admin_cookie_secure: bool = False
    """Mark the console's session cookie `Secure` even when the request came over plain
    HTTP (a TLS-terminating proxy in front: ADMIN_COOKIE_SECURE)."""
    admin_session_minutes: int = 30
    """How long a console session lasts without use (ADMIN_SESSION_MINUTES)."""
    push_concurrency: int = DEFAULT_PUSH_CONCURRENCY
    """Chunks of a sync page pushed to ShopiMind at once, per installation."""
    lease_ttl_seconds: float = DEFAULT_LEASE_TTL_SECONDS
    """How long a lease outlives its holder's last renewal (LEASE_TTL_SECONDS): a holder
    renews every third of it, and a dead replica's work is taken over after it."""
    replica_id: str = field(default_factory=default_replica_id)
    """This process among the replicas sharing the database (REPLICA_ID): its name in
    leases, run rows, logs, the replicas table and the User-Agent of outbound calls."""
    trusted_proxies: tuple[Network, ...] = ()
    """Peers whose X-Forwarded-For names the client (TRUSTED_PROXIES); none by default."""


@dataclass(frozen=True, slots=True)
class LoadedSettings:
    """Valid settings, and the warnings an operator should see at startup."""

    settings: Settings
    warnings: tuple[str, ...]


def _webhook_secrets(env: EnvReader, raw: str | None, was_set: bool) -> tuple[Secret[str], ...]:
    if raw is None:
        if env.unreadable("WEBHOOK_SECRET"):
            pass
        elif was_set:
            env.problem("WEBHOOK_SECRET", "is empty; set the secret ShopiMind signs webhooks with")
        else:
            env.problem(
                "WEBHOOK_SECRET",
                "is required (or WEBHOOK_SECRET_FILE, or a 'webhook_secret' credential): "
                "the secret ShopiMind signs webhooks with; separate several with commas",
            )
        return ()
    secrets = tuple(Secret(part.strip()) for part in raw.split(",") if part.strip())
    if not secrets:
        env.problem(
            "WEBHOOK_SECRET", "holds no secret, only commas and blanks; set at least one secret"
        )
    return secrets


def _credentials_key(
    env: EnvReader, raw: str | None, allow_plaintext: bool
) -> Secret[bytes] | None:
    if raw is None:
        if env.unreadable("CREDENTIALS_KEY"):
            pass
        elif allow_plaintext:
            env.warnings.append(
                "ALLOW_PLAINTEXT_SECRETS=true and no CREDENTIALS_KEY: access tokens and "
                "secrets are stored UNENCRYPTED. Development only; never in production"
            )
        else:
            env.problem(
                "CREDENTIALS_KEY",
                f"is required: {KEY_BYTES * 2} hex characters ({KEY_BYTES} bytes) that encrypt "
                "secrets at rest, e.g. from `openssl rand -hex 32` (development only: "
                "ALLOW_PLAINTEXT_SECRETS=true)",
            )
        return None
    if any(c not in "0123456789abcdefABCDEF" for c in raw):
        env.problem(
            "CREDENTIALS_KEY",
            f"must be {KEY_BYTES * 2} hex characters ({KEY_BYTES} bytes); "
            "it contains characters that are not hex",
        )
        return None
    if len(raw) != KEY_BYTES * 2:
        env.problem(
            "CREDENTIALS_KEY",
            f"must be {KEY_BYTES * 2} hex characters ({KEY_BYTES} bytes); got {len(raw)} "
            f"characters ({len(raw) / 2:g} bytes)",
        )
        return None
    return Secret(bytes.fromhex(raw))


def _app_health_path(env: EnvReader) -> str | None:
    path = env.raw("APP_HEALTH_PATH")
    if path is None:
        return None
    if (
        not path.startswith("/")
        or any(c.isspace() or c in "?#\\" for c in path)
        or ".." in path.split("/")
        or not path.isascii()
        or not path.isprintable()
    ):
        env.problem(
            "APP_HEALTH_PATH",
            f"must be a path under APP_BASE_URL starting with '/', e.g. /health; got {path!r}",
        )
        return None
    return path


def _database_url(
    env: EnvReader, credentials_directory: Path | None
) -> tuple[Secret[str] | None, str, bool]:
    """DATABASE_URL (PostgreSQL), DATABASE_SCHEMA, and whether a URL was configured at all
    (right or wrong). The URL is a secret (it may hold a password): no message quotes it."""
    schema = env.text("DATABASE_SCHEMA", DEFAULT_DATABASE_SCHEMA)
    problem = schema_problem(schema)
    if problem is not None:
        env.problem("DATABASE_SCHEMA", problem)
        schema = DEFAULT_DATABASE_SCHEMA
    raw = env.secret("DATABASE_URL", credentials_directory)
    if raw is None:
        return None, schema, env.unreadable("DATABASE_URL")
    problem = url_problem(raw)
    if problem is not None:
        env.problem("DATABASE_URL", problem)
        return None, schema, True
    if env.raw("DATABASE_PATH") is not None:
        env.problem(
            "DATABASE_URL",
            "and DATABASE_PATH are both set; set DATABASE_URL for PostgreSQL or DATABASE_PATH "
            "for the SQLite file, not both",
        )
        return None, schema, True
    return Secret(raw), schema, True


def _replica_id(env: EnvReader) -> str:
    raw = env.raw("REPLICA_ID")
    if raw is None:
        return default_replica_id()
    if _REPLICA_ID.fullmatch(raw) is None:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        env.problem(
            "REPLICA_ID",
            f"must be 1 to {REPLICA_ID_MAX_LENGTH} characters among A-Z a-z 0-9 . _ : - "
            f"(e.g. web-1); got {shown!r} ({len(raw)} characters)",
        )
        return default_replica_id()
    return raw


def _trusted_proxies(env: EnvReader) -> tuple[Network, ...]:
    raw = env.raw("TRUSTED_PROXIES")
    if raw is None:
        return ()
    networks, bad = parse_trusted_proxies(raw)
    for entry in bad:
        shown = entry if len(entry) <= 40 else entry[:40] + "…"
        env.problem(
            "TRUSTED_PROXIES",
            f"{shown!r} is not an IP address or a CIDR range (e.g. 10.0.0.0/8, "
            "2001:db8::/32); separate several with commas",
        )
    return networks


def _existing_file(env: EnvReader, name: str, default: str) -> Path:
    path = Path(env.text(name, default))
    if not path.exists():
        env.problem(name, f"no such file: {path}")
    elif not path.is_file():
        env.problem(name, f"{path} is not a file")
    return path


def _outbound_limits(env: EnvReader) -> OutboundLimits:
    return OutboundLimits(
        shopimind_requests_per_second=env.number(
            "SHOPIMIND_REQUESTS_PER_SECOND", 0.0, minimum=0.0, maximum=100_000.0
        ),
        shopimind_requests_per_second_per_installation=env.number(
            "SHOPIMIND_REQUESTS_PER_SECOND_PER_INSTALLATION", 0.0, minimum=0.0, maximum=100_000.0
        ),
        circuit_failure_threshold=env.integer(
            "CIRCUIT_FAILURE_THRESHOLD", DEFAULT_FAILURE_THRESHOLD, minimum=1, maximum=1000
        ),
        circuit_cool_down_seconds=env.number(
            "CIRCUIT_COOL_DOWN_SECONDS", DEFAULT_COOL_DOWN_SECONDS, minimum=1.0, maximum=3600.0
        ),
    )


def _lease_ttl_seconds(env: EnvReader) -> float:
    raw = env.raw("LEASE_TTL_SECONDS")
    value = env.number(
        "LEASE_TTL_SECONDS", DEFAULT_LEASE_TTL_SECONDS, minimum=0.0, maximum=MAX_LEASE_TTL_SECONDS
    )
    if raw is not None and value == 0:
        env.problem(
            "LEASE_TTL_SECONDS",
            f"must be more than 0 seconds (at most {MAX_LEASE_TTL_SECONDS:g}); got {raw!r}",
        )
        return DEFAULT_LEASE_TTL_SECONDS
    return value


def load_settings(environ: Mapping[str, str]) -> LoadedSettings:
    """Validate the whole environment; raise `ConfigError` listing every problem found."""
    env = EnvReader(environ)
    credentials_raw = env.raw("CREDENTIALS_DIRECTORY")
    credentials_directory = Path(credentials_raw) if credentials_raw else None
    if credentials_directory is not None and not credentials_directory.is_dir():
        reason = (
            f"{credentials_directory} is a file, not a folder"
            if credentials_directory.exists()
            else f"no such folder: {credentials_directory}"
        )
        env.problem("CREDENTIALS_DIRECTORY", reason)
        credentials_directory = None

    allow_plaintext = env.boolean("ALLOW_PLAINTEXT_SECRETS", False)
    webhook_raw = env.secret("WEBHOOK_SECRET", credentials_directory)
    webhook_secrets = _webhook_secrets(env, webhook_raw, "WEBHOOK_SECRET" in environ)
    credentials_key = _credentials_key(
        env, env.secret("CREDENTIALS_KEY", credentials_directory), allow_plaintext
    )
    admin_token_raw = env.secret("ADMIN_TOKEN", credentials_directory)
    readonly_raw = env.secret("ADMIN_READONLY_TOKEN", credentials_directory)
    app_secret_raw = env.secret("APP_SECRET", credentials_directory)
    if not app_secret_raw and not env.unreadable("APP_SECRET"):
        env.problem(
            "APP_SECRET",
            "is required (or APP_SECRET_FILE, or an 'app_secret' credential): the secret that "
            "signs the sidecar's calls to your app",
        )

    app_base_url = env.url("APP_BASE_URL", None, https_unless_loopback=False)
    if app_base_url is None and env.raw("APP_BASE_URL") is None:
        env.problem(
            "APP_BASE_URL",
            "is required: the base URL of your app's ShopiMind bridge, "
            "e.g. http://127.0.0.1:8000/shopimind",
        )
    api_base = env.url(
        "SHOPIMIND_CORE_API_BASE", DEFAULT_SHOPIMIND_CORE_API_BASE, https_unless_loopback=True
    )

    database_path = Path(env.text("DATABASE_PATH", DEFAULT_DATABASE_PATH))
    database_url, database_schema, url_configured = _database_url(env, credentials_directory)
    if not url_configured:
        database_problem = database_path_problem(database_path)
        if database_problem is not None:
            env.problem("DATABASE_PATH", database_problem)

    admin_port_raw = env.raw("ADMIN_PORT")
    admin_port = env.integer("ADMIN_PORT", 0, minimum=0, maximum=65535) if admin_port_raw else None
    retention_days = env.integer("RETENTION_DAYS", DEFAULT_RETENTION_DAYS, minimum=0, maximum=36500)
    settings = Settings(
        integration_file=_existing_file(env, "INTEGRATION_FILE", DEFAULT_INTEGRATION_FILE),
        database_path=database_path,
        webhook_secrets=webhook_secrets,
        credentials_key=credentials_key,
        allow_plaintext_secrets=allow_plaintext,
        host=env.host("HOST", DEFAULT_HOST),
        port=env.integer("PORT", DEFAULT_PORT, minimum=0, maximum=65535),
        admin_token=Secret(admin_token_raw) if admin_token_raw else None,
        admin_host=env.host("ADMIN_HOST", DEFAULT_ADMIN_HOST),
        admin_port=admin_port,
        app_base_url=app_base_url or "",
        app_secret=Secret(app_secret_raw or ""),
        shopimind_core_api_base=api_base or DEFAULT_SHOPIMIND_CORE_API_BASE,
        sync_interval_minutes=env.integer(
            "SYNC_INTERVAL_MINUTES", DEFAULT_SYNC_INTERVAL_MINUTES, minimum=0, maximum=10080
        ),
        sync_workers=env.integer("SYNC_WORKERS", DEFAULT_SYNC_WORKERS, minimum=1, maximum=64),
        backfill_days=env.integer("BACKFILL_DAYS", DEFAULT_BACKFILL_DAYS, minimum=1, maximum=36500),
        overlap_seconds=env.integer(
            "OVERLAP_SECONDS", DEFAULT_OVERLAP_SECONDS, minimum=0, maximum=86400
        ),
        retention_days=retention_days,
        dead_letter_retention_days=env.integer(
            "DEAD_LETTER_RETENTION_DAYS", retention_days, minimum=0, maximum=36500
        ),
        audit_retention_days=env.integer(
            "AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS, minimum=0, maximum=36500
        ),
        drain_timeout_seconds=env.number(
            "DRAIN_TIMEOUT_SECONDS", DEFAULT_DRAIN_TIMEOUT_SECONDS, minimum=0.1, maximum=3600
        ),
        signature_tolerance_seconds=env.integer(
            "SIGNATURE_TOLERANCE_SECONDS",
            DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
            minimum=1,
            maximum=3600,
        ),
        log_level=cast(
            LogLevel, env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error"))
        ),
        log_format=cast(LogFormat, env.choice("LOG_FORMAT", "json", ("json", "text"))),
        app_health_path=_app_health_path(env),
        outbound=_outbound_limits(env),
        max_connections=env.integer(
            "MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, minimum=1, maximum=1_000_000
        ),
        max_connections_per_client=env.integer(
            "MAX_CONNECTIONS_PER_CLIENT",
            DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            minimum=1,
            maximum=1_000_000,
        ),
        header_timeout_seconds=env.number(
            "HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_TIMEOUT_SECONDS, minimum=0.1, maximum=3600
        ),
        body_timeout_seconds=env.number(
            "BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT_SECONDS, minimum=0.1, maximum=3600
        ),
        database_url=database_url,
        database_schema=database_schema,
        admin_readonly_token=Secret(readonly_raw) if readonly_raw else None,
        admin_cookie_secure=env.boolean("ADMIN_COOKIE_SECURE", False),
        admin_session_minutes=env.integer("ADMIN_SESSION_MINUTES", 30, minimum=1, maximum=1440),
        push_concurrency=env.integer(
            "PUSH_CONCURRENCY", DEFAULT_PUSH_CONCURRENCY, minimum=1, maximum=MAX_PUSH_CONCURRENCY
        ),
        lease_ttl_seconds=_lease_ttl_seconds(env),
        replica_id=_replica_id(env),
        trusted_proxies=_trusted_proxies(env),
    )
    if settings.admin_token is not None and len(settings.admin_token.reveal()) < 32:
        env.warnings.append("ADMIN_TOKEN is shorter than 32 characters; use a longer random token")
    if readonly_raw and readonly_raw == admin_token_raw:
        env.problem("ADMIN_READONLY_TOKEN", "must differ from ADMIN_TOKEN (it can act on nothing)")
    if env.problems:
        raise ConfigError(env.problems)
    return LoadedSettings(settings=settings, warnings=tuple(env.warnings))
