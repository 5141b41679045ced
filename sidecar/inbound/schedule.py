"""Which installation's outbox lane runs next, and when: the deliverer's memory.

Kept apart from the store so that a queued event costs the deliverer O(1) whatever the
number of installations: the app's call hints its installation, and the scheduler
starts a lane for it only when none runs and its oldest event is not waiting for a retry
(a later event never overtakes the one ahead of it). Retry times sit in a heap. A full
look at the store (`OutboxDeliverer._scan`) happens at start and every POLL_SECONDS only.

Times are trio's clock. Everything here is lost on restart on purpose: the store holds
what matters (`next_attempt_at`), and a new deliverer rebuilds this from it.
"""

from __future__ import annotations

import heapq

__all__ = ["Schedule"]


class Schedule:
    """Installations: running a lane (busy), waiting until a time, or hinted to look at."""

    def __init__(self) -> None:
        self._waiting: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._busy: set[str] = set()
        self._hinted: set[str] = set()
        self._missed: set[str] = set()

    def hint(self, installation_id: str) -> bool:
        """The installation queued an event; True when the scheduler must look now. Not
        when its lane runs (it looks again when it ends) or its oldest event waits for a
        retry (the new one queues behind it)."""
        if installation_id in self._busy:
            self._missed.add(installation_id)
            return False
        if installation_id in self._waiting:
            return False
        self._hinted.add(installation_id)
        return True

    def wait(self, installation_id: str, due: float) -> None:
        """Its oldest event is due at `due`: no lane before then."""
        if installation_id in self._busy:
            return
        self._waiting[installation_id] = due
        heapq.heappush(self._heap, (due, installation_id))

    def ready(self, now: float) -> list[str]:
        """Installations to start a lane for: due ones, and hinted ones not waiting."""
        found: dict[str, None] = {}
        while self._heap and self._heap[0][0] <= now:
            due, installation_id = heapq.heappop(self._heap)
            if self._waiting.get(installation_id) == due:
                del self._waiting[installation_id]
                found[installation_id] = None
        for installation_id in self._hinted:
            if installation_id not in self._waiting:
                found[installation_id] = None
        self._hinted.clear()
        return [i for i in found if i not in self._busy]

    def next_due(self) -> float | None:
        """When the earliest waiting installation is due (None when none waits)."""
        while self._heap and self._waiting.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded by a later `wait` or a start
        return self._heap[0][0] if self._heap else None

    def start(self, installation_id: str) -> None:
        """Its lane starts."""
        self._busy.add(installation_id)
        self._waiting.pop(installation_id, None)
        self._hinted.discard(installation_id)

    def finish(self, installation_id: str, due: float | None) -> None:
        """Its lane ended: it waits until `due`, or (None) has nothing due. An event queued
        while the lane ran is looked at now."""
        self._busy.discard(installation_id)
        if due is not None:
            self.wait(installation_id, due)
        if installation_id in self._missed:
            self._missed.discard(installation_id)
            self.hint(installation_id)

    def is_busy(self, installation_id: str) -> bool:
        """Whether a lane runs for it."""
        return installation_id in self._busy

    @property
    def lanes_running(self) -> int:
        """How many lanes run."""
        return len(self._busy)
