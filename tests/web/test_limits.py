"""The connection limits (sidecar.web.limits) on real loopback sockets: the caps, the deadline
for a request head, and running out of files on accept."""

from __future__ import annotations

import errno
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from sidecar.web.limits import (
    ACCEPT_PAUSE_SECONDS,
    BURST_QUIET_SECONDS,
    ConnectionLimits,
    Connections,
    LimitedListener,
)
from tests.harness import LogWatch

HEAD_SECONDS = 10.0
PARTIAL_HEAD = b"POST /webhook/receive HTTP/1.1\r\nHost: sidecar\r\n"


def limits(*, total: int = 100, per_client: int = 100) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=total,
        max_per_client=per_client,
        header_timeout_seconds=HEAD_SECONDS,
        body_timeout_seconds=30.0,
    )


class Server:
    """A LimitedListener on 127.0.0.1, and a way to connect to it from a chosen address."""

    def __init__(self, listener: trio.SocketListener, connections: Connections) -> None:
        self.inner = listener
        self.connections = connections
        self.listener = LimitedListener(listener, connections)
        self.port = listener.socket.getsockname()[1]

    async def connect(self, source: str = "127.0.0.1") -> trio.SocketStream:
        sock = trio.socket.socket()
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", self.port))
        return trio.SocketStream(sock)


@asynccontextmanager
async def serving(connection_limits: ConnectionLimits) -> AsyncIterator[Server]:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    server = Server(listener, Connections(connection_limits))
    async with listener:
        yield server


async def closed_by_server(client: trio.SocketStream) -> bytes:
    """Everything the server sent before closing (b"" when it closed without a word)."""
    received = b""
    with trio.fail_after(5):
        try:
            while chunk := await client.receive_some():
                received += chunk
        except trio.BrokenResourceError:  # reset: it closed with our bytes unread
            pass
    return received


async def read_forever(stream: trio.abc.ReceiveStream) -> None:
    while True:
        await stream.receive_some()


async def test_a_client_over_its_cap_is_closed_at_once_and_others_still_get_in() -> None:
    async with serving(limits(per_client=2)) as server:
        with LogWatch("sidecar.connections") as log:
            clients = [await server.connect() for _ in range(3)]
            other = await server.connect("127.0.0.2")
            first = await server.listener.accept()
            second = await server.listener.accept()
            # The third from 127.0.0.1 is refused inside accept, which goes on to the next.
            third = await server.listener.accept()
            assert third.peer == "127.0.0.2"
            assert await closed_by_server(clients[2]) == b""
            assert server.connections.from_client("127.0.0.1") == 2
            assert server.connections.open == 3
            late = await server.connect()  # still over the cap: refused too
            with trio.move_on_after(1) as waiting:
                await server.listener.accept()
            assert waiting.cancelled_caught
            assert await closed_by_server(late) == b""
            await first.aclose()  # a place is free again
            again = await server.connect()
            fourth = await server.listener.accept()
            assert fourth.peer == "127.0.0.1"
            assert server.connections.from_client("127.0.0.1") == 2
        refusals = [r for r in log.records if "MAX_CONNECTIONS_PER_CLIENT" in r.getMessage()]
        assert len(refusals) == 1  # one line for the burst of two refusals
        for stream in (second, third, fourth, first):
            await stream.aclose()  # twice for `first`: counted once
        assert server.connections.open == 0
        assert server.connections.from_client("127.0.0.1") == 0
        for client in (*clients, other, late, again):
            await client.aclose()


async def test_at_the_overall_cap_a_newcomer_displaces_the_longest_waiting_idle_one() -> None:
    async with serving(limits(total=2)) as server:
        with LogWatch("sidecar.connections") as log:
            idle_client, busy_client = await server.connect(), await server.connect()
            idle = await server.listener.accept()
            busy = await server.listener.accept()
            busy.request_started()
            newcomer_client = await server.connect("127.0.0.2")
            newcomer = await server.listener.accept()
            assert newcomer.peer == "127.0.0.2"
            assert await closed_by_server(idle_client) == b""
            with pytest.raises(trio.ClosedResourceError):
                await idle.receive_some()
            assert server.connections.open == 2
            # Every connection busy with a request: a newcomer is closed at once.
            newcomer.request_started()
            refused_client = await server.connect()
            with trio.move_on_after(1) as waiting:
                await server.listener.accept()
            assert waiting.cancelled_caught
            assert await closed_by_server(refused_client) == b""
            busy_client_sends = b"still served"
            await busy_client.send_all(busy_client_sends)
            assert await busy.receive_some() == busy_client_sends
        assert [r.getMessage() for r in log.records] == [
            "MAX_CONNECTIONS reached and every connection is busy; closing new ones"
        ]
        for stream in (idle, busy, newcomer):
            await stream.aclose()
        for client in (idle_client, busy_client, newcomer_client, refused_client):
            await client.aclose()
        assert server.connections.open == 0


async def test_a_request_head_has_a_deadline_and_is_answered_408(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with serving(limits()) as server:
        client = await server.connect()
        stream = await server.listener.accept()
        start = trio.current_time()
        # Slowloris: a byte every 3 s keeps each read short, but not the head as a whole.
        async with trio.open_nursery() as nursery:

            async def trickle() -> None:
                for byte in PARTIAL_HEAD:
                    await client.send_all(bytes([byte]))
                    await trio.sleep(3)

            nursery.start_soon(trickle)
            with pytest.raises(trio.BrokenResourceError):
                await read_forever(stream)
            assert trio.current_time() - start == pytest.approx(HEAD_SECONDS, abs=0.1)
            nursery.cancel_scope.cancel()
        await stream.aclose()  # as hypercorn does when a read fails
        answer = await closed_by_server(client)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert json.loads(body) == {"success": False, "error": "request_timeout"}
        await client.aclose()


async def test_no_deadline_while_a_request_is_handled_nor_on_an_idle_keep_alive(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with serving(limits()) as server:
        client = await server.connect()
        stream = await server.listener.accept()
        await client.send_all(PARTIAL_HEAD + b"\r\n")
        assert await stream.receive_some() == PARTIAL_HEAD + b"\r\n"
        stream.request_started()  # what hypercorn says once the head is parsed
        with trio.move_on_after(HEAD_SECONDS * 3) as handling:
            await stream.receive_some()
        assert handling.cancelled_caught  # no deadline while the request is handled
        stream.request_finished()  # answered; waiting for the next request
        with trio.move_on_after(HEAD_SECONDS * 3) as idle:
            await stream.receive_some()
        assert idle.cancelled_caught  # an idle keep-alive is hypercorn's (keep_alive_timeout)
        await client.send_all(b"G")  # the next head starts: its deadline runs
        assert await stream.receive_some() == b"G"
        start = trio.current_time()
        with pytest.raises(trio.BrokenResourceError):
            await stream.receive_some()
        assert trio.current_time() - start == pytest.approx(HEAD_SECONDS, abs=0.1)
        await stream.aclose()
        await client.aclose()


class _OutOfFiles(trio.abc.Listener[trio.SocketStream]):
    """A real listener whose next `failures` accepts fail as a process out of files does."""

    def __init__(self, listener: trio.SocketListener) -> None:
        self._listener = listener
        self.failures = 0
        self.code = errno.EMFILE

    async def accept(self) -> trio.SocketStream:
        if self.failures:
            self.failures -= 1
            await trio.lowlevel.checkpoint()
            raise OSError(self.code, "Too many open files")
        return await self._listener.accept()

    async def aclose(self) -> None:
        await self._listener.aclose()


async def test_out_of_files_pauses_accepting_frees_an_idle_connection_and_logs_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with serving(limits()) as server:
        failing = _OutOfFiles(server.inner)
        listener = LimitedListener(failing, server.connections)
        with LogWatch("sidecar.connections") as log, LogWatch("trio.serve_listeners") as trio_log:
            idle_client = await server.connect()
            idle = await listener.accept()
            failing.failures = 20
            waiting_client = await server.connect()
            start = trio.current_time()
            admitted = await listener.accept()
            assert trio.current_time() - start == pytest.approx(20 * ACCEPT_PAUSE_SECONDS)
            assert await closed_by_server(idle_client) == b""  # its file was freed
            assert server.connections.open == 1
            assert [r.getMessage() for r in log.records] == [
                "out of open files; pausing accepts and closing idle connections (raise "
                "LimitNOFILE, or lower MAX_CONNECTIONS)"
            ]
            assert log.meta(log.records[0].getMessage())[0]["error"] == "EMFILE"
            assert not any(record.exc_info for record in log.records)
            # A later burst, after a quiet spell, gets its own line.
            await trio.sleep(BURST_QUIET_SECONDS + 1)
            failing.failures, failing.code = 3, errno.ENFILE
            late_client = await server.connect()
            late = await listener.accept()
            assert len(log.records) == 2
            assert log.meta(log.records[1].getMessage())[-1]["error"] == "ENFILE"
            assert trio_log.records == []
        for stream in (idle, admitted, late):
            await stream.aclose()
        for client in (idle_client, waiting_client, late_client):
            await client.aclose()


async def test_other_accept_errors_are_not_swallowed() -> None:
    async with serving(limits()) as server:
        failing = _OutOfFiles(server.inner)
        failing.failures, failing.code = 1, errno.EINVAL
        with pytest.raises(OSError, match="Too many open files") as raised:
            await LimitedListener(failing, server.connections).accept()
        assert raised.value.errno == errno.EINVAL
