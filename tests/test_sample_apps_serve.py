"""The whole flow through the real `serve` process with the PHP and the Node sample apps:
install → activate → backfill → inbound → deactivate. Every item reaches the fake
ShopiMind, the app's inbound call is delivered, and signatures are checked by the vendor's
code on the way in (the app refuses an unsigned call) and by the sidecar on the way back."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import httpx
import pytest
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, configs, lifecycle, process_env, signed_headers
from tests.sample_apps import LANGUAGES, PREFIX, SAMPLE_COUNTS, Language, sample_app
from tests.test_serve_process import STARTUP_TIMEOUT_SECONDS, sidecar_process

STEP_TIMEOUT_SECONDS = 60


def free_port() -> int:
    """A loopback port free right now: the app must know the sidecar's URL before it starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_whole_flow_through_serve(language: Language, tmp_path: Path) -> None:
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    sidecar_url = f"http://127.0.0.1:{free_port()}"
    async with (
        running(fake) as api_url,
        sample_app(
            language, secret=APP_SECRET, state_dir=tmp_path, sidecar_url=sidecar_url
        ) as app_url,
    ):
        env = process_env(
            database=tmp_path / "sidecar.sqlite",
            api_url=api_url,
            app_url=app_url + PREFIX,
            PORT=sidecar_url.rsplit(":", 1)[1],
            DRAIN_TIMEOUT_SECONDS="2",
        )
        async with (
            sidecar_process(env) as (process, log),
            httpx.AsyncClient(base_url=sidecar_url, timeout=30) as client,
        ):
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                await log.until("sidecar ready")

            async def webhook(payload: dict[str, object]) -> object:
                body = json.dumps(payload).encode()
                answer = await client.post(
                    "/webhook/receive", content=body, headers=signed_headers(body)
                )
                return answer.json()

            settings = configs(sync_loyalty=True)
            assert await webhook(lifecycle("installed", configs=settings)) == {"success": True}
            assert await webhook(lifecycle("activated", configs=settings)) == {"success": True}
            with trio.fail_after(STEP_TIMEOUT_SECONDS):
                finished = await log.until("sync finished")
            assert (finished["status"], finished["items"]) == ("ok", sum(SAMPLE_COUNTS.values()))

            # The app's own route: a sale at the till, sent to the sidecar, signed with the
            # inbound secret the app was given on activation.
            sale = await client.post(
                app_url + "/till/sale",
                json={
                    "installation_id": "inst_1",
                    "amount": 42.5,
                    "store": "store-paris",
                    "email": "camille.martin.0@example.com",
                    "ticket": "T-0001",
                },
            )
            assert sale.status_code == 200, sale.text
            assert sale.json()["sidecar_status"] == 202
            with trio.fail_after(STEP_TIMEOUT_SECONDS):
                await log.until("inbound event delivered")

            # The vendor's code checks the sidecar's signature: an unsigned call is refused.
            unsigned = await client.post(app_url + PREFIX + "/sync/customers", json={})
            assert unsigned.status_code == 401

            assert await webhook(lifecycle("deactivated")) == {"success": True}
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await log.drain()
                assert await process.wait() == 0

    assert fake.count("customers") == SAMPLE_COUNTS["customers"]
    assert fake.count("orders") == SAMPLE_COUNTS["orders"]
    assert fake.count("products") == SAMPLE_COUNTS["products"]
    (definition,) = [i for i, d in fake.definitions.items() if d["name"] == "loyalty_cards"]
    assert len(fake.records(definition)) == SAMPLE_COUNTS["custom_data:loyalty_cards"]
    assert {item["customer_id"] for item in fake.items("customers")} == {
        f"c-{i}" for i in range(SAMPLE_COUNTS["customers"])
    }
    assert all("id_data_source" in product for product in fake.items("products"))
    (triggered,) = fake.requests_to("events/trigger/acme_sale")
    assert triggered.json == {
        "amount": 42.5,
        "store": "store-paris",
        "email": "camille.martin.0@example.com",
    }
    warnings = [line for line in log.lines if line.get("level") in ("warning", "error")]
    assert warnings == []
