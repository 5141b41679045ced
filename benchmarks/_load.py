"""A cheap HTTP/1.1 load generator, run in its own process: `python -m benchmarks._load`.

It reads one JSON job on stdin and prints one JSON result on stdout. Each of `concurrency`
connections sends a POST, reads the whole answer, and sends the next (keep-alive; a new
connection when the server closes one, as hypercorn does every 1,000 requests). Requests
are pre-shaped bytes over raw trio sockets: no HTTP library, so the client costs a few
tens of microseconds per request and the server, not the client, is what is measured.

Job: {"host", "port", "path", "concurrency", "warmup_seconds", "seconds",
      "signed": [[installation_id, secret], ...] or null, "first": n (optional)}
With `signed`, each request is an inbound call signed for the next installation in turn,
with a body (and so a signature, and a dedup key) of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import trio

__all__ = ["main"]

_BODY = b'{"n":%d,"amount":12.5,"store":"Paris","currency":"EUR"}'


@dataclass
class Job:
    host: str
    port: int
    path: str
    concurrency: int
    warmup_seconds: float
    seconds: float
    signed: list[tuple[str, str]] | None = None
    first: int = 0
    """The number of the first request (bodies, so dedup keys, differ between runs)."""
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.counter = itertools.count(self.first)

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def request(self) -> bytes:
        n = next(self.counter)
        body = _BODY % n
        head = (
            f"POST {self.path} HTTP/1.1\r\nhost: {self.host}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        )
        if self.signed:
            installation_id, secret = self.signed[n % len(self.signed)]
            stamp = str(int(time.time()))
            signature = hmac.new(
                secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            head += (
                f"x-integration-installation: {installation_id}\r\n"
                f"x-integration-timestamp: {stamp}\r\nx-integration-signature: {signature}\r\n"
            )
        return head.encode() + b"\r\n" + body


class Connection:
    """One keep-alive connection and its read buffer."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    async def answer(self) -> tuple[int, bool]:
        """Read one whole answer; its status, and whether the server closes the connection."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status = int(head[0].split(" ", 2)[1])
        length, close = 0, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value.lower():
                close = True
        while len(self.buffer) < length:
            await self._fill()
        del self.buffer[:length]
        return status, close


async def _worker(job: Job, measure_from: float, until: float) -> None:
    connection: Connection | None = None
    while time.perf_counter() < until:
        if connection is None:
            connection = Connection(await trio.open_tcp_stream(job.host, job.port))
        sent = time.perf_counter()
        try:
            await connection.stream.send_all(job.request())
            status, close = await connection.answer()
        except (OSError, ConnectionError, trio.BrokenResourceError):
            job.errors += 1
            await connection.stream.aclose()
            connection = None
            continue
        done = time.perf_counter()
        if sent >= measure_from and done <= until:
            job.latencies.append(done - sent)
            job.statuses[status] += 1
        if close:
            await connection.stream.aclose()
            connection = None
    if connection is not None:
        await connection.stream.aclose()


async def _run(job: Job) -> dict[str, object]:
    start = time.perf_counter()
    measure_from = start + job.warmup_seconds
    until = measure_from + job.seconds
    async with trio.open_nursery() as nursery:
        for _ in range(job.concurrency):
            nursery.start_soon(_worker, job, measure_from, until)
    latencies = sorted(job.latencies)

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / job.seconds,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "statuses": {str(k): v for k, v in sorted(job.statuses.items())},
        "errors": job.errors,
    }


def main() -> None:
    """Run the job read on stdin; print the result."""
    spec = json.loads(sys.stdin.read())
    signed = spec.pop("signed", None)
    job = Job(**spec, signed=[tuple(pair) for pair in signed] if signed else None)
    print(json.dumps(trio.run(_run, job)))


if __name__ == "__main__":
    main()
