"""Connection limits in front of hypercorn: no client can hold every connection or file.

Hypercorn bounds what it can see once a connection is handed to it (its settings are set
in `sidecar.web.server`; the README lists them). What it cannot see lives here, around
the listening sockets, shared by every listener of the process:

- **Caps**: at most `max_connections` open connections in all, and `max_per_client` from
  one client address. A connection over the per-client cap is closed at once. At the
  overall cap, a newcomer takes the place of the connection that has waited longest
  *without a request in progress* (idle, or still sending its head); when every
  connection is busy with a request, the newcomer is closed at once. So connections that
  never finish their request cannot keep a prompt client out.
- **A deadline for a request's head** (`header_timeout_seconds`): from the connection's
  start (then from the first byte of each later request on it) to the end of its
  headers. A client that sends too slowly (slowloris) gets 408 and is closed. The body's
  deadline is the framework's own (Quart `BODY_TIMEOUT`, answered 408).
- **Running out of files on accept** (EMFILE, ENFILE, ENOBUFS, ENOMEM) is back-pressure:
  the oldest connection without a request in progress is closed to free its file, and
  accepting pauses `ACCEPT_PAUSE_SECONDS`; the kernel's backlog holds the callers.

Each kind of refusal is logged once per burst (`BURST_QUIET_SECONDS` without one ends
it), never one line per connection. `fit_open_files` lowers the overall cap to what the
process's open-file limit (`RLIMIT_NOFILE`, systemd `LimitNOFILE`) leaves after
`RESERVED_FILES` for the store and the outbound HTTP clients.
"""

from __future__ import annotations

import contextlib
import errno
import math
import resource
from collections import Counter
from dataclasses import dataclass, replace
from typing import Final

import trio

from sidecar.client_address import Network, trusts
from sidecar.logs import get_logger

__all__ = [
    "ACCEPT_PAUSE_SECONDS",
    "BURST_QUIET_SECONDS",
    "RESERVED_FILES",
    "ConnectionLimits",
    "Connections",
    "GuardedStream",
    "LimitedListener",
    "fit_open_files",
]

ACCEPT_PAUSE_SECONDS: Final = 0.05
BURST_QUIET_SECONDS: Final = 10.0
RESERVED_FILES: Final = 128
"""Files kept free of client connections: the store, outbound HTTP pools, listeners."""

_OUT_OF_FILES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_TIMEOUT_BODY: Final = b'{"success": false, "error": "request_timeout"}'
_TIMEOUT_ANSWER: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)
_ANSWER_SECONDS: Final = 1.0

_log = get_logger("connections")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    """How many connections may be open, and how long a request's head may take."""

    max_connections: int
    max_per_client: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    """Applied by the framework (Quart `BODY_TIMEOUT`): reading a body, answered 408."""
    trusted_proxies: tuple[Network, ...] = ()
    """TRUSTED_PROXIES: a load balancer carries every client's connections, so its own are
    not held to the per-client cap (the overall cap still counts them)."""


def fit_open_files(limits: ConnectionLimits) -> ConnectionLimits:
    """`limits` with the overall cap lowered to what the open-file limit allows.

    The soft limit is first raised towards the hard one as far as the cap needs (as Go's
    runtime does); when even the hard limit is too low, one warning says so.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            with contextlib.suppress(OSError, ValueError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return limits
    fitted = max(1, soft - RESERVED_FILES)
    _log.warning(
        "the open-file limit is too low for MAX_CONNECTIONS; capping connections lower "
        "(raise LimitNOFILE, or ulimit -n)",
        max_connections=limits.max_connections,
        open_file_limit=soft,
        capped_at=fitted,
    )
    return replace(limits, max_connections=fitted)


class _Burst:
    """Whether a refusal starts a new burst: none in the last BURST_QUIET_SECONDS."""

    def __init__(self) -> None:
        self._last = -math.inf

    def starts(self) -> bool:
        now = trio.current_time()
        new = now - self._last > BURST_QUIET_SECONDS
        self._last = now
        return new


class GuardedStream(trio.abc.HalfCloseableStream):
    """A client connection, counted while open, with a deadline on each request head.

    The server tells it when a request's head is complete (`request_started`) and when
    the connection waits for the next one (`request_finished`).
    """

    def __init__(self, stream: trio.SocketStream, peer: str, connections: Connections) -> None:
        self._stream = stream
        self.peer = peer
        self._connections = connections
        self.awaiting_request = True
        self._head_deadline = trio.current_time() + connections.limits.header_timeout_seconds
        self._closed = False

    @property
    def socket(self) -> trio.socket.SocketType:
        """The connected socket (hypercorn reads the peer's and its own address from it)."""
        return self._stream.socket

    def request_started(self) -> None:
        """The head of a request is complete: no deadline until the next one."""
        self.awaiting_request = False
        self._head_deadline = math.inf

    def request_finished(self) -> None:
        """The connection waits for another request; its deadline runs from its first byte."""
        self.awaiting_request = True

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive bytes; BrokenResourceError (after a 408) when the head is too slow."""
        with trio.move_on_at(self._head_deadline):
            data = await self._stream.receive_some(max_bytes)
            if not data and self.awaiting_request:
                # Hypercorn keeps a connection it has nothing to do with until its
                # keep-alive timer ends; its file is freed now.
                self.close_now()
            elif self.awaiting_request and self._head_deadline == math.inf:
                limit = self._connections.limits.header_timeout_seconds
                self._head_deadline = trio.current_time() + limit
            return data
        self._connections.head_timed_out(self)
        with trio.move_on_after(_ANSWER_SECONDS):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_all(_TIMEOUT_ANSWER)
        self.close_now()
        raise trio.BrokenResourceError("the request head was not complete within its deadline")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`."""
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until sending might not block."""
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Close the sending half."""
        await self._stream.send_eof()

    def close_now(self) -> None:
        """Close the socket at once and free its place; a reader gets ClosedResourceError."""
        self._release()
        self._stream.socket.close()

    async def aclose(self) -> None:
        """Close the connection and free its place."""
        self._release()
        await self._stream.aclose()

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            self._connections.release(self)


class Connections:
    """The open client connections of the process, by client address, under the caps."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[GuardedStream, None] = {}  # oldest first
        self._per_client: Counter[str] = Counter()
        self._client_burst = _Burst()
        self._full_burst = _Burst()
        self._files_burst = _Burst()
        self._slow_burst = _Burst()

    @property
    def open(self) -> int:
        """How many connections are open."""
        return len(self._open)

    def from_client(self, peer: str) -> int:
        """How many connections `peer` has open."""
        return self._per_client[peer]

    def admit(self, stream: trio.SocketStream) -> GuardedStream | None:
        """The accepted `stream`, counted; None when it was closed for a cap."""
        try:
            peer = str(stream.socket.getpeername()[0])
        except OSError:  # already reset by the client
            stream.socket.close()
            return None
        if self._per_client[peer] >= self.limits.max_per_client and not trusts(
            self.limits.trusted_proxies, peer
        ):
            if self._client_burst.starts():
                _log.warning(
                    "a client is over MAX_CONNECTIONS_PER_CLIENT; closing its new connections",
                    client=peer,
                    max_per_client=self.limits.max_per_client,
                )
            stream.socket.close()
            return None
        if len(self._open) >= self.limits.max_connections and not self._evict_idlest():
            if self._full_burst.starts():
                _log.warning(
                    "MAX_CONNECTIONS reached and every connection is busy; closing new ones",
                    max_connections=self.limits.max_connections,
                )
            stream.socket.close()
            return None
        guarded = GuardedStream(stream, peer, self)
        self._open[guarded] = None
        self._per_client[peer] += 1
        return guarded

    def out_of_files(self, error: OSError) -> None:
        """Accept failed for want of files: free the idlest connection's."""
        if self._files_burst.starts():
            _log.warning(
                "out of open files; pausing accepts and closing idle connections (raise "
                "LimitNOFILE, or lower MAX_CONNECTIONS)",
                error=errno.errorcode.get(error.errno or 0, str(error.errno)),
                open_connections=len(self._open),
            )
        self._evict_idlest()

    def head_timed_out(self, stream: GuardedStream) -> None:
        """Note a request head that missed its deadline (logged once per burst)."""
        if self._slow_burst.starts():
            _log.warning(
                "a request head was not complete within HEADER_TIMEOUT_SECONDS; closed",
                client=stream.peer,
                header_timeout_seconds=self.limits.header_timeout_seconds,
            )

    def release(self, stream: GuardedStream) -> None:
        """Forget a closed connection."""
        if stream in self._open:
            del self._open[stream]
            self._per_client[stream.peer] -= 1
            if self._per_client[stream.peer] <= 0:
                del self._per_client[stream.peer]

    def _evict_idlest(self) -> bool:
        for candidate in self._open:
            if candidate.awaiting_request:
                candidate.close_now()
                return True
        return False


class LimitedListener(trio.abc.Listener[GuardedStream]):
    """A listener whose connections are admitted by `connections` (caps, file shortage)."""

    def __init__(self, listener: trio.abc.Listener[trio.SocketStream], connections: Connections):
        self._listener = listener
        self._connections = connections

    async def accept(self) -> GuardedStream:
        """The next admitted connection; refused ones are closed without a word."""
        while True:
            try:
                stream = await self._listener.accept()
            except OSError as error:
                if error.errno not in _OUT_OF_FILES:
                    raise
                self._connections.out_of_files(error)
                await trio.sleep(ACCEPT_PAUSE_SECONDS)
                continue
            guarded = self._connections.admit(stream)
            if guarded is not None:
                return guarded

    async def aclose(self) -> None:
        """Stop listening."""
        await self._listener.aclose()
