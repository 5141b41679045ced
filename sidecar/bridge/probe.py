"""Probing the vendor app's health endpoint (`APP_HEALTH_PATH`).

A plain `GET APP_BASE_URL + APP_HEALTH_PATH`, signed like every bridge call (over an empty
body) so an app that checks signatures everywhere can keep doing so, and one that does not
can ignore the headers. Any 2xx answer is healthy; anything else, or no answer within the
timeout, is not. The probe never retries: the next probe is its retry.
"""

from __future__ import annotations

from typing import Final

import httpx

from sidecar.bridge.client import SIGNATURE_HEADER, TIMESTAMP_HEADER
from sidecar.clock import Clock, system_clock
from sidecar.logs import get_logger
from sidecar.metrics.hooks import CallObserver
from sidecar.outbound import NO_RETRY, send
from sidecar.security.signature import sign

__all__ = ["DEFAULT_PROBE_TIMEOUT_SECONDS", "AppProbe"]

DEFAULT_PROBE_TIMEOUT_SECONDS: Final = 5.0


class AppProbe:
    """Asks the app whether it is healthy."""

    __slots__ = ("_clock", "_http", "_log", "_observe", "_secret", "_timeout_seconds", "url")

    def __init__(
        self,
        *,
        base_url: str,
        path: str,
        secret: str,
        http: httpx.AsyncClient,
        clock: Clock = system_clock,
        timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS,
        observe: CallObserver | None = None,
    ) -> None:
        """Probe `base_url + path` (APP_BASE_URL and APP_HEALTH_PATH)."""
        self.url = base_url.rstrip("/") + "/" + path.lstrip("/")
        self._secret = secret
        self._http = http
        self._clock = clock
        self._timeout_seconds = timeout_seconds
        self._observe = observe
        self._log = get_logger("bridge").bind(call="health")

    def __repr__(self) -> str:
        return f"AppProbe(url={self.url!r})"

    async def healthy(self) -> bool:
        """True when the app answers its health endpoint with a 2xx."""

        def headers() -> dict[str, str]:
            timestamp = str(int(self._clock().timestamp()))
            return {
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, b""),
            }

        try:
            response = await send(
                self._http,
                "GET",
                self.url,
                headers=headers,
                replayable=True,
                policy=NO_RETRY,
                log=self._log,
                timeout_seconds=self._timeout_seconds,
                max_body_bytes=64 * 1024,
                clock=self._clock,
                observe=self._observe,
            )
        except httpx.TransportError as exc:
            self._log.debug("health probe: no answer", error=f"{type(exc).__name__}: {exc}")
            return False
        if not response.ok:
            self._log.debug("health probe: failing status", status=response.status)
        return response.ok
