"""The sample vendor apps of `examples/` (PHP 8.2 built-in server, Node 20 `node:http`) as
real processes on a free loopback port, for the tests that check them against the
contract and run the whole flow through them.

Without `php` or `node` those tests skip with one line saying what to install, unless
SIDECAR_REQUIRE_SAMPLE_APPS=1 (set by .ci/run), where a missing program is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, Literal

import pytest
import trio

EXAMPLES: Final = Path(__file__).resolve().parents[1] / "examples"
PREFIX: Final = "/shopimind"
STARTUP_TIMEOUT_SECONDS: Final = 20

Language = Literal["php", "node"]
LANGUAGES: Final[tuple[Language, ...]] = ("php", "node")

SAMPLE_COUNTS: Final = {
    "customers": 24,
    "orders": 20,
    "products": 12,
    "custom_data:loyalty_cards": 8,
}
"""What each sample app holds, by sync target (orders: 10 in each of its two stores)."""

_PACKAGES: Final = {"php": "php-cli", "node": "nodejs"}
_LISTENING: Final = re.compile(rb"http://127\.0\.0\.1:(\d+)")


def need_program(language: Language) -> str:
    """The program's path; skip (or fail, under SIDECAR_REQUIRE_SAMPLE_APPS=1) without it."""
    program = shutil.which(language)
    if program is not None:
        return program
    reason = (
        f"{language} is not installed (Debian: apt-get install {_PACKAGES[language]}); "
        "SIDECAR_REQUIRE_SAMPLE_APPS=1 makes this a failure"
    )
    if os.environ.get("SIDECAR_REQUIRE_SAMPLE_APPS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _command(language: Language) -> tuple[list[str], Path]:
    program = need_program(language)
    if language == "php":
        return [program, "-S", "127.0.0.1:0", "index.php"], EXAMPLES / "php"
    return [program, "server.js"], EXAMPLES / "node"


@asynccontextmanager
async def sample_app(
    language: Language, *, secret: str, state_dir: Path, sidecar_url: str = ""
) -> AsyncIterator[str]:
    """Run the sample app; yield its root URL (the bridge is under `PREFIX`).

    The app runs in its own session, so stopping it stops PHP's worker processes too.
    """
    command, cwd = _command(language)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "APP_SECRET": secret,
        "SIDECAR_URL": sidecar_url,
        "APP_STATE_DIR": str(state_dir),
        "PORT": "0",
        # The sidecar may call the app while the app calls the sidecar (an inbound call).
        "PHP_CLI_SERVER_WORKERS": "4",
    }
    process = await trio.lowlevel.open_process(
        command,
        cwd=str(cwd),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = process.stdout
    seen = b""
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                while (found := _LISTENING.search(seen)) is None:
                    chunk = await output.receive_some(4096)
                    if not chunk:
                        raise AssertionError(f"the {language} app did not start: {seen!r}")
                    seen += chunk

            async def drain() -> None:
                # The PHP server logs every request: keep its pipe from filling up.
                while await output.receive_some(65536):
                    pass

            nursery.start_soon(drain)
            try:
                yield f"http://127.0.0.1:{int(found.group(1))}"
            finally:
                _signal_group(process.pid, signal.SIGTERM)
    finally:
        with trio.CancelScope(shield=True):
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGKILL)
            await process.wait()


def _signal_group(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pid, number)
