"""Every console page over HTTP against a whole sidecar (virtual clock): each renders what
the admin service reads, markup in shop names and payloads comes out as text, payloads
are masked until an audited reveal, and the actions do what their confirmation says."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path

import trio
import trio.testing

from sidecar.clock import format_timestamp, parse_timestamp
from tests.web.console.client import console_stack, seed

_LINK = re.compile(r'href="(/admin/ui[^"]*)"')


def _no_markup_injected(page: str) -> None:
    # The hostile strings appear only escaped: no tag of theirs survives.
    assert "<script>document" not in page
    assert "<img" not in page
    assert 'onerror="' not in page
    assert " at 0x" not in page  # no Python object shown by mistake


async def test_every_page_renders_escaped_and_masked(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await seed(console)
        await console.sign_in()
        seen: set[str] = set()
        visited: set[str] = set()
        to_visit = ["/admin/ui"]
        while to_visit:  # every page reachable by a link, once (and each path once)
            link = to_visit.pop()
            path = link.partition("?")[0]
            if link in visited or path.startswith("/admin/ui/static/"):
                continue
            if path in seen and "offset=" not in link and path != "/admin/ui/dead-letter":
                continue
            visited.add(link)
            seen.add(path)
            response = await console.get(link.removeprefix("/admin/ui"))
            assert response.status_code == 200, link
            _no_markup_injected(response.text)
            assert "jane.doe@shop.example" not in response.text
            to_visit.extend(html.unescape(found) for found in _LINK.findall(response.text))
        for expected in (
            "/admin/ui/installations",
            "/admin/ui/installations/inst_1",
            "/admin/ui/runs",
            "/admin/ui/runs/1",
            "/admin/ui/outbox",
            "/admin/ui/inbound",
            "/admin/ui/webhooks",
            "/admin/ui/webhooks/1",
            "/admin/ui/dead-letter",
            "/admin/ui/dead-letter/confirm",
            "/admin/ui/audit",
            "/admin/ui/replicas",
            "/admin/ui/installations/inst_1/cursor-reset",
        ):
            assert expected in seen, expected
        assert ">inst_1</a>" not in (await console.get("/installations", q="other")).text
        assert ">inst_1</a>" in (await console.get("/installations", q="BISTRO.EX")).text
        assert ">inst_1</a>" in (await console.get("/installations", q="inst_1")).text
        assert ">inst_1</a>" not in (await console.get("/installations", q="inst_")).text
        assert ">inst_1</a>" not in (await console.get("/installations", q="%")).text
        found = await console.get("/installations", q="<SCRIPT>", status="active")
        assert ">inst_1</a>" in found.text
        assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in found.text
        assert ">inst_1</a>" not in (await console.get("/installations", status="inactive")).text
        assert (await console.get("/installations", status="nonsense")).status_code == 400


async def test_reveal_shows_the_payload_once_and_is_audited(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await seed(console)
        await console.sign_in()
        [[event_id]] = console.stack.query("SELECT event_id FROM inbound_outbox")
        masked = await console.get(f"/outbox/{event_id}")
        assert "j***@***.example" in masked.text
        revealed = await console.post(f"/reveal/outbox/{event_id}")
        assert revealed.status_code == 200
        assert "jane.doe@shop.example" in revealed.text
        _no_markup_injected(revealed.text)
        assert "&lt;script&gt;" in revealed.text
        reveals = [row for row in console.audit() if row[1] == "payload.reveal"]
        assert reveals == [("console", "payload.reveal", f"outbox:{event_id}", '{"outcome": "ok"}')]
        only = await console.get("/audit", action="payload.reveal", installation="inst_1")
        assert only.text.count("<td>payload.reveal</td>") == 1
        assert "<td>console.sign_in</td>" not in only.text
        assert "<td>console.sign_in</td>" in (await console.get("/audit")).text


async def test_dead_letter_replay_of_the_filtered_set_after_its_confirmation(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await seed(console)
        await console.sign_in()
        listing = await console.get("/dead-letter", installation="inst_1")
        assert "4 item(s) match." in listing.text
        confirm = await console.get("/dead-letter/confirm", installation="inst_1", action="replay")
        assert "Replay 4 dead-lettered item(s) of installation" in confirm.text
        console.stack.shopimind.clear_rejections()
        done = await console.post("/dead-letter/replay", {"installation": "inst_1"})
        assert done.status_code == 303
        after = await console.get("/dead-letter", installation="inst_1")
        assert "replayed: 4 accepted, 0 rejected, 0 failed" in after.text
        assert "0 item(s) match." in after.text
        [replay] = [row for row in console.audit() if row[1] == "dead_letter.replay"]
        assert json.loads(str(replay[3]))["accepted"] == 4


async def test_purge_of_one_item(mock_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with console_stack(tmp_path) as console:
        await seed(console)
        await console.sign_in()
        [[item_id]] = console.stack.query("SELECT MIN(id) FROM rejected_items")
        done = await console.post(
            "/dead-letter/purge", {"installation": "inst_1", "item": str(item_id)}
        )
        assert done.status_code == 303
        back = await console.get(done.headers["location"].removeprefix("/admin/ui"))
        assert "purged: 1 item(s) removed" in back.text
        assert console.stack.query("SELECT COUNT(*) FROM rejected_items") == [(3,)]


async def test_cursor_reset_names_what_will_be_sent_again(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await seed(console)
        await console.sign_in()
        # The cursor failed once (4 items rejected): retried 1 minute after its failure.
        [[failed_at]] = console.stack.query(
            "SELECT updated_at FROM sync_cursors WHERE entity = 'customers'"
        )
        retry_at = format_timestamp(parse_timestamp(str(failed_at)) + timedelta(minutes=1))
        assert f"<td>{retry_at}</td>" in (await console.get("/installations/inst_1")).text
        confirm = await console.get("/installations/inst_1/cursor-reset", entity="customers")
        assert confirm.status_code == 200
        text = re.sub(r"<[^>]+>", "", confirm.text)
        assert "Resetting the cursor of customers of installation inst_1" in text
        assert "re-send it to ShopiMind's customers: 40 item(s) were sent so far" in text
        done = await console.post("/installations/inst_1/cursor-reset", {"entity": "customers"})
        assert done.status_code == 303
        page = await console.get("/installations/inst_1")
        assert "cursor customers reset: the next run sends it again" in page.text
        assert console.stack.query(
            "SELECT COUNT(*) FROM sync_cursors WHERE entity = 'customers'"
        ) == [(0,)]
        unknown = await console.get("/installations/inst_1/cursor-reset", entity="nope")
        assert unknown.status_code == 400


async def test_unknown_things_are_pages_not_tracebacks(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await console.sign_in()
        for path in ("/installations/nope", "/runs/99", "/outbox/99", "/dead-letter/99"):
            response = await console.get(path)
            assert response.status_code == 404, path
            assert "text/html" in response.headers["content-type"]
            assert "Traceback" not in response.text
        assert (await console.get("/installations", offset="x")).status_code == 400
        assert (await console.get("/runs/99999999999999999999")).status_code == 404
        for kind in ("runs", "outbox", "webhooks", "dead-letter"):  # beyond 64 bits: unknown
            for big in (2**63, 2**64):
                assert (await console.get(f"/{kind}/{big}")).status_code == 404, (kind, big)
        sync = await console.post("/installations/nope/sync")
        assert sync.status_code == 404
        nowhere = await console.get("/no/such/page")
        assert nowhere.status_code == 404
        assert "No such page." in nowhere.text
        assert (await console.post("/runs")).status_code == 405


async def test_the_replicas_screen_lists_this_and_the_other_replicas(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path, REPLICA_ID="web-1") as console:
        with console.stack.writable() as db:  # another replica, written by its own process
            db.execute(
                "INSERT INTO replicas VALUES ('<b>web-2</b>', '9.9', 'h2', 7, 30, "
                "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', "
                "'2026-01-01T00:00:30.000Z', NULL)"
            )
        await console.sign_in()
        page = (await console.get("/replicas")).text
        _no_markup_injected(page)
        assert "1 of 2 replica(s) alive. This page was served by <code>web-1</code>." in page
        assert '<td><code>web-1</code> (this one)</td><td class="replica-state">alive' in page
        assert '&lt;b&gt;web-2&lt;/b&gt;</code></td><td class="replica-state">dead' in page
        assert "data-refresh-seconds" in page
