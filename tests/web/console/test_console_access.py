"""The console's doors, over HTTP against a whole sidecar (virtual clock): sign-in and
sign-out, the session's sliding expiry, CSRF, cross-site posts, the read-only token, the
security headers, and what every refusal leaves in the audit log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import trio
import trio.testing

from sidecar.web.console.access import CONTENT_SECURITY_POLICY, COOKIE_NAME
from tests.web.console.client import READONLY_TOKEN, TOKEN, Console, console_stack


def _outcomes(console: Console, action: str) -> list[object]:
    return [
        json.loads(str(detail))["outcome"]
        for _actor, logged, _target, detail in console.audit()
        if logged == action
    ]


async def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_it(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        assert (await console.get()).headers["location"] == "/admin/ui/sign-in"
        form = await console.get("/sign-in")
        assert form.status_code == 200
        assert 'type="password"' in form.text
        signed = await console.post("/sign-in", {"token": TOKEN}, csrf=False)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/admin/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP, ADMIN_COOKIE_SECURE not set
        overview = await console.get()
        assert overview.status_code == 200
        assert "Overview" in overview.text
        assert TOKEN not in overview.text
        assert console.csrf
        out = await console.post("/sign-out")
        assert out.status_code == 303
        assert out.headers["location"] == "/admin/ui/sign-in"
        assert (await console.get()).headers["location"].startswith("/admin/ui/sign-in")
        assert _outcomes(console, "console.sign_in") == ["ok"]
        assert _outcomes(console, "console.sign_out") == ["ok"]
        assert console.audit()[0][:3] == ("console", "console.sign_in", "full")


async def test_cookie_is_secure_when_told_so(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path, ADMIN_COOKIE_SECURE="true") as console:
        signed = await console.post("/sign-in", {"token": TOKEN}, csrf=False)
        assert "Secure" in signed.headers["set-cookie"]


async def test_a_wrong_token_is_refused_and_audited_without_the_token(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        wrong = "adm_wrong_" + "0" * 30
        refused = await console.post("/sign-in", {"token": wrong}, csrf=False)
        assert refused.status_code == 401
        assert "not valid" in refused.text
        assert "set-cookie" not in refused.headers
        assert _outcomes(console, "console.sign_in") == ["unauthorized"]
        assert wrong not in json.dumps(console.audit())


async def test_sign_in_attempts_share_the_admin_api_limit(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await trio.sleep(60)  # a full bucket
        mock_clock.autojump_threshold = math.inf  # time stands still: nothing refills
        url = console.url + "/sign-in"
        statuses = [
            (await console.http.post(url, data={"token": "x"}, headers={})).status_code
            for _ in range(11)
        ]
        assert statuses[:10] == [401] * 10
        assert statuses[10] == 429
        # The API's bucket is the same one: it is empty too.
        api = await console.http.get(console.url.removesuffix("/ui") + "/overview")
        assert api.status_code == 429


async def test_the_session_expires_after_the_idle_time_and_slides_with_use(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path, ADMIN_SESSION_MINUTES="10") as console:
        await console.sign_in()
        for _ in range(3):  # used every 8 minutes: 24 minutes, still signed in
            await trio.sleep(8 * 60)
            assert (await console.get()).status_code == 200
        await trio.sleep(10 * 60 + 1)
        expired = await console.get("/installations")
        assert expired.status_code == 303
        assert expired.headers["location"] == "/admin/ui/sign-in?expired=1"
        assert "expired" in (await console.get("/sign-in", expired="1")).text
        assert _outcomes(console, "console.refused") == ["session_expired"]


async def test_posts_without_csrf_or_from_another_site_are_refused_and_audited(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await console.stack.activate()
        await console.stack.finished_runs(1)
        await console.sign_in()
        no_token = await console.post("/installations/inst_1/sync", csrf=False)
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        cross = await console.post(
            "/installations/inst_1/sync", headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403
        other_origin = await console.post(
            "/installations/inst_1/sync", headers={"origin": "http://evil.example"}
        )
        assert other_origin.status_code == 403
        login_csrf = await console.post(
            "/sign-in", {"token": TOKEN}, csrf=False, headers={"sec-fetch-site": "same-site"}
        )
        assert login_csrf.status_code == 403
        assert _outcomes(console, "console.refused") == [
            "csrf",
            "cross_site",
            "cross_site",
            "cross_site",
        ]
        assert [row for row in console.audit() if row[1] == "sync"] == []
        # With its token, from its own page, the same form goes through to the service
        # (which may find the installation still busy with its backfill's lease).
        done = await console.post("/installations/inst_1/sync")
        assert done.status_code in (303, 409), done.text
        assert _outcomes(console, "sync") == ["ok" if done.status_code == 303 else "busy"]


async def test_the_read_only_token_sees_but_can_act_on_nothing(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await console.stack.activate()
        await console.stack.finished_runs(1)
        assert (await console.sign_in(READONLY_TOKEN)).status_code == 303
        page = await console.get("/installations/inst_1")
        assert page.status_code == 200
        assert "read-only" in page.text
        assert "Sync now" not in page.text
        assert "Reset customers" not in page.text
        for path in ("/installations/inst_1/sync", "/reveal/webhook/1", "/dead-letter/purge"):
            refused = await console.post(path, {"installation": "inst_1"})
            assert refused.status_code == 403, path
        assert _outcomes(console, "console.refused") == ["read_only"] * 3
        assert {row[0] for row in console.audit() if row[1] == "console.refused"} == {
            "console:read-only"
        }
        assert (await console.post("/sign-out")).status_code == 303


async def test_every_page_carries_the_security_headers(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        for response in (await console.get("/sign-in"), await console.get("/static/console.js")):
            assert response.status_code == 200
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self';" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert "<script>" not in (await console.get("/sign-in")).text  # no inline script
        # The admin API still wants its token header: the console's cookie opens nothing there.
        await console.sign_in()
        api = await console.http.get(console.url.removesuffix("/ui") + "/overview")
        assert api.status_code == 401


async def test_without_an_admin_port_the_console_is_on_the_public_listener(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path, ADMIN_PORT="") as console:
        assert console.url == console.stack.url + "/admin/ui"
        assert (await console.sign_in()).status_code == 303
        assert "Overview" in (await console.get()).text


async def test_without_admin_tokens_nobody_signs_in(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path, ADMIN_TOKEN="", ADMIN_READONLY_TOKEN="") as console:
        assert (await console.sign_in("")).status_code == 401
        assert (await console.sign_in(TOKEN)).status_code == 401


async def test_signing_in_again_ends_the_previous_session(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await console.sign_in()
        old = console.http.cookies[COOKIE_NAME]
        await console.sign_in()
        assert console.http.cookies[COOKIE_NAME] != old
        console.http.cookies.clear()
        console.http.cookies.set(COOKIE_NAME, old)
        assert (await console.get()).headers["location"] == "/admin/ui/sign-in?expired=1"
