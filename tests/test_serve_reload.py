"""SIGHUP to a real `serve` process rotates the webhook secrets read from
WEBHOOK_SECRET_FILE: afterwards the old secret is refused and the new one accepted, and
requests in flight around the signal are all answered (none dropped)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.conftest import APP_SECRET, WEBHOOK_SECRET
from tests.harness import ACCESS_TOKEN, lifecycle, process_env, signed_headers
from tests.test_serve_process import STARTUP_TIMEOUT_SECONDS, sidecar_process

NEW_SECRET = "whsec_rotated_77e1"
REQUESTS_AROUND_THE_SIGNAL = 25  # pairs: within the per-IP burst


async def test_sighup_rotates_webhook_secrets_without_dropping_requests(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook_secret"
    secret_file.write_text(WEBHOOK_SECRET, encoding="utf-8")
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    async with running(fake) as api_url, running(vendor) as app_url:
        env = process_env(
            database=tmp_path / "sidecar.sqlite",
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            SYNC_INTERVAL_MINUTES="0",
            DRAIN_TIMEOUT_SECONDS="2",
        )
        del env["WEBHOOK_SECRET"]
        env["WEBHOOK_SECRET_FILE"] = str(secret_file)
        async with sidecar_process(env) as (process, log):
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                ready = await log.until("sidecar ready")
            base = str(ready["listen"][0])  # type: ignore[index]
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:

                async def post(secret: str, shop: int) -> int:
                    payload = lifecycle("config_updated") | {"shop_name": f"Shop {shop}"}
                    body = json.dumps(payload).encode()
                    answer = await client.post(
                        "/webhook/receive",
                        content=body,
                        headers=signed_headers(body, secret=secret),
                    )
                    return answer.status_code

                assert await post(WEBHOOK_SECRET, 0) == 200
                statuses: list[int] = []

                async def steady_traffic() -> None:
                    for shop in range(REQUESTS_AROUND_THE_SIGNAL):
                        # Either secret may be the current one while the signal lands.
                        statuses.append(await post(WEBHOOK_SECRET, shop))
                        statuses.append(await post(NEW_SECRET, shop))

                async with trio.open_nursery() as reader:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(steady_traffic)
                        await trio.sleep(0.05)  # the signal lands inside the traffic
                        secret_file.write_text(NEW_SECRET, encoding="utf-8")
                        process.send_signal(signal.SIGHUP)
                        with trio.fail_after(10):
                            await log.until("SIGHUP: webhook secrets reloaded")
                        reader.start_soon(log.drain)  # keep reading: a full pipe blocks it
                    assert len(statuses) == 2 * REQUESTS_AROUND_THE_SIGNAL
                    assert set(statuses) <= {200, 401}  # every request answered, none dropped
                    # The old secret worked first, the new one last; around the signal one
                    # pair may see both accepted (old just before it, new just after).
                    assert statuses[:2] == [200, 401]
                    assert statuses[-2:] == [401, 200]
                    assert statuses.count(200) - REQUESTS_AROUND_THE_SIGNAL in (0, 1)

                    assert await post(WEBHOOK_SECRET, 1) == 401
                    assert await post(NEW_SECRET, 1) == 200
                    process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                assert await process.wait() == 0
    refused = [line for line in log.lines if line.get("reason") == "signature_mismatch"]
    assert refused, "the refusals are logged with their reason"
    assert NEW_SECRET not in json.dumps(log.lines)
    assert WEBHOOK_SECRET not in json.dumps(log.lines)
