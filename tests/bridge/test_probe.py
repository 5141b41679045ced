"""`AppProbe`: a signed GET of the app's health endpoint over loopback; any 2xx is healthy,
anything else (another status, no connection, no answer in time) is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import trio
import trio.testing
from quart import Response, request
from quart_trio import QuartTrio

from sidecar.bridge.client import SIGNATURE_HEADER, TIMESTAMP_HEADER
from sidecar.bridge.probe import AppProbe
from sidecar.outbound import new_http_client
from sidecar.security.signature import verify
from sidecar.testing.server import running
from tests.bridge.conftest import SECRET

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    body: bytes
    timestamp: str | None
    signature: str | None


class HealthApp:
    """A vendor app with only a health endpoint (GET /shopimind/health), programmable."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b'{"ok": true}'
        self.headers: dict[str, str] = {}
        self.hang = False
        self.release = trio.Event()
        self.seen: list[Seen] = []
        self.asgi = QuartTrio("health_app")
        self.asgi.add_url_rule("/shopimind/health", "health", self._health, methods=["GET"])

    async def _health(self) -> Response:
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                body=body,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
            )
        )
        if self.hang:
            await self.release.wait()  # set by the test once it is done
        return Response(self.body, status=self.status, headers=self.headers)


@pytest.fixture
def app() -> HealthApp:
    return HealthApp()


@pytest.fixture
async def base_url(app: HealthApp) -> AsyncIterator[str]:
    async with running(app.asgi) as url:
        try:
            yield url + "/shopimind"
        finally:
            app.release.set()  # let a hanging handler end, so the server stops at once


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http_client() as client:
        yield client


def probe(
    base_url: str, http: httpx.AsyncClient, outcomes: list[str], **kwargs: object
) -> AppProbe:
    return AppProbe(
        base_url=base_url,
        path="/health",
        secret=SECRET,
        http=http,
        clock=lambda: NOW,
        observe=outcomes.append,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", [200, 204])
async def test_a_2xx_is_healthy_and_the_probe_is_signed(
    app: HealthApp, base_url: str, http: httpx.AsyncClient, status: int
) -> None:
    app.status = status
    app.body = b"" if status == 204 else app.body
    outcomes: list[str] = []
    assert await probe(base_url, http, outcomes).healthy() is True
    assert outcomes == ["2xx"]
    [seen] = app.seen
    assert (seen.method, seen.path, seen.body) == ("GET", "/shopimind/health", b"")
    assert seen.timestamp == str(int(NOW.timestamp()))  # from the probe's clock
    verdict = verify(
        secrets=[SECRET],
        timestamp=seen.timestamp,
        signature=seen.signature,
        body=b"",
        now=NOW.timestamp(),
    )
    assert verdict.ok, verdict.reason
    assert not verify(
        secrets=["another secret"],
        timestamp=seen.timestamp,
        signature=seen.signature,
        body=b"",
        now=NOW.timestamp(),
    ).ok


@pytest.mark.parametrize(
    ("base_suffix", "path"), [("", "/health"), ("/", "health"), ("/", "/health"), ("", "health")]
)
async def test_the_url_joins_base_and_path_with_one_slash(
    app: HealthApp, base_url: str, http: httpx.AsyncClient, base_suffix: str, path: str
) -> None:
    checker = AppProbe(base_url=base_url + base_suffix, path=path, secret=SECRET, http=http)
    assert checker.url == base_url + "/health"
    assert await checker.healthy() is True
    assert [seen.path for seen in app.seen] == ["/shopimind/health"]
    assert "health" in repr(checker)


@pytest.mark.parametrize(
    ("status", "outcome"), [(500, "5xx"), (503, "5xx"), (404, "4xx"), (401, "4xx"), (302, "3xx")]
)
async def test_any_other_status_is_unhealthy_without_a_retry(
    app: HealthApp, base_url: str, http: httpx.AsyncClient, status: int, outcome: str
) -> None:
    app.status = status
    if status == 302:  # never followed: a healthy page elsewhere does not count
        app.headers = {"location": base_url + "/health"}
    outcomes: list[str] = []
    assert await probe(base_url, http, outcomes).healthy() is False
    assert outcomes == [outcome]
    assert len(app.seen) == 1  # the next probe is the retry


async def test_connection_refused_is_unhealthy(http: httpx.AsyncClient) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcomes: list[str] = []
    checker = probe(f"http://127.0.0.1:{port}/shopimind", http, outcomes)
    assert await checker.healthy() is False
    assert outcomes == ["error"]


async def test_no_answer_within_the_timeout_is_unhealthy(
    mock_clock: trio.testing.MockClock, app: HealthApp, base_url: str, http: httpx.AsyncClient
) -> None:
    app.hang = True
    outcomes: list[str] = []
    started = trio.current_time()
    assert await probe(base_url, http, outcomes, timeout_seconds=2.0).healthy() is False
    assert trio.current_time() - started == pytest.approx(2.0, abs=0.5)
    assert outcomes == ["error"]
    assert len(app.seen) == 1


async def test_an_oversized_answer_is_unhealthy(
    app: HealthApp, base_url: str, http: httpx.AsyncClient
) -> None:
    app.body = b"x" * (64 * 1024 + 1)
    outcomes: list[str] = []
    assert await probe(base_url, http, outcomes).healthy() is False
    assert outcomes == ["error"]


async def test_without_an_observer_nothing_is_required(
    app: HealthApp, base_url: str, http: httpx.AsyncClient
) -> None:
    checker = AppProbe(base_url=base_url, path="/health", secret=SECRET, http=http)
    assert await checker.healthy() is True
    app.status = 503
    assert await checker.healthy() is False
