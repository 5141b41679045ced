"""A fake vendor app: every app-bridge route, programmable, with faults on demand.

It is what a vendor would write behind `APP_BASE_URL`, served for real over loopback
(`sidecar.testing.server.running`), so the sidecar's bridge is tested through HTTP, signatures
and all. Every request is checked with the sidecar's own `verify`; a failure answers an
opaque 401 and is recorded in `signature_failures`, so a test can assert that every call
it made was signed correctly.

Usage::

    app = FakeVendorApp(APP_SECRET)                         # routes under /shopimind
    app.connection = FakeVendorApp.ok_when("api_key", "good")
    app.remote_data["stores"] = [{"value": "1", "label": "Paris"}]
    app.lifecycle_answer = {"ok": True, "external_account": {"id": "acc-9", "name": "Acme"}}
    app.provisioning_answer = lambda body: {"data_sources": []}   # a value, or f(body)
    app.sources["orders"] = ["store-1", "store-2"]
    app.set_dataset("orders", Dataset(count=200_000), source_key="store-1")
    app.inject(HttpStatus(status=503), path="/sync/orders")  # the next /sync/orders: 503
    app.inject(HttpStatus(status=429, retry_after="7"))     # the next call, any path
    app.inject(Slow(seconds=45), times=2)                   # the next two calls: slow
    async with running(app) as url:
        bridge = AppBridge(base_url=url + app.prefix, secret=APP_SECRET, http=client)
        ...
    assert app.signature_failures == []
    assert app.lifecycle_calls[0].inbound_secret == "insec_..."
    assert [call.path for call in app.calls] == [...]       # the last 1,000 requests

Sync datasets are generated page by page from an index (`Dataset.item(i)`, with an
`updated_at` growing with `i`), so 200,000 items cost nothing until they are asked for.
The app filters by window, `since < updated_at <= until`, and pages with `limit` and an
opaque `next` token, like a real app paging over an indexed `updated_at` column.

Faults (`inject`) are consumed in order by the next calls whose path starts with `path`:
`HttpStatus` (e.g. 503, or 429 with `retry_after`), `RawBody` (not JSON, or anything),
`JsonBody` (a well-formed answer of the wrong shape), `Slow` (sleeps, then answers as
usual; a `trio.sleep`, so MockClock skips it), `Reset` (the connection is closed in the
middle of the answer). `down = True` resets every call until set back to False;
`healthy = False` makes `GET {prefix}/health` (for APP_HEALTH_PATH) answer 503;
`endless = True` makes every sync page carry a `next` token, forever.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from quart import Response, request
from quart_trio import QuartTrio

from sidecar.clock import format_timestamp, parse_timestamp
from sidecar.security.signature import verify

__all__ = [
    "DEFAULT_PREFIX",
    "HEALTH_PATH",
    "Answer",
    "Call",
    "Dataset",
    "FakeVendorApp",
    "Fault",
    "HttpStatus",
    "JsonBody",
    "LifecycleCall",
    "RawBody",
    "Reset",
    "Slow",
    "numbered_item",
]

DEFAULT_PREFIX: Final = "/shopimind"
HEALTH_PATH: Final = "/health"
"""The health route the fake app answers (GET), for APP_HEALTH_PATH."""
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
_RESET_MARKER: Final = b"x-fake-vendor-reset"
_TIMESTAMP_HEADER: Final = "x-sidecar-timestamp"
_SIGNATURE_HEADER: Final = "x-sidecar-signature"

Answer: TypeAlias = object
"""A route's answer: a JSON value, or a function of the parsed request body returning one."""


# --- datasets -------------------------------------------------------------------------


def numbered_item(index: int) -> dict[str, object]:
    """The default item: just an id (the dataset adds `updated_at`)."""
    return {"id": f"item-{index}"}


def _to_millis(moment: datetime) -> datetime:
    # Items carry millisecond timestamps: filter on exactly what the sidecar will see.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """`count` items, item `i` built by `item(i)` and updated at `start + i * step`."""

    count: int
    start: datetime = DEFAULT_START
    step: timedelta = timedelta(seconds=1)
    item: Callable[[int], dict[str, object]] = field(default=numbered_item, compare=False)

    def __post_init__(self) -> None:
        if self.count < 0 or self.step < timedelta(0):
            raise ValueError("a dataset needs count >= 0 and step >= 0 (updated_at never falls)")

    @classmethod
    def spread(
        cls,
        count: int,
        *,
        since: datetime,
        until: datetime,
        item: Callable[[int], dict[str, object]] = numbered_item,
    ) -> Dataset:
        """`count` items evenly inside `(since, until]`, the last one exactly at `until`."""
        step = (until - since) / max(count, 1)
        if step < timedelta(milliseconds=1):
            raise ValueError("items must be at least 1 ms apart")
        return cls(count=count, start=since + step, step=step, item=item)

    def updated_at(self, index: int) -> datetime:
        """When item `index` was last updated (milliseconds, never decreasing with index)."""
        return _to_millis(self.start + self.step * index)

    def bounds(self, since: datetime, until: datetime) -> tuple[int, int]:
        """The index range `[lo, hi)` of the items updated in `(since, until]`."""
        indices = range(self.count)
        lo = bisect.bisect_right(indices, since, key=self.updated_at)
        hi = bisect.bisect_right(indices, until, key=self.updated_at)
        return lo, max(lo, hi)

    def at(self, index: int) -> dict[str, object]:
        """Item `index` as the app answers it."""
        return {**self.item(index), "updated_at": format_timestamp(self.updated_at(index))}


def _token(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode("ascii")


def _offset(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        return None
    return int(number)


# --- faults ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpStatus:
    """Answer `status` (with `Retry-After` when given) and a small JSON error body."""

    status: int
    retry_after: str | None = None
    body: object = field(default_factory=lambda: {"error": "injected_fault"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RawBody:
    """Answer these exact bytes (e.g. an HTML error page with a 200)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonBody:
    """Answer this JSON value, whatever the route would have said."""

    value: object
    status: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Slow:
    """Sleep `seconds` (trio time), then answer as usual."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Close the connection after the status line and headers, before the body."""


Fault: TypeAlias = HttpStatus | RawBody | JsonBody | Slow | Reset


@dataclass(slots=True)
class _Pending:
    fault: Fault
    path: str
    remaining: int


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """One request as the app received it."""

    path: str
    """Relative to the prefix and unquoted, e.g. `/sync/orders`."""
    raw_path: bytes
    """The full path as sent, still quoted."""
    content_type: str | None
    body: object
    """The parsed JSON body, or None when it was not JSON."""
    raw_body: bytes
    timestamp: str | None
    signature: str | None
    signature_ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleCall:
    """One lifecycle notification the app received (with a valid signature)."""

    event: str
    """From the path."""
    body_event: object
    installation_id: object
    settings: object
    shop_domain: object
    shop_name: object
    inbound_secret: object
    provisioning_ids: object = None


def _json(value: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(value, separators=(",", ":")),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def _answer(answer: Answer, body: dict[str, object]) -> object:
    return answer(body) if callable(answer) else answer


# --- the app --------------------------------------------------------------------------


class FakeVendorApp:
    """An ASGI app (quart-trio inside) answering every app-bridge route under `prefix`."""

    def __init__(
        self,
        secret: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        now: Callable[[], float] = time.time,
        max_calls_kept: int = 1000,
    ) -> None:
        self.secret = secret
        self.prefix = prefix.rstrip("/")
        self.now = now
        self.connection: Answer = {"ok": True}
        self.remote_data: dict[str, list[dict[str, object]]] = {}
        self.lifecycle_answer: Answer = {"ok": True}
        self.provisioning_answer: Answer = {}
        self.sources: dict[str, list[str]] = {}
        self.datasets: dict[tuple[str, str], Dataset] = {}
        self.down = False
        self.endless = False
        self.calls: deque[Call] = deque(maxlen=max_calls_kept)
        self.lifecycle_calls: list[LifecycleCall] = []
        self.signature_failures: list[str] = []
        self._faults: list[_Pending] = []
        self._quart = QuartTrio("fake_vendor_app")
        self._quart.add_url_rule(
            f"{self.prefix}/<path:call>", "call", self._handle, methods=["POST"]
        )
        self.healthy = True
        self.health_probes = 0
        self._quart.add_url_rule(
            f"{self.prefix}{HEALTH_PATH}", "health", self._health, methods=["GET"]
        )

    # --- programming ------------------------------------------------------------------

    @staticmethod
    def ok_when(key: str, value: object, *, error: str = "invalid credentials") -> Answer:
        """A test-connection answer: ok when `settings[key] == value`, else `error`."""

        def check(body: dict[str, object]) -> object:
            settings = body.get("settings")
            if isinstance(settings, dict) and settings.get(key) == value:
                return {"ok": True}
            return {"ok": False, "error": error}

        return check

    def set_dataset(self, entity: str, dataset: Dataset, *, source_key: str = "") -> None:
        """Serve `dataset` for `entity` (and `source_key`, for per-source steps)."""
        self.datasets[(entity, source_key)] = dataset

    def inject(self, fault: Fault, *, times: int = 1, path: str = "") -> None:
        """Apply `fault` to the next `times` calls whose path starts with `path`."""
        self._faults.append(_Pending(fault=fault, path=path, remaining=times))

    @property
    def pending_faults(self) -> int:
        """How many injected faults have not been used yet."""
        return sum(pending.remaining for pending in self._faults)

    def calls_to(self, path: str) -> list[Call]:
        """The recorded calls whose path starts with `path`."""
        return [call for call in self.calls if call.path.startswith(path)]

    # --- ASGI -------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._quart(scope, receive, send)
            return
        resetting = False

        async def send_or_reset(message: ASGISendEvent) -> None:
            nonlocal resetting
            if message["type"] == "http.response.start":
                if any(name == _RESET_MARKER for name, _ in message.get("headers", ())):
                    # Promise a body, send none, and return: hypercorn then closes the
                    # connection mid-answer, which the client sees as a broken connection.
                    resetting = True
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", b"1024"),
                            ],
                            "trailers": False,
                        }
                    )
                    return
            elif resetting:
                return
            await send(message)

        await self._quart(scope, receive, send_or_reset)

    # --- the pipeline -----------------------------------------------------------------

    async def _health(self) -> Response:
        """`GET {prefix}/health` (APP_HEALTH_PATH=/health): 200 while `healthy`, else 503."""
        self.health_probes += 1
        if self.down:
            return _reset()
        if not self.healthy:
            return _json({"ok": False}, 503)
        return _json({"ok": True})

    async def _handle(self, call: str) -> Response:
        path = f"/{call}"
        raw = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        timestamp = request.headers.get(_TIMESTAMP_HEADER)
        signature = request.headers.get(_SIGNATURE_HEADER)
        verdict = verify(
            secrets=[self.secret],
            timestamp=timestamp,
            signature=signature,
            body=raw,
            now=self.now(),
        )
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = None
        self.calls.append(
            Call(
                path=path,
                raw_path=bytes(request.scope.get("raw_path", b"")),
                content_type=request.headers.get("content-type"),
                body=body,
                raw_body=raw,
                timestamp=timestamp,
                signature=signature,
                signature_ok=verdict.ok,
            )
        )
        if not verdict.ok:
            self.signature_failures.append(f"{path}: {verdict.reason}")
        if self.down:
            return _reset()
        fault = self._take_fault(path)
        if isinstance(fault, Slow):
            await trio.sleep(fault.seconds)
        elif fault is not None:
            return _fault_response(fault)
        if not verdict.ok:
            return _json({"success": False, "error": "unauthorized"}, 401)
        if not isinstance(body, dict):
            return _json({"error": "invalid_json"}, 400)
        return self._route(path, body)

    def _take_fault(self, path: str) -> Fault | None:
        for pending in self._faults:
            if path.startswith(pending.path):
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._faults.remove(pending)
                return pending.fault
        return None

    def _route(self, path: str, body: dict[str, object]) -> Response:
        route, _, name = path[1:].partition("/")
        if route == "test-connection" and not name:
            return _json(_answer(self.connection, body))
        if route == "remote-data" and name:
            if name not in self.remote_data:
                return _json({"error": "unknown_resource"}, 404)
            return _json({"data": self.remote_data[name]})
        if route == "lifecycle" and name:
            self.lifecycle_calls.append(
                LifecycleCall(
                    event=name,
                    body_event=body.get("event"),
                    installation_id=body.get("installation_id"),
                    settings=body.get("settings"),
                    shop_domain=body.get("shop_domain"),
                    shop_name=body.get("shop_name"),
                    inbound_secret=body.get("inbound_secret"),
                    provisioning_ids=body.get("provisioning_ids"),
                )
            )
            return _json(_answer(self.lifecycle_answer, body))
        if route == "provisioning" and not name:
            return _json(_answer(self.provisioning_answer, body))
        if route == "sources" and name:
            if name not in self.sources:
                return _json({"error": "unknown_entity"}, 404)
            return _json({"sources": self.sources[name]})
        if route == "sync" and name:
            return self._sync_page(name, body)
        return _json({"error": "not_found"}, 404)

    def _sync_page(self, entity: str, body: dict[str, object]) -> Response:
        if not any(known == entity for known, _ in self.datasets):
            return _json({"error": "unknown_entity"}, 404)
        source_key = body.get("source_key")
        window = body.get("window")
        limit = body.get("limit")
        cursor = body.get("cursor")
        if not isinstance(source_key, str) or not isinstance(window, dict):
            return _json({"error": "bad_request"}, 400)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            return _json({"error": "bad_limit"}, 400)
        try:
            since = parse_timestamp(str(window["since"]))
            until = parse_timestamp(str(window["until"]))
        except (KeyError, ValueError):
            return _json({"error": "bad_window"}, 400)
        offset = 0
        if cursor is not None:
            decoded = _offset(cursor) if isinstance(cursor, str) else None
            if decoded is None:
                return _json({"error": "bad_cursor"}, 400)
            offset = decoded
        dataset = self.datasets.get((entity, source_key))
        lo, hi = dataset.bounds(since, until) if dataset is not None else (0, 0)
        start = max(lo, offset)
        end = min(hi, start + limit) if start < hi else start
        items = [dataset.at(i) for i in range(start, end)] if dataset is not None else []
        if end < hi:
            token: str | None = _token(end)
        else:
            token = _token(end + 1) if self.endless else None
        return _json({"items": items, "next": token})


def _reset() -> Response:
    return Response(b"", status=200, headers={_RESET_MARKER.decode(): "1"})


def _fault_response(fault: HttpStatus | RawBody | JsonBody | Reset) -> Response:
    if isinstance(fault, HttpStatus):
        headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
        return _json(fault.body, fault.status, headers)
    if isinstance(fault, RawBody):
        return Response(fault.body, status=fault.status, content_type=fault.content_type)
    if isinstance(fault, JsonBody):
        return _json(fault.value, fault.status)
    return _reset()
