"""The vendor app's health, probed periodically (`APP_HEALTH_PATH`), and what it pauses.

While the app does not answer its health endpoint, a scheduled sync could only fail, one
cursor after another, each failure pushing that cursor's backoff further out. So the
scheduler asks `paused()` at each tick and queues nothing while the app is unhealthy;
the syncs it would have queued are still due (requests and interrupted windows are
durable), and run once the app answers again — the scheduler is woken at once.
An operator's sync (admin API, CLI) is never paused: it is asked for on purpose.

One failed probe is not enough to pause (a blip, a deploy): `FAILURES_TO_PAUSE` in a row
are. One good answer resumes. The state shows in `/health` (`"app": "ok"|"unhealthy"`)
without making it fail on its own: the sidecar is fine, its peer is not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Literal

import trio

from sidecar.logs import get_logger

__all__ = [
    "FAILURES_TO_PAUSE",
    "PROBE_INTERVAL_SECONDS",
    "AppHealth",
    "AppState",
]

AppState = Literal["unknown", "ok", "unhealthy"]

PROBE_INTERVAL_SECONDS: Final = 30.0
FAILURES_TO_PAUSE: Final = 2

_log = get_logger("app_health")


class AppHealth:
    """The app's health as last probed; `paused()` tells the scheduler to hold off."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        interval_seconds: float = PROBE_INTERVAL_SECONDS,
        failures_to_pause: int = FAILURES_TO_PAUSE,
        on_recovery: Callable[[], None] = lambda: None,
    ) -> None:
        """`probe` answers True when the app is healthy (e.g. `AppProbe.healthy`);
        `on_recovery` is called when it becomes healthy again (e.g. `SyncScheduler.wake`)."""
        if interval_seconds <= 0 or failures_to_pause < 1:
            raise ValueError("a probe needs interval_seconds > 0 and failures_to_pause >= 1")
        self._probe = probe
        self._interval = interval_seconds
        self._failures_to_pause = failures_to_pause
        self._on_recovery = on_recovery
        self._failures = 0
        self._state: AppState = "unknown"

    @property
    def state(self) -> AppState:
        """`unknown` until the first probe, then `ok` or `unhealthy`."""
        return self._state

    def paused(self) -> bool:
        """True while scheduled syncs must wait for the app."""
        return self._state == "unhealthy"

    def healthy(self) -> bool | None:
        """True or False once probed; None before (for the metrics)."""
        return None if self._state == "unknown" else self._state == "ok"

    async def check(self) -> AppState:
        """Probe once and update the state; return it."""
        if await self._probe():
            self._failures = 0
            recovered = self._state == "unhealthy"
            self._state = "ok"
            if recovered:
                _log.info("the app answers its health probe again; scheduled syncs resume")
                self._on_recovery()
            return self._state
        self._failures += 1
        if self._failures >= self._failures_to_pause and self._state != "unhealthy":
            _log.warning(
                "the app fails its health probe; scheduled syncs are paused until it answers",
                failures=self._failures,
            )
            self._state = "unhealthy"
        return self._state

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe every `interval_seconds` until cancelled."""
        task_status.started()
        while True:
            await self.check()
            await trio.sleep(self._interval)
