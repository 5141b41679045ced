"""A throwaway PostgreSQL cluster for the tests, or the server of SIDECAR_TEST_POSTGRES_URL.

One cluster per test session (`initdb` + `pg_ctl` in a temporary folder, on a free loopback
port, its socket in that folder); each test gets a fresh schema of its own. Where neither
a URL nor the programs exist, PostgreSQL tests skip with one reason — unless
SIDECAR_REQUIRE_POSTGRES=1, where that is a failure.

As root (CI containers), the server runs as the unprivileged `postgres` user: initdb
refuses root.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "PostgresCluster",
    "new_schema",
    "postgres_cluster",
    "require_postgres",
    "required",
    "unavailable_reason",
]

_REQUIRE = "SIDECAR_REQUIRE_POSTGRES"
_URL = "SIDECAR_TEST_POSTGRES_URL"
_schemas = itertools.count(1)


def require_postgres(reason: str) -> None:
    """Skip the test for `reason`, or fail it when PostgreSQL is required."""
    if os.environ.get(_REQUIRE) == "1":
        pytest.fail(f"{_REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, from pg_config, or the newest Debian one."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if (Path(out) / "initdb").is_file():
                return Path(out)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def unavailable_reason() -> str | None:
    """Why no PostgreSQL can be had for the tests, or None when one can."""
    if os.environ.get(_URL):
        return None
    if find_bindir() is None:
        return (
            "PostgreSQL not found (no initdb on PATH, via pg_config or under "
            f"/usr/lib/postgresql/*/bin, and no {_URL})"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server"
    return None


def required() -> bool:
    """SIDECAR_REQUIRE_POSTGRES=1: a missing PostgreSQL fails the tests instead."""
    return os.environ.get(_REQUIRE) == "1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running server: its URL, and (for our own cluster) how to stop or restart it."""

    url: str
    bindir: Path | None = None
    datadir: Path | None = None
    user: str | None = None
    port: int = 0

    def _run(self, *args: str) -> None:
        assert self.bindir is not None
        assert self.datadir is not None
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        # No pipes: the server pg_ctl starts would inherit them and keep them open.
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60
        )

    @property
    def owned(self) -> bool:
        """True for the cluster this session started (it can be stopped and restarted)."""
        return self.datadir is not None

    def stop(self) -> None:
        """Stop the server at once (connections are cut)."""
        self._run("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        """Start it again on the same port."""
        assert self.datadir is not None
        self._run("-w", "-l", str(self.datadir.parent / "server.log"), "start")

    def restart(self) -> None:
        """Restart the server (every connection is cut)."""
        assert self.datadir is not None
        self._run("-m", "fast", "-w", "-l", str(self.datadir.parent / "server.log"), "restart")


def _start_cluster(bindir: Path, *, durable: bool = False) -> PostgresCluster:
    root = Path(tempfile.mkdtemp(prefix="sidecar-pg-"))
    user = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            require_postgres("running as root and there is no 'postgres' user to run the server")
        user = "postgres"
        os.chown(root, account.pw_uid, account.pw_gid)
    datadir = root / "data"
    port = _free_port()
    prefix = ["runuser", "-u", user, "--"] if user else []
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    settings = {
        "port": str(port),
        "unix_socket_directories": f"'{root}'",
        "listen_addresses": "'127.0.0.1'",
        "fsync": "off",  # a throwaway cluster: durability is not what is tested
        "full_page_writes": "off",
        "max_connections": "200",
    }
    if durable:
        # For benchmarks: the durability of SQLite's WAL with synchronous=NORMAL (a crash
        # may lose the last commits, never corrupts), so the two are compared fairly.
        settings |= {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off"}
    with (datadir / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        # In the cluster's own configuration, so a restart keeps the port and socket.
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    cluster = PostgresCluster(
        url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        bindir=bindir,
        datadir=datadir,
        user=user,
        port=port,
    )
    cluster.start()
    return cluster


@contextlib.contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """The session's server: SIDECAR_TEST_POSTGRES_URL, or a cluster started here
    (`durable`: with fsync, as benchmarks want it)."""
    url = os.environ.get(_URL)
    if url:
        yield PostgresCluster(url=url)
        return
    bindir = find_bindir()
    if bindir is None:
        require_postgres(
            "PostgreSQL not found (no initdb on PATH, via pg_config or under "
            f"/usr/lib/postgresql/*/bin, and no {_URL})"
        )
    assert bindir is not None
    cluster = _start_cluster(bindir, durable=durable)
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop()
        assert cluster.datadir is not None
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def new_schema() -> str:
    """A schema name no other test of this session uses."""
    return f"test_{os.getpid()}_{next(_schemas)}"
