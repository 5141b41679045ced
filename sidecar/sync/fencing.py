"""Recognising a lost lease in what a task raised, wherever trio wrapped it.

A fenced write raises `LeaseLostError` deep inside a run, often inside a nursery, which
wraps it in an exception group. Whoever ends the work for it (the engine, a worker, an
outbox lane) wants the error itself, to log its lease and epoch and carry on.
"""

from __future__ import annotations

import trio

from sidecar.concurrency import leaves
from sidecar.errors import LeaseLostError

__all__ = ["lost_lease"]


def lost_lease(error: BaseException) -> LeaseLostError | None:
    """The `LeaseLostError` that `error` is, or that a group of them (and of the
    cancellations they caused) holds; None when anything else is in it."""
    found: LeaseLostError | None = None
    for leaf in leaves(error):
        if isinstance(leaf, LeaseLostError):
            found = found or leaf
        elif not isinstance(leaf, trio.Cancelled):
            return None
    return found
