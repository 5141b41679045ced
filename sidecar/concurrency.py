"""Small structured-concurrency rules used across the sidecar, each written once.

- trio's nurseries raise exception *groups*: a cancellation that crossed a nursery arrives
  as a group of `trio.Cancelled`, not as one. `is_cancellation` recognises both.
- A write that records progress (a cursor, a resume point, the close of a run, an outbox
  transition) must not be abandoned half-way by a cancellation: `commit` runs it shielded,
  with a deadline inside the shield so a stuck store cannot hold a shutdown forever.
  (The store's own operations, once started, always finish: see `store.sqlite.database`.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import trio

from sidecar.logs import BoundLogger

__all__ = ["COMMIT_TIMEOUT_SECONDS", "commit", "describe_error", "is_cancellation", "leaves"]

T = TypeVar("T")

COMMIT_TIMEOUT_SECONDS: Final = 30.0


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or the exception itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def is_cancellation(error: BaseException) -> bool:
    """True for `trio.Cancelled`, or a group made only of them."""
    return all(isinstance(leaf, trio.Cancelled) for leaf in leaves(error))


def describe_error(error: BaseException) -> str:
    """`Type: message` for each leaf of `error`, joined: one line for a summary or a log."""
    return "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves(error))


async def commit(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    log: BoundLogger,
    timeout_seconds: float = COMMIT_TIMEOUT_SECONDS,
) -> T | None:
    """Run `operation` (one store transaction) so a cancellation cannot abandon it half-way.

    Returns its result, or None when it could not even start within the deadline (then it
    did not happen: callers are written so that "not recorded" is always safe).
    """
    with trio.CancelScope(shield=True), trio.move_on_after(timeout_seconds):
        return await operation()
    log.error("could not record progress in time; it will be redone", what=what)
    return None
