"""Fixtures of the inbound tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import LogWatch


@pytest.fixture
def outbox_log() -> Iterator[LogWatch]:
    """The outbox deliverer's log lines, to wait for deliveries without polling."""
    with LogWatch("sidecar.outbox") as watch:
        yield watch
