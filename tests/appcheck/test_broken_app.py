"""app-check against a deliberately broken app: it fails, and names every planted mistake."""

from __future__ import annotations

import io

from sidecar.appcheck import AppCheckTarget, Report, render_text, run_app_check
from sidecar.declaration import load_declaration
from sidecar.testing.server import running
from tests.appcheck.broken_app import PREFIX, broken_app
from tests.conftest import APP_SECRET
from tests.harness import EXAMPLE

ENTITIES = ("customers", "orders", "loyalty_cards", "products")


async def _check_broken_app() -> Report:
    async with running(broken_app()) as url:
        target = AppCheckTarget(base_url=url + PREFIX, secret=APP_SECRET)
        return await run_app_check(target, load_declaration(EXAMPLE))


def _problems(report: Report, name: str) -> list[str]:
    (check,) = [c for c in report.checks if c.name == name]
    assert check.status == "failed", check
    return list(check.problems)


async def test_every_planted_problem_is_named() -> None:
    report = await _check_broken_app()
    assert not report.ok
    for case in ("an unsigned call", "a call signed with another secret"):
        (problem,) = _problems(report, f"signature: {case} is refused with 401")
        assert problem.startswith("the app answered 200: it does not check x-sidecar-signature")
    (endless,) = _problems(report, "/sync/products: the pagination ends")
    assert "pages 1 and 2 have no items but still a `next` token" in endless
    assert _problems(report, "/sync/orders [s1]: items carry what `orders` requires") == [
        "item 2 (page 1): `amount` is a string, the resource wants a number"
    ]
    assert _problems(report, "/sync/customers: ids are unique in the window") == [
        "item 5 (page 1) repeats customer_id 'c-3' of item 4 (page 1)"
    ]
    (outside, *_) = _problems(report, "/sync/orders [s1]: items respect since/until")
    assert outside.startswith(
        "item 3 (page 1): `updated_at` 2001-01-01T00:00:00.000Z is outside the window asked"
    )
    failed = {check.name for check in report.checks if check.status == "failed"}
    # Nothing but the planted mistakes (and what they imply) fails.
    assert failed == {
        "signature: an unsigned call is refused with 401",
        "signature: a call signed with another secret is refused with 401",
        "signature: a call with a 10-minute-old timestamp is refused with 401",
        "signature: a call with a timestamp 10 minutes ahead is refused with 401",
        "/sync/products: the pagination ends",
        "/sync/orders [s1]: items carry what `orders` requires",
        "/sync/customers: ids are unique in the window",
        "/sync/orders [s1]: items respect since/until",
        *(f"/sync/{entity}: an unsigned call is refused with 401" for entity in ENTITIES),
    }


async def test_the_text_report_shows_the_request_that_showed_a_problem() -> None:
    report = await _check_broken_app()
    out = io.StringIO()
    render_text(report, out)
    text = out.getvalue()
    assert "  FAIL  /sync/products: the pagination ends\n" in text
    assert "request: POST http://127.0.0.1:" in text
    assert "/shopimind/sync/products  (signed with APP_SECRET)\n" in text
    assert '"cursor": "1"' in text  # the second page's request: where it showed
    assert "/test-connection  (unsigned)" in text
    assert '"api_key": "[redacted]"' in text  # the form's sensitive field never shown
    assert text.rstrip().endswith("the app breaks the contract")
