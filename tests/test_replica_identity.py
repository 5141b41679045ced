"""REPLICA_ID names this process everywhere: on every log line, in the User-Agent of every
call to ShopiMind and to the app, as lease owner, and in the replicas table."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from quart import request
from quart_trio import QuartTrio

from sidecar import __version__
from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.logs import configure_logging, get_logger
from sidecar.outbound import new_http_client, user_agent
from sidecar.testing.server import running
from sidecar.wiring import open_parts
from tests.harness import sidecar_stack


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]


def test_every_log_line_carries_the_replica(stream: io.StringIO) -> None:
    configure_logging(level="info", fmt="json", stream=stream, fields={"replica": "web-7"})
    get_logger("sync").bind(installation_id="inst_1").info("sync started", kind="full")
    logging.getLogger("hypercorn.error").warning("a library's line")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["replica"], first["installation_id"], first["kind"]) == (
        "web-7",
        "inst_1",
        "full",
    )
    assert (second["replica"], second["msg"]) == ("web-7", "a library's line")


def test_text_lines_carry_it_too(stream: io.StringIO) -> None:
    configure_logging(level="info", fmt="text", stream=stream, fields={"replica": "web-7"})
    get_logger("sync").info("sync started", kind="full")
    assert 'replica="web-7" kind="full"' in stream.getvalue()


def test_the_user_agent_names_version_and_replica() -> None:
    assert user_agent() == f"shopimind-sidecar/{__version__}"
    assert user_agent("web-7") == f"shopimind-sidecar/{__version__} (replica/web-7)"


async def test_every_request_of_a_client_carries_it() -> None:
    seen: list[str] = []
    peer = QuartTrio("peer")

    @peer.get("/")
    async def record() -> str:
        seen.append(request.headers.get("user-agent", ""))
        return "ok"

    async with running(peer) as url, new_http_client(replica_id="web-7") as http:
        await http.get(url + "/")
        await http.get(url + "/", headers={"accept": "text/plain"})
    assert seen == [f"shopimind-sidecar/{__version__} (replica/web-7)"] * 2


async def test_the_parts_clients_carry_it_to_the_app_and_own_the_leases_as_it(
    tmp_path: Path, valid_env: dict[str, str]
) -> None:
    seen: list[str] = []
    app = QuartTrio("vendor-app")

    @app.get("/shopimind/health")
    async def health() -> str:
        seen.append(request.headers.get("user-agent", ""))
        return "ok"

    async with running(app) as url:
        env = valid_env | {
            "REPLICA_ID": "web-7",
            "APP_BASE_URL": url + "/shopimind",
            "APP_HEALTH_PATH": "/health",
        }
        settings = load_settings(env).settings
        declaration = load_declaration(settings.integration_file)
        async with open_parts(settings, declaration) as parts:
            assert parts.owner == "web-7"
            assert parts.app_probe is not None
            assert await parts.app_probe.healthy()
    assert seen == [f"shopimind-sidecar/{__version__} (replica/web-7)"]


async def test_a_served_sidecar_is_registered_and_named_in_its_calls(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path, env={"REPLICA_ID": "web-7"}) as stack:
        await stack.activate()
        agents = {r.headers.get("user-agent") for r in stack.shopimind.requests}
        assert agents == {f"shopimind-sidecar/{__version__} (replica/web-7)"}
        rows = stack.query("SELECT id, stopped_at FROM replicas")
        assert rows == [("web-7", None)]
    rows = stack.query("SELECT id, stopped_at IS NOT NULL FROM replicas")
    assert rows == [("web-7", 1)]  # a clean stop is recorded
