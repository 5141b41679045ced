"""fit_open_files in a child process given a low open-file limit: the soft limit is raised
as far as the connection cap needs, and the cap lowered (one warning) when the hard limit
is too low."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import resource, sys
from sidecar.logs import configure_logging
from sidecar.web.limits import ConnectionLimits, fit_open_files
configure_logging(level="info", fmt="json", stream=sys.stdout)
soft, hard, cap = (int(arg) for arg in sys.argv[1:])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
fitted = fit_open_files(
    ConnectionLimits(
        max_connections=cap, max_per_client=cap, header_timeout_seconds=10, body_timeout_seconds=30
    )
)
print(fitted.max_connections, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def fit(soft: int, hard: int, cap: int) -> tuple[list[dict[str, object]], int, int]:
    """The log lines, the fitted cap and the soft limit after `fit_open_files`."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(soft), str(hard), str(cap)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *lines, last = done.stdout.splitlines()
    fitted, raised = (int(value) for value in last.split())
    return [json.loads(line) for line in lines], fitted, raised


def test_the_soft_limit_is_raised_as_far_as_the_cap_needs() -> None:
    logged, fitted, soft = fit(256, 4096, 1024)
    assert (fitted, soft) == (1024, 1024 + 128)
    assert logged == []


def test_a_hard_limit_too_low_lowers_the_cap_with_one_warning() -> None:
    logged, fitted, soft = fit(256, 1024, 5000)
    assert (fitted, soft) == (1024 - 128, 1024)
    assert len(logged) == 1
    assert logged[0]["level"] == "warning"
    assert (logged[0]["max_connections"], logged[0]["capped_at"]) == (5000, 896)


def test_enough_files_change_nothing() -> None:
    logged, fitted, soft = fit(4096, 4096, 1024)
    assert (fitted, soft) == (1024, 4096)
    assert logged == []
