"""A refusal answered before the body was read (here a rate limit) ends the
connection, so a client that keeps connections alive is never left waiting on the next
request of the same connection."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from sidecar.web.public import PUBLIC_RATE_BURST
from tests.harness import lifecycle, sidecar_stack, signed_headers


async def test_the_request_after_a_rate_limit_is_answered(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path, env={"SYNC_INTERVAL_MINUTES": "0"}) as stack:
        body = json.dumps(lifecycle("config_updated")).encode()
        limits = httpx.Limits(max_connections=1)  # every request on one kept-alive connection
        async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=30) as client:
            statuses = []
            with trio.fail_after(20):  # before the fix, the request after a 429 never ended
                for _ in range(PUBLIC_RATE_BURST + 10):
                    answer = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    statuses.append(answer.status_code)
                    if answer.status_code == 429:
                        assert answer.headers["connection"] == "close"
                health = await client.get("/health")
    assert 429 in statuses
    assert statuses.count(429) + statuses.count(200) == len(statuses)
    assert health.status_code == 200
