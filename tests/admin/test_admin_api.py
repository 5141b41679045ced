"""The admin API of a whole sidecar on its own listener: every read and action, the
audit rows they leave, masked payloads, and every refusal (token, limit, ids, busy)."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from sidecar.testing.vendor_app import Dataset, Slow
from tests.harness import ACCESS_TOKEN, Stack, sidecar_stack, trio_wall_clock

TOKEN = "adm_" + "7f3c9b2e" * 5  # 44 characters
CUSTOMERS = 120


def _customer(index: int) -> dict[str, object]:
    # Every 40th customer has an email ShopiMind refuses (3 of 120).
    email = "not-an-email" if index % 40 == 7 else f"jane.{index}@shop.example"
    return {"id": index, "email": email, "first_name": "Jane", "phone": "+33 6 12 34 56 78"}


class Admin:
    """The admin listener of a running sidecar, called with the token (or another)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.running.admin_urls[0] if stack.running.admin_urls else stack.url

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = TOKEN,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        pace: bool = True,
    ) -> httpx.Response:
        """One request; `pace` waits 1 s of trio time first, so the limit never refuses."""
        if pace:
            await trio.sleep(1)
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("x-admin-token", token)
        content = None if body is None else json.dumps(body).encode()
        if content is not None:
            sent.setdefault("content-type", "application/json")
        return await self.stack.http.request(
            method, self.url + path, content=content, headers=sent, params=params
        )

    async def get(self, path: str, **params: str) -> Any:
        """The answer of a read (JSON, checked successful)."""
        response = await self.call("GET", path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True
        return body

    async def post(self, path: str, body: object = None, status: int = 200) -> Any:
        """The answer of an action, checked to have `status`."""
        response = await self.call("POST", path, body)
        assert response.status_code == status, response.text
        return response.json()

    def audit(self) -> list[tuple[object, ...]]:
        return self.stack.query(
            "SELECT actor, action, installation_id, target, detail_json, client_ip "
            "FROM audit_log ORDER BY id"
        )


@asynccontextmanager
async def admin_stack(
    tmp_path: Path, *, rejecting: bool = True, **env: str
) -> AsyncIterator[Admin]:
    """A sidecar with the admin API on its own listener; ShopiMind refuses 3 customers
    unless not `rejecting`."""
    settings = {"ADMIN_TOKEN": TOKEN, "ADMIN_PORT": "0", "SYNC_WORKERS": "2", **env}
    async with sidecar_stack(tmp_path, clock=trio_wall_clock, env=settings) as stack:
        stack.vendor.set_dataset("customers", Dataset(count=CUSTOMERS, item=_customer))
        stack.vendor.set_dataset("products", Dataset(count=0))
        stack.vendor.sources["orders"] = []
        if rejecting:
            stack.shopimind.reject_when(
                lambda resource, item: (
                    None if "@" in str(item.get("email", "@")) else "invalid email"
                )
            )
        yield Admin(stack)


async def _activated(admin: Admin, status: str = "partial") -> str:
    """Install and activate inst_1, wait for its backfill; return its inbound secret."""
    secret = await admin.stack.activate()
    assert await admin.stack.finished_runs(1) == [("full", status)]  # partial: 3 rejected
    return secret


INSTALLATION_READS = ("", "/cursors", "/runs", "/webhooks", "/inbound", "/outbox", "/state")
INSTALLATION_ACTIONS = (
    ("/sync", {"full": False}),
    ("/reprovision", None),
    ("/cursors/reset", {"entity": "customers"}),
    ("/dead-letter/replay", None),
    ("/dead-letter/purge", {"all": True}),
)


async def test_reads_describe_the_installation_without_its_secrets(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)

        listing = await admin.get("/admin/installations")
        assert (listing["limit"], listing["offset"], listing["count"]) == (50, 0, 1)
        [entry] = listing["items"]
        assert entry["installation_id"] == "inst_1"
        assert entry["status"] == "active"
        assert entry["last_run"]["status"] == "partial"
        assert {c["entity"] for c in entry["cursors"]} >= {"customers", "products"}

        one = await admin.get("/admin/installations/inst_1")
        assert one["status"] == "active"
        assert one["syncing"] is False
        assert one["dead_letter_items"] == 3

        cursors = await admin.get("/admin/installations/inst_1/cursors")
        customers = next(c for c in cursors["items"] if c["entity"] == "customers")
        assert customers["in_error"] is True  # rejected items hold it (no tolerate_rejects)

        runs = await admin.get("/admin/installations/inst_1/runs")
        [run] = runs["items"]
        assert (run["kind"], run["status"]) == ("full", "partial")
        assert run["summary"]["items"] == CUSTOMERS
        assert run["ended"].startswith("completed with problems: customers: 3 item(s) rejected")

        webhooks = await admin.get("/admin/installations/inst_1/webhooks")
        assert [w["event"] for w in webhooks["items"]] == [
            "integration.activated",
            "integration.installed",
        ]
        assert (await admin.get("/admin/webhooks"))["count"] == 2

        state = await admin.get("/admin/installations/inst_1/state")
        keys = {entry["key"] for entry in state["items"]}
        assert "access_token" in keys
        assert all(set(e) == {"key", "encrypted", "updated_at"} for e in state["items"])

        description = await admin.get("/admin/integration")
        assert description["manifest"]["slug"]
        assert [s["entity"] for s in description["sync"]][:2] == ["customers", "orders"]
        assert {a["action"] for a in description["inbound"]} == {"sale", "member", "card", "order"}

        overview = await admin.get("/admin/overview")
        assert overview["installations"] == {"active": 1, "inactive": 0, "uninstalled": 0}
        assert overview["last_runs"] == {"partial": 1}
        assert overview["dead_letter_items"] == 3
        assert overview["sync_workers"]["total"] == 2
        assert overview["ready"] is True

        everything = "".join(
            [
                json.dumps(await admin.get(f"/admin/installations/inst_1{read}"))
                for read in INSTALLATION_READS
            ]
        )
        assert ACCESS_TOKEN not in everything
        assert admin.audit() == []  # reads are not actions


async def test_payloads_are_masked_and_revealed_only_by_an_audited_action(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        secret = await _activated(admin)
        sale = {"email": "jane.doe@shop.example", "first_name": "Jane", "amount": 42}
        queued = await admin.stack.inbound("sale", sale, secret=secret)
        assert queued.status_code == 202, queued.text
        event_id = queued.json()["id"]

        outbox = await admin.get("/admin/installations/inst_1/outbox")
        [event] = outbox["items"]
        assert event["payload"] == {"email": "j***@***.example", "first_name": "J***", "amount": 42}
        assert "idempotency_key" not in event
        inbound = await admin.get("/admin/installations/inst_1/inbound")
        assert inbound["items"][0]["action"] == "sale"

        dead = await admin.get("/admin/installations/inst_1/dead-letter")
        assert dead["total"] == 3
        for item in dead["items"]:
            assert item["item"]["email"] == "n***"
            assert item["item"]["phone"] == "***78"
            assert item["reason"] == "invalid email"
        shown = json.dumps(outbox) + json.dumps(dead)
        assert "jane.doe@shop.example" not in shown
        assert "12 34 56 78" not in shown

        revealed = await admin.post(f"/admin/reveal/outbox/{event_id}")
        assert revealed["item"]["payload"] == sale
        item_id = dead["items"][0]["id"]
        revealed = await admin.post(f"/admin/reveal/dead_letter/{item_id}")
        assert revealed["item"]["item"]["email"] == "not-an-email"
        webhook_id = admin.stack.query("SELECT id FROM webhook_log ORDER BY id LIMIT 1")[0][0]
        revealed = await admin.post(f"/admin/reveal/webhook/{webhook_id}")
        assert revealed["item"]["event"] == "integration.installed"

        audit = admin.audit()
        assert [(row[1], row[3]) for row in audit] == [
            ("payload.reveal", f"outbox:{event_id}"),
            ("payload.reveal", f"dead_letter:{item_id}"),
            ("payload.reveal", f"webhook:{webhook_id}"),
        ]
        for actor, _, installation_id, _, detail, client_ip in audit:
            assert (actor, installation_id, client_ip) == ("admin-api", "inst_1", "127.0.0.1")
            assert json.loads(str(detail)) == {"outcome": "ok"}
        listed = await admin.get("/admin/audit")
        assert [e["action"] for e in listed["items"]] == ["payload.reveal"] * 3
        assert "jane" not in json.dumps(listed)


async def test_sync_reset_and_reprovision_actions(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path, rejecting=False) as admin:
        await _activated(admin, "ok")
        api = admin.stack.shopimind
        accepted = api.count("customers")
        assert accepted == CUSTOMERS

        started = await admin.post("/admin/installations/inst_1/sync", {"full": False}, 202)
        assert (started["kind"], started["status"]) == ("incremental", "running")
        runs = await admin.stack.finished_runs(2)
        assert runs[1][0] == "incremental"
        assert api.count("customers") == accepted  # nothing new in the app

        reset = await admin.post(
            "/admin/installations/inst_1/cursors/reset", {"entity": "customers"}
        )
        assert reset["reset"] is True
        cursors = await admin.get("/admin/installations/inst_1/cursors")
        assert "customers" not in {c["entity"] for c in cursors["items"]}
        await admin.post("/admin/installations/inst_1/sync", None, 202)  # no body: incremental
        await admin.stack.finished_runs(3)
        assert api.count("customers") == 2 * accepted  # the reset cursor was backfilled

        data_sources_before = len(api.requests_to("data-sources"))
        provisioned = await admin.post("/admin/installations/inst_1/reprovision")
        assert isinstance(provisioned["provisioned"], int)
        assert provisioned["provisioned"] > 0
        assert provisioned["errors"] == []
        assert len(api.requests_to("data-sources")) > data_sources_before

        audit = admin.audit()
        assert [(row[1], row[3]) for row in audit] == [
            ("sync", None),
            ("cursor.reset", "customers"),
            ("sync", None),
            ("reprovision", None),
        ]
        sync_detail = json.loads(str(audit[0][4]))
        assert sync_detail["outcome"] == "ok"
        assert sync_detail["kind"] == "incremental"
        assert isinstance(sync_detail["run_id"], int)
        assert json.loads(str(audit[3][4]))["provisioned"] == provisioned["provisioned"]


async def test_dead_letter_replay_and_purge(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        api = admin.stack.shopimind
        dead = await admin.get("/admin/installations/inst_1/dead-letter")
        ids = [item["id"] for item in dead["items"]]
        assert len(ids) == 3

        # Still refused: the items stay, with ShopiMind's reason.
        again = await admin.post("/admin/installations/inst_1/dead-letter/replay", {"ids": ids[:1]})
        assert (again["accepted"], again["rejected"], again["failed"]) == (0, 1, 0)
        assert again["items"] == [{"id": ids[0], "outcome": "rejected", "reason": "invalid email"}]

        # The cause is fixed on ShopiMind's side: replayed items leave the dead-letter.
        api.clear_rejections()
        before = api.count("customers")
        replayed = await admin.post(
            "/admin/installations/inst_1/dead-letter/replay", {"ids": ids[:2]}
        )
        assert (replayed["accepted"], replayed["removed"]) == (2, 2)
        assert api.count("customers") == before + 2
        pushed = api.items("customers")[-2:]
        assert {item["email"] for item in pushed} == {"not-an-email"}
        remaining = await admin.get("/admin/installations/inst_1/dead-letter")
        assert [item["id"] for item in remaining["items"]] == ids[2:]

        refused = await admin.call(
            "POST", "/admin/installations/inst_1/dead-letter/purge", {"ids": [ids[0]]}
        )
        assert refused.json()["removed"] == 0  # already gone: nothing purged twice
        purged = await admin.post("/admin/installations/inst_1/dead-letter/purge", {"all": True})
        assert purged["removed"] == 1
        assert (await admin.get("/admin/installations/inst_1/dead-letter"))["total"] == 0
        nothing = await admin.post("/admin/installations/inst_1/dead-letter/replay")
        assert nothing["accepted"] == 0

        actions = [(row[1], json.loads(str(row[4]))) for row in admin.audit()]
        assert actions[0] == (
            "dead_letter.replay",
            {"outcome": "ok", "accepted": 0, "rejected": 1, "failed": 0, "removed": 0},
        )
        assert actions[1] == (
            "dead_letter.replay",
            {"outcome": "ok", "accepted": 2, "rejected": 0, "failed": 0, "removed": 2},
        )
        assert actions[2] == ("dead_letter.purge", {"outcome": "ok", "removed": 0})
        assert actions[3] == ("dead_letter.purge", {"outcome": "ok", "removed": 1})
        assert "not-an-email" not in json.dumps(actions)


async def test_actions_on_a_busy_installation_are_409(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        holder = f"{socket.gethostname()}:{os.getpid()}:other-task/1"
        with admin.stack.writable() as db:
            db.execute(
                "INSERT OR REPLACE INTO leases (name, owner, acquired_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    "installation:inst_1",
                    holder,
                    "2026-11-26T09:00:00.000Z",
                    "2999-01-01T00:00:00.000Z",
                ),
            )
        assert (await admin.get("/admin/installations/inst_1"))["syncing"] is True
        for path, body in INSTALLATION_ACTIONS[:4]:
            response = await admin.call("POST", f"/admin/installations/inst_1{path}", body)
            assert response.status_code == 409, (path, response.text)
            assert response.json()["error"] == "busy"
        outcomes = [(row[1], json.loads(str(row[4]))["outcome"]) for row in admin.audit()]
        assert outcomes == [
            ("sync", "busy"),
            ("reprovision", "busy"),
            ("cursor.reset", "busy"),
            ("dead_letter.replay", "busy"),
        ]
        # Held by a replica on another host, or by a dead process of this one: "syncing" is
        # whether the lease is unexpired, whoever holds it (no process id is checked).
        for owner in ("replica-b.example:4242:beef/1", f"{socket.gethostname()}:999999999:x/1"):
            with admin.stack.writable() as db:
                db.execute(
                    "UPDATE leases SET owner = ? WHERE name = 'installation:inst_1'", (owner,)
                )
            assert (await admin.get("/admin/installations/inst_1"))["syncing"] is True
        with admin.stack.writable() as db:  # it expired: nobody holds it any more
            db.execute(
                "UPDATE leases SET expires_at = '2026-01-01T00:00:00.000Z' "
                "WHERE name = 'installation:inst_1'"
            )
        assert (await admin.get("/admin/installations/inst_1"))["syncing"] is False
        await admin.post("/admin/installations/inst_1/sync", {"full": True}, 202)


async def test_unknown_installations_and_items_are_404(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        for read in (*INSTALLATION_READS, "/dead-letter"):
            response = await admin.call("GET", f"/admin/installations/ghost{read}")
            assert response.status_code == 404, read
            assert response.json()["error"] == "unknown_installation"
        for path, body in INSTALLATION_ACTIONS:
            response = await admin.call("POST", f"/admin/installations/ghost{path}", body)
            assert response.status_code == 404, path
            assert response.json()["error"] == "unknown_installation"
        for kind in ("webhook", "outbox", "dead_letter"):
            response = await admin.call("POST", f"/admin/reveal/{kind}/999")
            assert (response.status_code, response.json()["error"]) == (404, "not_found")
        huge = await admin.call("POST", f"/admin/reveal/webhook/{10**30}")
        assert huge.status_code == 404
        nowhere = await admin.call("GET", "/admin/nothing-here")
        assert (nowhere.status_code, nowhere.json()) == (
            404,
            {"success": False, "error": "not_found"},
        )


async def test_absurd_paging_is_clamped_and_non_numbers_refused(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        big = await admin.get("/admin/webhooks", limit="1000000000", offset="-4")
        assert (big["limit"], big["offset"], big["count"]) == (500, 0, 2)
        small = await admin.get("/admin/webhooks", limit="-3")
        assert (small["limit"], small["count"]) == (1, 1)
        far = await admin.get("/admin/installations/inst_1/runs", offset="9" * 40)
        assert (far["offset"], far["items"]) == (1_000_000, [])
        for params in ({"limit": "abc"}, {"offset": "1e3"}):
            response = await admin.call("GET", "/admin/audit", params=params)
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/admin/installations/inst_1/sync", {"full": "yes"}, 400, "invalid_request"),
        ("/admin/installations/inst_1/sync", [1], 400, "invalid_request"),
        ("/admin/installations/inst_1/cursors/reset", {}, 400, "invalid_request"),
        (
            "/admin/installations/inst_1/cursors/reset",
            {"entity": "unicorns"},
            400,
            "invalid_request",
        ),
        ("/admin/installations/inst_1/cursors/reset", {"entity": "orders"}, 404, "not_found"),
        ("/admin/installations/inst_1/dead-letter/replay", {"ids": "1"}, 400, "invalid_request"),
        ("/admin/installations/inst_1/dead-letter/replay", {"ids": [0]}, 400, "invalid_request"),
        ("/admin/installations/inst_1/dead-letter/replay", {"ids": [999]}, 404, "not_found"),
        ("/admin/installations/inst_1/dead-letter/purge", {}, 400, "invalid_request"),
        (
            "/admin/installations/inst_1/dead-letter/purge",
            {"ids": [1], "all": True},
            400,
            "invalid_request",
        ),
        ("/admin/installations/inst_1/dead-letter/purge", {"ids": [True]}, 400, "invalid_request"),
        ("/admin/reveal/passwords/1", None, 400, "invalid_request"),
    ],
)
async def test_bad_action_requests_are_refused_with_a_reason(
    mock_clock: trio.testing.MockClock,
    tmp_path: Path,
    path: str,
    body: object,
    status: int,
    code: str,
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        before = admin.stack.query("SELECT COUNT(*) FROM rejected_items")
        response = await admin.call("POST", path, body)
        assert response.status_code == status, response.text
        answer = response.json()
        assert (answer["success"], answer["error"]) == (False, code)
        assert answer["message"]
        assert admin.stack.query("SELECT COUNT(*) FROM rejected_items") == before


async def test_bodies_that_are_not_json_objects(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        url = "/admin/installations/inst_1/sync"
        not_json = await admin.call(
            "POST", url, headers={"content-type": "application/json"}, pace=True
        )
        assert not_json.status_code == 202  # an empty JSON body is no option at all
        garbled = await admin.stack.http.post(
            admin.url + url,
            content=b"{oops",
            headers={"x-admin-token": TOKEN, "content-type": "application/json"},
        )
        assert (garbled.status_code, garbled.json()["error"]) == (400, "invalid_json")
        await trio.sleep(1)
        text = await admin.stack.http.post(
            admin.url + url,
            content=b"full=true",
            headers={"x-admin-token": TOKEN, "content-type": "text/plain"},
        )
        assert text.status_code == 415
        await trio.sleep(1)
        large = await admin.stack.http.post(
            admin.url + url,
            content=b'{"full": false, "pad": "' + b"x" * 70_000 + b'"}',
            headers={"x-admin-token": TOKEN, "content-type": "application/json"},
        )
        assert large.status_code == 413


async def test_tokens_are_checked_in_constant_time(
    mock_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac as real_hmac

    import sidecar.security.tokens as tokens

    compared: list[tuple[int, int]] = []

    class CountingHmac:
        @staticmethod
        def compare_digest(a: bytes, b: bytes) -> bool:
            compared.append((len(a), len(b)))
            return real_hmac.compare_digest(a, b)

    monkeypatch.setattr(tokens, "hmac", CountingHmac)
    async with admin_stack(tmp_path) as admin:
        refusals = [
            {"x-admin-token": "wrong"},
            {"x-admin-token": TOKEN[:-1]},  # a prefix
            {"x-admin-token": TOKEN + "x"},
            {"x-admin-token": ""},
            {"authorization": "Bearer"},
            {"authorization": f"Basic {TOKEN}"},
            {"authorization": f"Bearer {TOKEN[:10]}"},
            {},
        ]
        for headers in refusals:
            compared.clear()
            response = await admin.call("GET", "/admin/overview", token=None, headers=headers)
            assert (response.status_code, response.json()) == (
                401,
                {"success": False, "error": "unauthorized"},
            ), headers
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert compared == [(32, 32)], headers  # one comparison of two digests, always
        for headers in ({"x-admin-token": TOKEN}, {"authorization": f"Bearer {TOKEN}"}):
            response = await admin.call("GET", "/admin/overview", token=None, headers=headers)
            assert response.status_code == 200
        metrics = await admin.call("GET", "/metrics", token=None)
        assert metrics.status_code == 401


async def test_without_a_token_every_admin_route_is_refused(
    mock_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    async with sidecar_stack(tmp_path, clock=trio_wall_clock) as stack:
        admin = Admin(stack)
        assert stack.running.admin_urls == ()
        paths = [
            "/admin/overview",
            "/admin/integration",
            "/admin/audit",
            "/admin/webhooks",
            "/admin/installations",
            "/metrics",
            *(f"/admin/installations/inst_1{read}" for read in INSTALLATION_READS),
            "/admin/anything",
        ]
        for path in paths:
            response = await admin.call("GET", path, token="whatever")
            assert response.status_code == 401, path
        for path, body in INSTALLATION_ACTIONS:
            response = await admin.call("POST", f"/admin/installations/inst_1{path}", body)
            assert response.status_code == 401, path
        assert (await stack.http.get(stack.url + "/health")).status_code == 200
    assert any("ADMIN_TOKEN is not set" in r.getMessage() for r in caplog.records)


async def test_on_the_public_listener_without_admin_port_with_a_warning(
    mock_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    async with sidecar_stack(tmp_path, clock=trio_wall_clock, env={"ADMIN_TOKEN": TOKEN}) as stack:
        admin = Admin(stack)
        assert admin.url == stack.url
        assert (await admin.get("/admin/overview"))["installations"] == {
            "active": 0,
            "inactive": 0,
            "uninstalled": 0,
        }
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("served on the public listener" in message for message in warned)


async def test_own_listener_on_loopback_and_nothing_on_the_public_one(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        assert admin.url.startswith("http://127.0.0.1:")
        assert admin.url != admin.stack.url
        public = await admin.stack.http.get(
            admin.stack.url + "/admin/overview", headers={"x-admin-token": TOKEN}
        )
        assert public.status_code == 404
        metrics = await admin.stack.http.get(admin.stack.url + "/metrics")
        assert metrics.status_code == 404
        health = await admin.stack.http.get(admin.url + "/health")
        assert health.status_code == 404  # the admin listener serves the admin API only


async def test_a_flood_is_refused_with_429(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await trio.sleep(60)  # a full bucket
        mock_clock.autojump_threshold = math.inf  # time stands still: nothing refills
        statuses = [
            (await admin.call("GET", "/admin/overview", pace=False)).status_code for _ in range(12)
        ]
        assert statuses == [200] * 10 + [429] * 2
        refused = await admin.call("GET", "/admin/overview", token="wrong", pace=False)
        assert refused.status_code == 429  # before the token: a flood costs no hashing
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"success": False, "error": "rate_limited"}
        mock_clock.jump(1)
        assert (await admin.call("GET", "/admin/overview", pace=False)).status_code == 200


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_parse_and_move_when_a_sync_runs(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await _activated(admin)
        response = await admin.call("GET", "/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = _samples(response.text)
        ns = "shopimind_sidecar"
        full = (("kind", "full"), ("status", "partial"))
        assert before[(f"{ns}_sync_runs_total", full)] == 1
        assert (
            before[
                (f"{ns}_webhooks_total", (("event", "integration.activated"), ("outcome", "ok")))
            ]
            == 1
        )
        assert before[(f"{ns}_items_pushed_total", (("entity", "customers"),))] == CUSTOMERS - 3
        assert before[(f"{ns}_items_rejected_total", (("entity", "customers"),))] == 3
        assert (
            before[(f"{ns}_outbound_calls_total", (("outcome", "2xx"), ("peer", "shopimind")))] > 0
        )
        assert before[(f"{ns}_outbound_calls_total", (("outcome", "2xx"), ("peer", "app")))] > 0
        assert before[(f"{ns}_sync_workers", ())] == 2
        assert before[(f"{ns}_sqlite_file_bytes", ())] > 0
        assert before[(f"{ns}_dead_letter_items", ())] == 3
        assert before[(f"{ns}_store_up", ())] == 1

        await admin.post("/admin/installations/inst_1/sync", {"full": True}, 202)
        await admin.stack.finished_runs(2)
        after = _samples((await admin.call("GET", "/metrics")).text)
        assert after[(f"{ns}_sync_runs_total", full)] == 2
        assert after[(f"{ns}_items_pushed_total", (("entity", "customers"),))] == 2 * (
            CUSTOMERS - 3
        )
        runs = (("kind", "full"),)
        assert after[(f"{ns}_sync_run_duration_seconds_count", runs)] == 2
        assert (
            after[(f"{ns}_push_duration_seconds_count", (("entity", "customers"),))]
            > before[(f"{ns}_push_duration_seconds_count", (("entity", "customers"),))]
        )


async def test_an_unhealthy_app_pauses_scheduled_syncs(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path, APP_HEALTH_PATH="/health") as admin:
        stack = admin.stack
        stack.vendor.healthy = False
        await trio.sleep(90)  # three probes: two failures in a row pause
        health = await stack.http.get(stack.url + "/health")
        assert (health.status_code, health.json()["app"]) == (200, "unhealthy")
        await stack.activate()
        await trio.sleep(15 * 60)  # the backfill is due, but the app is down
        assert stack.query("SELECT COUNT(*) FROM sync_runs") == [(0,)]
        metrics = _samples((await admin.call("GET", "/metrics")).text)
        assert metrics[("shopimind_sidecar_app_healthy", ())] == 0
        overview = await admin.get("/admin/overview")
        assert overview["app"] == "unhealthy"

        stack.vendor.healthy = True
        assert await stack.finished_runs(1) == [("full", "partial")]
        health = await stack.http.get(stack.url + "/health")
        assert health.json()["app"] == "ok"
        assert stack.vendor.health_probes >= 4


async def test_a_running_sync_makes_actions_busy_and_full_workers_unavailable(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path, rejecting=False, SYNC_WORKERS="1") as admin:
        stack = admin.stack
        await stack.activate("inst_1")
        await stack.activate("inst_2")
        await stack.finished_runs(2)
        # Every page of customers now hangs past the bridge's timeout, again and again.
        stack.vendor.inject(Slow(seconds=120), times=50, path="/sync/customers")
        started = await admin.post("/admin/installations/inst_1/sync", {"full": True}, 202)
        assert started["status"] == "running"
        assert (await admin.get("/admin/installations/inst_1"))["syncing"] is True

        for path, body in INSTALLATION_ACTIONS[:4]:
            response = await admin.call("POST", f"/admin/installations/inst_1{path}", body)
            assert (response.status_code, response.json().get("error")) == (409, "busy"), (
                path,
                response.text,
            )
        other = await admin.call("POST", "/admin/installations/inst_2/sync", {"full": False})
        assert (other.status_code, other.json()["error"]) == (503, "unavailable")
        overview = await admin.get("/admin/overview")
        assert overview["sync_workers"]["in_use"] == 1
        assert overview["sync_workers"]["total"] == 1
