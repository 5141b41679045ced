"""The listeners' front (`sidecar.web.front`): the quart app is built by the first request
that needs it, once, started through its own lifespan before it serves, and stopped with
the server; probes and inbound calls never build it.

`DeferredApp` is driven directly with an ASGI app that records its lifespan and requests;
the probes are checked byte for byte against what quart answers, on a running sidecar.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from sidecar.web.front import DeferredApp
from tests.harness import LogWatch, Stack, sidecar_stack
from tests.web.test_lean_inbound import Exchange, scope

SALE = {"amount": 12.5, "store": "Paris"}


class Recorded:
    """An ASGI app built by a factory: what happened to it, in order."""

    def __init__(self, events: list[str], *, start_fails: bool = False) -> None:
        self.events = events
        self._start_fails = start_fails

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await trio.sleep(0.01)  # requests arriving now must wait for it
                    self.events.append("started")
                    if self._start_fails:
                        await send({"type": "lifespan.startup.failed", "message": "no"})
                    else:
                        await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.events.append("stopped")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.events.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class Server:
    """The server's side of the lifespan: startup, then shutdown on demand."""

    def __init__(self) -> None:
        self.to_app, self._app_receives = trio.open_memory_channel[dict[str, Any]](1)
        self._app_sends, self.from_app = trio.open_memory_channel[dict[str, Any]](1)

    async def run(self, app: DeferredApp, nursery: trio.Nursery) -> None:
        nursery.start_soon(
            app, {"type": "lifespan", "state": {}}, self._app_receives.receive, self._app_sends.send
        )
        await self.to_app.send({"type": "lifespan.startup"})
        assert (await self.from_app.receive())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.to_app.send({"type": "lifespan.shutdown"})
        assert (await self.from_app.receive())["type"] == "lifespan.shutdown.complete"


async def test_the_app_is_built_once_started_before_it_serves_and_stopped_with_the_server(
    mock_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []
    builds: list[Recorded] = []

    def build() -> Recorded:
        builds.append(Recorded(events))
        events.append("built")
        return builds[-1]

    app = DeferredApp(build, "test")
    server = Server()
    async with trio.open_nursery() as nursery:
        await server.run(app, nursery)
        assert (builds, app.built) == ([], False)  # the server's start builds nothing

        async def request(path: str) -> None:
            exchange = Exchange([b""])
            await app(scope(path, "GET"), exchange.receive, exchange.send)
            assert exchange.status == 204

        async with trio.open_nursery() as requests:  # five first requests at once
            for n in range(5):
                requests.start_soon(request, f"/{n}")
        assert len(builds) == 1
        assert app.built
        assert events[:2] == ["built", "started"]  # no request before the app started
        assert sorted(events[2:]) == [f"GET /{n}" for n in range(5)]
        await request("/later")
        await server.stop()
    assert events[-1] == "stopped"
    assert len(builds) == 1


async def test_a_first_request_cancelled_during_the_start_leaves_one_started_app(
    mock_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []
    builds: list[Recorded] = []

    def build() -> Recorded:
        builds.append(Recorded(events))
        return builds[-1]

    app = DeferredApp(build, "test")
    server = Server()
    async with trio.open_nursery() as nursery:
        await server.run(app, nursery)
        with trio.move_on_after(0.001):  # the client leaves while the app starts
            await app(scope("/first", "GET"), Exchange([b""]).receive, Exchange([b""]).send)
        exchange = Exchange([b""])
        await app(scope("/second", "GET"), exchange.receive, exchange.send)
        assert exchange.status == 204
        await server.stop()
    assert len(builds) == 1  # the start went on, shielded: no second app was built
    assert events[0] == "started"
    assert events.count("started") == 1
    assert events[-2:] == ["GET /second", "stopped"]


async def test_a_server_stopped_before_any_request_stops_nothing() -> None:
    built: list[str] = []
    app = DeferredApp(lambda: Recorded(built), "test")
    server = Server()
    async with trio.open_nursery() as nursery:
        await server.run(app, nursery)
        await server.stop()
    assert built == []


async def test_an_app_that_fails_to_start_serves_nothing(
    mock_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []
    app = DeferredApp(lambda: Recorded(events, start_fails=True), "test")
    server = Server()
    async with trio.open_nursery() as nursery:
        await server.run(app, nursery)
        exchange = Exchange([b""])
        with pytest.raises(RuntimeError, match="test did not start"):
            await app(scope("/x", "GET"), exchange.receive, exchange.send)
        assert events == ["started"]
        assert exchange.sent == []
        nursery.cancel_scope.cancel()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


async def test_probes_and_inbound_calls_do_not_load_the_web_app(stack: Stack) -> None:
    with LogWatch("sidecar.web") as web, LogWatch("sidecar.access") as access:
        ready = await stack.http.get(stack.url + "/ready")
        health = await stack.http.get(stack.url + "/health?verbose=1")
        head = await stack.http.head(stack.url + "/ready")
        refused = await stack.inbound("sale", SALE, secret="insec_" + "9" * 48)
        assert web.meta("web app loaded at its first request") == []
        manifest = await stack.http.get(stack.url + "/manifest")
        again = await stack.http.get(stack.url + "/manifest")
    [loaded] = web.meta("web app loaded at its first request")
    assert loaded["app"] == "public"
    # Answered as quart answers them: the encoding of `jsonify`, the headers, the log line.
    assert (ready.status_code, ready.content) == (200, b'{"ready":true}\n')
    assert ready.headers["content-type"] == "application/json"
    assert int(ready.headers["content-length"]) == len(ready.content)
    assert health.status_code in (200, 503)
    assert "installations" in health.json()
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == ready.headers["content-length"]
    assert refused.status_code == 401
    assert manifest.status_code == again.status_code == 200
    assert [(line["method"], line["path"]) for line in access.meta("request")] == [
        ("GET", "/ready"),
        ("GET", "/health"),
        ("HEAD", "/ready"),
        ("POST", "/inbound/sale"),
        ("GET", "/manifest"),
        ("GET", "/manifest"),
    ]


async def test_other_methods_on_a_probe_are_quarts(stack: Stack) -> None:
    posted = await stack.http.post(stack.url + "/ready", content=b"")
    assert (posted.status_code, posted.json()) == (
        405,
        {"success": False, "error": "method_not_allowed"},
    )
    assert "GET" in posted.headers["allow"]
    slash = await stack.http.get(stack.url + "/health/")
    assert slash.status_code == 404
