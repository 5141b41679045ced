"""The console in a real browser (Chromium, driven by Playwright) against a real `serve`
process with the fake ShopiMind and the fake app: what the engineer on call does, the
refusals they must never get past, markup rendered as text, and accessibility."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio

from sidecar.testing.server import running
from tests.web.console.browser import (
    WAIT_MS,
    axe_violations,
    in_browser,
    require_browser,
    served_sidecar,
    sign_in,
)
from tests.web.console.client import IMG, READONLY_TOKEN, SCRIPT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Expect, Page

pytestmark = pytest.mark.usefixtures("browser_available")


@pytest.fixture
def browser_available() -> None:
    require_browser()


def _expect() -> Expect:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    return expect


async def test_sign_in_look_sync_fix_and_sign_out(tmp_path: Path) -> None:
    async with served_sidecar(tmp_path) as served:

        def scenario(browser: Browser) -> None:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            expect = _expect()
            page.goto(served.console)
            expect(page).to_have_url(re.compile(r"/admin/ui/sign-in$"))
            sign_in(page, served)
            # The overview, with the real figures of this store.
            expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
            trouble = page.locator("section", has=page.get_by_role("heading", name="Trouble"))
            expect(trouble.locator("dd").nth(1)).to_have_text("4")  # 4 dead-lettered
            installs = page.locator(
                "section", has=page.get_by_role("heading", name="Installations")
            )
            expect(installs.locator("dd").first).to_have_text("1")  # 1 active
            # It refreshes by itself: a second sale shows up as delivered.
            delivered = page.locator('a[href$="/admin/ui/outbox?status=delivered"]')
            expect(delivered).to_have_text("1")
            trio.from_thread.run(served.send_sale)
            expect(delivered).to_have_text("2")
            # Find the shop, open it.
            page.get_by_role("link", name="Installations", exact=True).click()
            page.get_by_label("Id, shop name or domain").fill("bistro")
            page.get_by_label("Status").select_option("active")
            page.get_by_role("button", name="Search").click()
            page.get_by_role("link", name="inst_1").click()
            expect(page.get_by_role("heading", name="Installation inst_1")).to_be_visible()
            # Markup in the shop name is text: shown as typed, nothing injected.
            expect(page.locator("dd").first).to_have_text(SCRIPT + IMG)
            assert page.locator("main img").count() == 0
            assert page.title() == "Installation inst_1 · shopimind-sidecar"
            # Sync it; the run appears, then finishes (the page refreshes while it syncs).
            runs_before = page.locator("td.run-status").count()
            page.get_by_role("button", name="Sync now").click()
            notice = page.get_by_role("status")
            expect(notice).to_contain_text("sync started: run 2")
            run_link = page.locator('td a[href$="/admin/ui/runs/2"]')
            expect(run_link).to_be_visible()
            expect(page.locator("td.run-status").first).to_have_text(
                re.compile("ok|partial"), timeout=WAIT_MS
            )
            assert page.locator("td.run-status").count() == runs_before + 1
            if shot := os.environ.get("SIDECAR_CONSOLE_SCREENSHOT"):  # docs/admin-console.png
                page.reload()
                expect(page.locator("dd").nth(3)).to_have_text("no")  # syncing now: no
                page.screenshot(path=shot, full_page=False)
            run_link.click()
            expect(page.locator("pre.payload")).to_contain_text('"kind": "incremental"')
            # Replay the dead-letter of inst_1, once ShopiMind accepts the items again.
            page.get_by_role("link", name="Dead-letter", exact=True).click()
            page.get_by_label("Installation id").fill("inst_1")
            page.get_by_role("button", name="Filter").click()
            expect(page.get_by_text("4 item(s) match.")).to_be_visible()
            page.get_by_role("link", name="Replay all 4 matching").click()
            expect(page.get_by_role("alert")).to_contain_text(
                "Replay 4 dead-lettered item(s) of installation inst_1"
            )
            trio.from_thread.run_sync(served.shopimind.clear_rejections)
            page.get_by_role("button", name="Replay 4 item(s)").click()
            expect(page.get_by_role("status")).to_have_text(
                "replayed: 4 accepted, 0 rejected, 0 failed"
            )
            expect(page.get_by_text("0 item(s) match.")).to_be_visible()
            # Reset a cursor: the confirmation names what will be sent again.
            page.goto(served.console + "/installations/inst_1")
            page.get_by_role("link", name="Reset customers").click()
            expect(page.get_by_role("alert")).to_contain_text(
                "re-send it to ShopiMind's customers: 40 item(s) were sent so far"
            )
            page.get_by_role("button", name="Reset customers and re-send").click()
            expect(page.get_by_role("status")).to_have_text(
                "cursor customers reset: the next run sends it again"
            )
            # Sign out: back to the sign-in form, and the console is closed again.
            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(re.compile(r"/admin/ui/sign-in$"))
            page.goto(served.console + "/installations/inst_1")
            expect(page).to_have_url(re.compile(r"/admin/ui/sign-in"))

        await in_browser(scenario)
        assert [row[2] for row in served.audit("console.sign_in")] == ["ok"]
        assert [row[2] for row in served.audit("sync")] == ["ok"]
        assert [row[2] for row in served.audit("dead_letter.replay")] == ["ok"]
        assert [row[2] for row in served.audit("cursor.reset")] == ["ok"]
        assert [row[2] for row in served.audit("console.sign_out")] == ["ok"]
        assert served.query("SELECT COUNT(*) FROM rejected_items") == [(0,)]


_ATTACKER = """<!doctype html><title>win a prize</title>
<form method="post" action="{action}"><input type="hidden" name="csrf" value="guess">
<button type="submit">Claim</button></form>"""


async def test_refusals_in_the_browser_are_refused_and_audited(tmp_path: Path) -> None:
    async with served_sidecar(tmp_path) as served:
        from quart_trio import QuartTrio

        attacker = QuartTrio("attacker")

        @attacker.get("/")
        async def lure() -> str:
            return _ATTACKER.format(action=served.console + "/installations/inst_1/sync")

        async with running(attacker) as attacker_url:

            def scenario(browser: Browser) -> None:
                context = browser.new_context()
                page = context.new_page()
                expect = _expect()
                # A wrong token.
                page.goto(served.console + "/sign-in")
                page.get_by_label("Admin token").fill("not-the-token-" + "x" * 30)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
                sign_in(page, served)
                # A POST without its CSRF token (the form's field removed).
                page.goto(served.console + "/installations/inst_1")
                page.evaluate(
                    "document.querySelectorAll('form[action$=\"/sync\"] input[name=csrf]')"
                    ".forEach(e => e.remove())"
                )
                page.get_by_role("button", name="Sync now").click()
                expect(page.get_by_role("alert")).to_contain_text("CSRF token is missing")
                # A form on another site posting to the console, with the session's cookie.
                page.goto(attacker_url + "/")
                page.get_by_role("button", name="Claim").click()
                expect(page.get_by_role("alert")).to_contain_text("not sent by the console")
                # An expired session (the server no longer knows it).
                cookie = next(c for c in context.cookies() if c["name"] == "sidecar_console")
                context.add_cookies([{**cookie, "value": "expired-session-id"}])  # type: ignore[typeddict-item]
                page.goto(served.console + "/installations/inst_1")
                expect(page).to_have_url(re.compile(r"/sign-in\?expired=1$"))
                expect(page.get_by_role("status")).to_contain_text("session expired")
                context.close()
                # The read-only token: sees, but has no action and can do none.
                context = browser.new_context()
                page = context.new_page()
                sign_in(page, served, READONLY_TOKEN)
                page.goto(served.console + "/installations/inst_1")
                expect(page.get_by_text("read-only", exact=True)).to_be_visible()
                assert page.get_by_role("button", name="Sync now").count() == 0
                csrf = page.locator("form.sign-out input[name=csrf]").get_attribute("value")
                tried = context.request.post(
                    served.console + "/installations/inst_1/sync",
                    form={"csrf": str(csrf)},
                    headers={"sec-fetch-site": "same-origin"},
                    max_redirects=0,
                )
                assert tried.status == 403
                assert "read-only session can change nothing" in tried.text()
                context.close()

            await in_browser(scenario)
        assert [row[2] for row in served.audit("console.sign_in")] == ["unauthorized", "ok", "ok"]
        refused = [(actor, outcome) for actor, _target, outcome in served.audit("console.refused")]
        assert refused == [
            ("console", "csrf"),
            ("console", "cross_site"),
            ("console", "session_expired"),
            ("console:read-only", "read_only"),
        ]
        assert served.audit("sync") == []
        assert "not-the-token" not in str(served.query("SELECT * FROM audit_log"))


def _tab_through(page: Page) -> None:
    """Every visible control of the page gets the focus by pressing Tab."""
    controls = page.evaluate(
        """() => Array.from(document.querySelectorAll(
            'a[href], button, input:not([type=hidden]), select, textarea'))
          .filter(e => e.offsetParent !== null)
          .map((e, i) => { e.dataset.probe = String(i); return String(i); })"""
    )
    reached: set[str] = set()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for _ in range(len(controls) + 3):
        page.keyboard.press("Tab")
        probe = page.evaluate("document.activeElement && document.activeElement.dataset.probe")
        if probe is not None:
            reached.add(str(probe))
    missing = set(controls) - reached
    assert not missing, f"{page.url}: {len(missing)} control(s) not reachable by Tab"


def _unlabelled(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll(
            'button, input:not([type=hidden]), select, textarea, a[href]'))
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !(e.textContent || '').trim())
          .map(e => e.outerHTML.slice(0, 120))"""
    )
    return found


async def test_every_page_is_accessible_and_readable_on_a_phone(tmp_path: Path) -> None:
    async with served_sidecar(tmp_path) as served:
        event_id = served.query("SELECT MIN(event_id) FROM inbound_outbox")[0][0]
        item_id = served.query("SELECT MIN(id) FROM rejected_items")[0][0]
        pages = (
            "",
            "/installations",
            "/installations/inst_1",
            "/installations/inst_1/cursor-reset?entity=customers",
            "/runs",
            "/runs/1",
            "/outbox",
            f"/outbox/{event_id}",
            "/inbound",
            "/webhooks",
            "/webhooks/1",
            "/dead-letter?installation=inst_1",
            f"/dead-letter/{item_id}",
            "/dead-letter/confirm?installation=inst_1&action=purge",
            "/audit",
            "/replicas",
        )

        def scenario(browser: Browser) -> None:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served.console + "/sign-in")
            assert axe_violations(page) == []
            _tab_through(page)
            sign_in(page, served)
            for path in pages:
                page.goto(served.console + path)
                assert page.locator("h1").count() == 1, path
                assert axe_violations(page) == [], path
                assert _unlabelled(page) == [], path
                _tab_through(page)
                assert page.title() != "pwned"
                assert page.locator("main img").count() == 0, path
            page.set_viewport_size({"width": 390, "height": 844})
            for path in ("", "/installations/inst_1", "/dead-letter?installation=inst_1"):
                page.goto(served.console + path)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (path, overflow)

        await in_browser(scenario)
        # Revealing is audited; merely looking at the pages audited nothing but the sign-in.
        assert [row[1] for row in served.query("SELECT actor, action FROM audit_log")] == [
            "console.sign_in"
        ]
