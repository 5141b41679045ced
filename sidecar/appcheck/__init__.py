"""`app-check`: the vendor's app against the bridge contract, call by call.

    run_app_check(target, declaration)   every check → a `Report`
    render_text(report, out) / dumps()   the report for a person / as JSON

The checks are clients of the bridge (`sidecar.bridge`) and the declaration: what a call
looks like and what an item must carry are defined there, once.
"""

from sidecar.appcheck.report import Check, Report, ShownRequest, dumps, render_text
from sidecar.appcheck.run import (
    APP_CHECK_INSTALLATION,
    AppCheckTarget,
    SyncLimits,
    default_settings,
    run_app_check,
)

__all__ = [
    "APP_CHECK_INSTALLATION",
    "AppCheckTarget",
    "Check",
    "Report",
    "ShownRequest",
    "SyncLimits",
    "default_settings",
    "dumps",
    "render_text",
    "run_app_check",
]
