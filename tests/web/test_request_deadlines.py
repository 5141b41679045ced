"""A whole sidecar bounds how long a client may take to send its request: the head
(HEADER_TIMEOUT_SECONDS, our listener) and the body (BODY_TIMEOUT_SECONDS, Quart's
BODY_TIMEOUT). Both answer 408 in JSON and close; virtual time (MockClock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.harness import sidecar_stack

HEAD_SECONDS = 5
BODY_SECONDS = 7


async def _connect(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


async def _answer(client: trio.SocketStream) -> tuple[bytes, dict[str, object]]:
    """The status line and JSON body the sidecar sent before closing."""
    received = b""
    with trio.fail_after(600):
        while chunk := await client.receive_some():
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    answer: dict[str, object] = json.loads(body)
    return head.split(b"\r\n")[0], answer


async def test_a_head_sent_too_slowly_is_answered_408_and_closed(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    env = {"HEADER_TIMEOUT_SECONDS": str(HEAD_SECONDS)}
    async with sidecar_stack(tmp_path, env=env) as stack:
        client = await _connect(stack.url)
        started = trio.current_time()
        await client.send_all(b"GET /health HTTP/1.1\r\nHost: sidecar\r\n")
        status, answer = await _answer(client)
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert answer == {"success": False, "error": "request_timeout"}
        assert trio.current_time() - started == pytest.approx(HEAD_SECONDS, abs=0.5)
        await client.aclose()
        # The sidecar serves on.
        assert (await stack.http.get(stack.url + "/health")).status_code == 200


@pytest.mark.parametrize("path", ["/webhook/receive", "/inbound/sale"])
async def test_a_body_shorter_than_announced_is_answered_408(
    tmp_path: Path, mock_clock: trio.testing.MockClock, path: str
) -> None:
    env = {"HEADER_TIMEOUT_SECONDS": str(HEAD_SECONDS), "BODY_TIMEOUT_SECONDS": str(BODY_SECONDS)}
    async with sidecar_stack(tmp_path, env=env) as stack:
        client = await _connect(stack.url)
        await client.send_all(
            f"POST {path} HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n"
            "X-Integration-Installation: inst_1\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"event": '
        )
        started = trio.current_time()
        status, answer = await _answer(client)
        assert status == b"HTTP/1.1 408 "
        assert answer == {"success": False, "error": "request_timeout"}
        # The head was complete: the body's deadline applies, not the head's.
        assert trio.current_time() - started == pytest.approx(BODY_SECONDS, abs=0.5)
        await client.aclose()


def _connection_tasks() -> int:
    """The sidecar's connection handlers running in this process (one per connection)."""

    def count(task: trio.lowlevel.Task) -> int:
        own = 1 if task.name.endswith("serve_listeners._run_handler") else 0
        return own + sum(
            count(child) for nursery in task.child_nurseries for child in nursery.child_tasks
        )

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return count(root)


async def test_a_connection_the_client_ends_leaves_nothing_behind(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path) as stack:
        clients = [await _connect(stack.url) for _ in range(20)]
        for client in clients:
            await client.send_all(b"GET /health HTTP/1.1\r\nHost: side")
        await trio.testing.wait_all_tasks_blocked(0.05)
        assert _connection_tasks() == 20
        for client in clients:
            await client.aclose()
        await trio.testing.wait_all_tasks_blocked(0.05)
        # Not kept for hypercorn's keep_alive_timeout (75 s): gone with the client.
        assert _connection_tasks() == 0


async def test_on_stop_a_request_in_progress_is_answered_and_idle_ones_are_closed(
    tmp_path: Path,
) -> None:
    async with sidecar_stack(tmp_path, env={"DRAIN_TIMEOUT_SECONDS": "30"}) as stack:
        idle = await _connect(stack.url)
        busy = await _connect(stack.url)
        body = b'{"event": "integration.installed"}'
        head = (
            b"POST /webhook/receive HTTP/1.1\r\nHost: sidecar\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        await busy.send_all(head + body[:10])
        await trio.testing.wait_all_tasks_blocked(0.05)
        stack.running.stop()
        await trio.testing.wait_all_tasks_blocked(0.05)
        with trio.fail_after(5):
            assert await idle.receive_some() == b""  # closed by the shutdown
        with pytest.raises(OSError, match="all attempts to connect"):  # no longer listening
            await _connect(stack.url)
        await busy.send_all(body[10:])
        status, answer = await _answer(busy)
        assert status == b"HTTP/1.1 401 "  # unsigned: refused, but answered
        assert answer["success"] is False
        await idle.aclose()
        await busy.aclose()
