"""A recorder in front of the fake ShopiMind: who wrote what, for which installation, when.

Several sidecar replicas share one fake API in the multi-process tests and benchmarks. The
fake itself (`FakeShopimind`) speaks the wire contract; this ASGI wrapper adds what those
tests assert on, for every write (any request but a GET):

- the installation, from the `spm-api-key` header (each installation is given its own
  access token, as ShopiMind does: `register(token, installation_id)`);
- the replica, from the `User-Agent` (`shopimind-sidecar/<version> (replica/<id>)`),
  `"unknown"` when it names none;
- when the request arrived and when its answer was ready to leave (trio time), the
  answer's status, the ids of a bulk push's items and the body of an event trigger;
- optionally a latency before each request is read (a distant API), for every call.

`state(installation_id)` is what ShopiMind holds in the end (bulk pushes are upserts by
item id), `pushes()` the history; `changed` lets a test wait for a condition without
polling.

Usage::

    api = RecordingShopimind(FakeShopimind(tokens=(), keep_items=0), latency_seconds=0.05)
    api.register("int_token_a", "inst_a")
    async with running(api) as base_url:
        ...
        await api.wait_until(lambda: len(api.state("inst_a")) == 5_000)
    assert not overlapping(api.pushes(kind="bulk"))
"""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import trio

from sidecar.testing.shopimind_api import (
    FakeShopimind,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
    replaying,
)

__all__ = [
    "UNKNOWN_REPLICA",
    "Overlap",
    "Push",
    "RecordingShopimind",
    "overlapping",
    "replica_of",
]

UNKNOWN_REPLICA: Final = "unknown"
_REPLICA: Final = re.compile(r"replica/([^\s;)]+)")
_TRIGGER: Final = "events/trigger/"

PushKind = Literal["bulk", "event", "other"]


def replica_of(user_agent: str | None) -> str:
    """The replica a `User-Agent` names (`... (replica/<id>)`), or `"unknown"`."""
    found = _REPLICA.search(user_agent or "")
    return found.group(1) if found else UNKNOWN_REPLICA


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    """One write as the fake API saw it."""

    installation: str
    replica: str
    method: str
    path: str
    """Without the `/v1/` prefix, e.g. `customers` or `events/trigger/sale`."""
    kind: PushKind
    arrived: float
    """Trio time when the request arrived (its headers; before any latency)."""
    answered: float
    """Trio time once the answer was sent (or the connection was gone)."""
    status: int
    ids: tuple[str, ...] = ()
    """A bulk push: the `id` of each item sent."""
    body: Any = None
    """An event trigger: the parsed body."""


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two replicas writing for one installation at the same time."""

    installation: str
    first: Push
    second: Push


def _kind(method: str, path: str, body: Any) -> PushKind:
    if method == "POST" and path.startswith(_TRIGGER):
        return "event"
    if method in ("POST", "PUT") and isinstance(body, list):
        return "bulk"
    return "other"


def _ids(body: Any) -> tuple[str, ...]:
    if not isinstance(body, list):
        return ()
    return tuple(str(item.get("id")) for item in body if isinstance(item, dict))


@dataclass(slots=True)
class _Answer:
    status: int = 0
    done: float | None = None


class RecordingShopimind:
    """An ASGI app: records every write, then lets `fake` answer it."""

    def __init__(self, fake: FakeShopimind, *, latency_seconds: float = 0.0) -> None:
        self.fake = fake
        self.latency_seconds = latency_seconds
        self._installations: dict[str, str] = {}
        self._pushes: list[Push] = []
        self._state: defaultdict[str, set[str]] = defaultdict(set)
        self._changed = trio.Event()

    def register(self, token: str, installation_id: str) -> None:
        """Accept `token` and attribute the writes it signs to `installation_id`."""
        self.fake.tokens.add(token)
        self._installations[token] = installation_id

    def pushes(
        self, *, kind: PushKind | None = None, installation: str | None = None
    ) -> list[Push]:
        """The writes recorded so far, in the order they arrived."""
        return [
            push
            for push in self._pushes
            if (kind is None or push.kind == kind)
            and (installation is None or push.installation == installation)
        ]

    def state(self, installation_id: str) -> set[str]:
        """The ids of the items ShopiMind holds for the installation (accepted bulk pushes)."""
        return set(self._state.get(installation_id, ()))

    def events(self, installation_id: str) -> list[Any]:
        """The bodies of the installation's accepted event triggers, in arrival order."""
        return [
            push.body
            for push in self._pushes
            if push.kind == "event" and push.installation == installation_id
            if 200 <= push.status < 300
        ]

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once `condition()` holds; it is tested after each recorded write."""
        while not condition():
            await self._changed.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = trio.current_time()
        if scope["type"] == "http" and self.latency_seconds:
            await trio.sleep(self.latency_seconds)
        if scope["type"] != "http" or str(scope["method"]).upper() == "GET":
            await self.fake(scope, receive, send)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        answer = _Answer()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = int(message["status"])
            if message["type"] == "http.response.body" and not message.get("more_body"):
                # Stamped before the last bytes leave: the replica cannot have its answer
                # (and hand the installation over) before this instant. Stamped after the
                # send, a quick handover could look like an overlap it was not.
                answer.done = trio.current_time()
            await send(message)

        try:
            await self.fake(scope, replaying(raw, receive), sending)
        finally:
            self._record(scope, headers, raw, arrived, answer)

    def _record(
        self, scope: Scope, headers: dict[str, str], raw: bytes, arrived: float, answer: _Answer
    ) -> None:
        full = str(scope["path"])
        path = full[len("/v1/") :] if full.startswith("/v1/") else full.lstrip("/")
        method = str(scope["method"]).upper()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        kind = _kind(method, path, body)
        push = Push(
            installation=self._installations.get(headers.get("spm-api-key", ""), "?"),
            replica=replica_of(headers.get("user-agent")),
            method=method,
            path=path,
            kind=kind,
            arrived=arrived,
            answered=answer.done if answer.done is not None else trio.current_time(),
            status=answer.status,
            ids=_ids(body) if kind == "bulk" else (),
            body=body if kind == "event" else None,
        )
        self._pushes.append(push)
        if kind == "bulk" and 200 <= push.status < 300:
            self._state[push.installation].update(push.ids)
        self._changed.set()
        self._changed = trio.Event()


@dataclass(slots=True)
class _Segment:
    replica: str
    pushes: list[Push] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.pushes[0].arrived

    @property
    def end(self) -> float:
        return max(push.answered for push in self.pushes)


def overlapping(pushes: Iterable[Push]) -> list[Overlap]:
    """Where two replicas wrote for one installation at the same time.

    Per installation, the writes in arrival order form segments (consecutive writes by one
    replica); a segment must have had every answer before the next segment's first write
    arrived. Give it one kind of writes (one lease): bulk pushes (the installation's sync)
    or event triggers (its outbox).
    """
    by_installation: defaultdict[str, list[Push]] = defaultdict(list)
    for push in pushes:
        by_installation[push.installation].append(push)
    found: list[Overlap] = []
    for installation, writes in by_installation.items():
        segments: list[_Segment] = []
        for push in sorted(writes, key=lambda p: p.arrived):
            if not segments or segments[-1].replica != push.replica:
                segments.append(_Segment(push.replica))
            segments[-1].pushes.append(push)
        for before, after in itertools.pairwise(segments):
            if before.end > after.start:
                late = max(before.pushes, key=lambda p: p.answered)
                found.append(Overlap(installation, late, after.pushes[0]))
    return found
