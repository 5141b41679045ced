"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.security.cipher import AesGcmCipher
from sidecar.store.records import OutboxEntry
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.backends import Backend
from tests.postgres import (
    PostgresCluster,
    new_schema,
    postgres_cluster,
    required,
    unavailable_reason,
)

CREDENTIALS_KEY_HEX = "6f" * 16 + "a1" * 16
WEBHOOK_SECRET = "whsec_primary_5c1d"
APP_SECRET = "appsec_93b0e7d2"


class FakeClock:
    """A wall clock the test moves by hand (the store stamps rows with it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """trio's virtual clock for tests with timeouts, backoff or schedules.

    Overrides pytest-trio's fixture of the same name (which never jumps). pytest-trio
    runs a test on a clock only when the test function itself takes this fixture.

    It jumps ahead when every task has been blocked for 10 ms of real time, so I/O on
    loopback settles first. Work in threads (the store) may still let it jump: assert on
    what happened, not on exact virtual durations around store calls.
    """
    return trio.testing.MockClock(autojump_threshold=0.01)


@pytest.fixture
def valid_env(tmp_path: Path) -> dict[str, str]:
    """A complete, valid environment with its files in a temporary folder."""
    declaration = tmp_path / "integration.toml"
    declaration.write_text(  # the smallest valid declaration
        'slug = "demo"\n\n[meta]\nname = "Demo"\nversion = "0.1.0"\n', encoding="utf-8"
    )
    (tmp_path / "data").mkdir()
    return {
        "INTEGRATION_FILE": str(declaration),
        "DATABASE_PATH": str(tmp_path / "data" / "sidecar.sqlite"),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CREDENTIALS_KEY": CREDENTIALS_KEY_HEX,
        "APP_BASE_URL": "http://127.0.0.1:8000/shopimind",
        "APP_SECRET": APP_SECRET,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cipher() -> AesGcmCipher:
    return AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))


@pytest.fixture
async def store(
    tmp_path: Path, cipher: AesGcmCipher, clock: FakeClock
) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "store.sqlite", cipher=cipher, clock=clock)
    try:
        yield opened
    finally:
        await opened.aclose()


_POSTGRES_SKIPPED = pytest.StashKey[str]()


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgres":
        return True
    return "postgres_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without PostgreSQL, its tests are set aside with ONE line saying why (a failure
    instead when SIDECAR_REQUIRE_POSTGRES=1: then they run, and fail)."""
    reason = unavailable_reason()
    if reason is None or required():
        return
    postgres = [item for item in items if _needs_postgres(item)]
    if postgres:
        items[:] = [item for item in items if not _needs_postgres(item)]
        config.hook.pytest_deselected(items=postgres)
        config.stash[_POSTGRES_SKIPPED] = f"{len(postgres)} PostgreSQL tests not run: {reason}"


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    line = config.stash.get(_POSTGRES_SKIPPED, None)
    if line:
        terminalreporter.write_line(f"SKIPPED {line}", yellow=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the whole session (skips when there is none)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Where the test's store lives; a test taking it runs once per backend."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "store.sqlite")
    cluster: PostgresCluster = request.getfixturevalue("postgres_server")
    return Backend("postgres", tmp_path / "unused", url=cluster.url, schema=new_schema())


def outbox_entry(key: str, installation_id: str = "i") -> OutboxEntry:
    """A queued `sale` event (trigger_event:acme_sale) with dedup key `key`."""
    return OutboxEntry(
        installation_id=installation_id,
        dedup_key=key,
        action="sale",
        target="trigger_event:acme_sale",
        route="event:acme_sale",
        payload_json='{"amount": 1}',
        idempotency_key=f"inbound-{key}",
    )
