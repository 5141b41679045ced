"""wrk, the independent load generator: pre-signed request files and one measured run.

`wrk` (Debian package `wrk`) runs `benchmarks/signed.lua`, which cycles through the lines
of a file written here: each an inbound call signed for the next installation in turn,
with a body (so a signature and a dedup key) of its own, or the hello world's plain POST.
Signatures carry the time they were made, so a file is written just before its run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "hello_requests", "run_wrk", "signed_requests", "wrk_version"]

SCRIPT = Path(__file__).resolve().parent / "signed.lua"
_BODY = '{"n":%d,"amount":12.5,"store":"Paris","currency":"EUR"}'
_TIMEOUT_MARGIN_SECONDS = 30


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    wrapped: bool
    """True when a thread went through its file more than once (repeats are replays)."""

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds


def wrk_version() -> str | None:
    """`wrk 4.1.0` or None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    answer = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (answer.stdout or answer.stderr).split("[", 1)[0].strip() or "wrk"


def signed_requests(
    path: Path, pairs: list[tuple[str, str]], *, count: int, first: int, action_path: str
) -> None:
    """`count` inbound calls numbered from `first`, each signed now for the next of
    `pairs` (installation id, inbound secret) in turn, written to `path`."""
    stamp = str(int(time.time()))
    lines = []
    for n in range(first, first + count):
        installation_id, secret = pairs[n % len(pairs)]
        body = _BODY % n
        signature = hmac.new(
            secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256
        ).hexdigest()
        lines.append(f"{action_path}\t{installation_id}\t{stamp}\t{signature}\t{body}\n")
    path.write_text("".join(lines), encoding="utf-8")


def hello_requests(path: Path, *, hello_path: str = "/hello") -> None:
    """The hello world's request (one line is enough: it has no dedup key)."""
    path.write_text(f"{hello_path}\t\t\t\t{_BODY % 0}\n", encoding="utf-8")


def run_wrk(url: str, requests: Path, *, connections: int, seconds: float) -> WrkResult:
    """One wrk run of `seconds` with `connections` keep-alive connections on one thread
    (the other core is the server's)."""
    answer = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "-s",
            str(SCRIPT),
            url,
            "--",
            str(requests),
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + _TIMEOUT_MARGIN_SECONDS,
    )
    line = next(line for line in answer.stdout.splitlines() if line.startswith("{"))
    found = json.loads(line)
    return WrkResult(
        requests=int(found["requests"]),
        seconds=found["duration_us"] / 1e6,
        non_2xx=int(found["non_2xx"]),
        socket_errors=sum(
            int(found[key]) for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
        ),
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
        wrapped=bool(found["wrapped"]),
    )
