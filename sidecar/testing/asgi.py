"""The few raw-ASGI pieces the fakes share: message types, reading a whole body, and
handing an already-read body on to the app it wraps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["Message", "Receive", "Scope", "Send", "read_body", "replaying"]

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the peer hung up first."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body over once, then defers to the peer."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
