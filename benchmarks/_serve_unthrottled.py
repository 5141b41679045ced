"""`python -m sidecar serve` for bench_inbound, with the per-IP inbound bucket lifted.

The bucket (`sidecar.web.contexts.INBOUND_IP_RATE_PER_SECOND`, 1,000 calls/s from one
address, before any HMAC) is a rule, not a cost: the load generator is one address, and
past that rate it would measure 429s and the reconnections after them instead of the
work of a call. Everything else (the per-installation buckets included) is as served.
"""

from __future__ import annotations

import gc

gc.disable()  # as `python -m sidecar` starts (sidecar/__main__.py)

import sidecar.web.contexts  # noqa: E402
from sidecar.cli import main  # noqa: E402

sidecar.web.contexts.INBOUND_IP_RATE_BURST = 10**9
sidecar.web.contexts.INBOUND_IP_RATE_PER_SECOND = 1e9

raise SystemExit(main(["serve"]))
