"""A fake ShopiMind REST API (PROTOCOL §6) for tests: a quart-trio app served on loopback.

It speaks the wire contract the sidecar relies on, with the API's known quirks, so tests
exercise the client over real HTTP:

- every request is recorded (`requests`: method, path without `/v1/`, query, headers, body);
- `spm-api-key` must be one of `tokens` (401 otherwise);
- reads answer `{statusCode, data}`; errors `{statusCode, message, error}` where `message`
  may be a list of strings, as the real API's validation errors are;
- bulk endpoints (POST save, PUT update) answer `{sent_count, rejected_count,
  rejected_items: [{index, item, reason}]}`, refuse chunks larger than the resource's size,
  and store accepted items per (method, resource) — compactly, as JSON text, optionally
  only the first `keep_items` of them (counts are always exact) so 200,000 items fit;
  `reject_when(predicate)` makes items matching a predicate rejected with its reason;
- data sources; custom data definitions with statuses, soft delete (`status: "deleted"`,
  still listed, refused by id), `limit` above 100 falling back to 10, extend, activate and
  deactivate answering 409 when already done; records of an inactive definition rejected;
- events (409 on a duplicate `code_name`) and `events/trigger/{code}`; contacts upsert
  (201 created, 200 updated); integration-config;
- a POST or PATCH with an `Idempotency-Key` already seen gets the first answer again,
  without side effects;
- fault injection: the next N requests (optionally matching a path prefix and a method)
  answer a status (e.g. 429 with `Retry-After`, 503), answer slowly (`trio.sleep`, so a
  MockClock drives it), or are processed but have their answer cut (the connection closes
  mid-body: the client sees a transport error after the request did its work).

Usage::

    from sidecar.outbound import new_http_client
    from sidecar.shopimind.client import ShopimindClient
    from sidecar.testing.server import running
    from sidecar.testing.shopimind_api import FakeShopimind

    fake = FakeShopimind(tokens={"int_token"})
    fake.reject_when(lambda resource, item: None if "@" in str(item.get("email")) else "bad email")
    fake.fail_next(2, status=429, retry_after=3, path="customers")  # then answers normally
    async with running(fake) as base_url, new_http_client() as http:
        api = ShopimindClient(base_url=base_url, http=http).api("int_token")
        # a POST is replayed after a 429 only with an idempotency key
        result = await api.push("customers", customers, idempotency_key="page-1")
    assert fake.count("customers") == result.sent
    assert [r.path for r in fake.requests][:3] == ["customers"] * 3

Fault injection: `fail_next(n, status=, retry_after=, path=, method=, after=)`,
`slow_next(n, seconds=, ...)`, `drop_next(n, ...)`, or `inject(Fault(...))`; `after=k`
lets k matching requests through first (e.g. to fail the second chunk of a push).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

import httpx
import trio
from quart import Response, request
from quart_trio import QuartTrio

__all__ = ["DEFAULT_TOKEN", "FakeShopimind", "Fault", "RecordedRequest"]

# Raw ASGI, shared with the recording wrapper (sidecar.testing.recording).
Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the peer hung up first."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body over once, then defers to the peer."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


DEFAULT_TOKEN: Final = "int_fake_token"  # noqa: S105 - a fake API's fake key
# Facts from PROTOCOL.md, written here rather than imported: a fake peer must not share
# the code under test's reading of the contract.
FIELD_TYPES: Final = frozenset(
    [
        "bool",
        "text",
        "longtext",
        "number",
        "decimal",
        "list",
        "date",
        "datetime",
        "json",
        "geolocation",
    ]
)
"""Custom data field types (PROTOCOL §4)."""
_BULK_CHUNKS: Final = tuple(
    (re.compile(pattern), size)
    for pattern, size in (
        (r"customers", 50),
        (r"customers/[^/]+/addresses", 50),
        (r"customers/addresses/bulk", 50),
        (r"customers-groups", 100),
        (r"newsletter-subscribers", 50),
        (r"products", 50),
        (r"products/[^/]+/images", 50),
        (r"products/images/bulk", 50),
        (r"products/[^/]+/variations", 50),
        (r"products/variations/bulk", 50),
        (r"products-categories", 100),
        (r"products-manufacturers", 100),
        (r"orders", 50),
        (r"orders-carriers", 100),
        (r"orders-statuses", 100),
        (r"vouchers", 50),
        (r"custom-data-records/[^/]+", 20),
    )
)
"""Bulk endpoints and their chunk sizes (PROTOCOL §6)."""


def _chunk_limit(path: str) -> int | None:
    return next((size for pattern, size in _BULK_CHUNKS if pattern.fullmatch(path)), None)


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ses"):
        return word[:-2]
    return word.removesuffix("s")


def _delete_key(resource: str) -> str | None:
    """`{<singular>_ids: [...]}` of a bulk-delete (PROTOCOL §6: `customers` → `customer_ids`)."""
    if _chunk_limit(resource) is None or "/" in resource:
        return None
    singular = "_".join(_singular(word) for word in resource.split("-"))
    return f"{singular}_ids"


_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_REPLY_CACHE: Final = 10_000

Answer = tuple[int, object]
Predicate = Callable[[str, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it arrived: `path` has no `/v1/` prefix, header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    at: float
    """When it arrived, in trio time (virtual under a MockClock)."""

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None when empty."""
        return json.loads(self.body) if self.body else None


@dataclass(slots=True, kw_only=True)
class Fault:
    """What the next `remaining` matching requests get instead of a normal answer."""

    kind: Literal["status", "slow", "drop"]
    remaining: int = 1
    after: int = 0
    """Matching requests to let through untouched before the fault starts."""
    path: str | None = None
    """A path prefix without `/v1/` (`customers` matches `customers/bulk-delete`, not
    `customers-groups`); None matches every path."""
    method: str | None = None
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to `method path`."""
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or path == self.path or path.startswith(self.path + "/")


def _error(status: int, message: str | list[str]) -> Answer:
    phrase = httpx.codes.get_reason_phrase(status)
    return status, {"statusCode": status, "message": message, "error": phrase}


def _ok(data: object, status: int = 200) -> Answer:
    return status, {"statusCode": status, "data": data}


def _int_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().casefold()).strip("_")


def _cutting(send: Send) -> Send:
    """A `send` that announces one byte more than the body it sends, so the server closes
    the connection mid-answer (h11 refuses to finish such a message)."""
    held: list[Message] = []
    body = bytearray()

    async def cut(message: Message) -> None:
        if message["type"] == "http.response.start":
            held.append(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body"):
            return
        start = held[0]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body) + 1).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": bytes(body), "more_body": False})

    return cut


class FakeShopimind:
    """The fake API: an ASGI app (serve it with `sidecar.testing.server.running(fake)`)."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        keep_items: int | None = None,
        request_log_limit: int = 10_000,
    ) -> None:
        self.tokens = set(tokens)
        self.keep_items = keep_items
        self.requests: deque[RecordedRequest] = deque(maxlen=request_log_limit)
        self.data_sources: dict[int, dict[str, Any]] = {}
        self.definitions: dict[int, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.triggers: list[tuple[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.integration_config: dict[str, Any] = {}
        self.deleted: defaultdict[str, list[Any]] = defaultdict(list)
        self._items: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._faults: list[Fault] = []
        self._rejections: list[Predicate] = []
        self._replies: OrderedDict[tuple[str, str, str], Answer] = OrderedDict()
        self._ids = itertools.count(1)
        self.app = QuartTrio("fake-shopimind")
        self.app.add_url_rule("/v1/<path:rest>", "api", self._route, methods=_METHODS)
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            (method, re.compile(pattern), handler)
            for method, pattern, handler in (
                ("GET", r"data-sources", self._list_sources),
                ("POST", r"data-sources", self._create_source),
                ("PUT", r"data-sources/(?P<ident>[^/]+)", self._update_source),
                ("DELETE", r"data-sources/(?P<ident>[^/]+)", self._delete_source),
                ("GET", r"custom-data-definitions", self._list_definitions),
                ("POST", r"custom-data-definitions", self._create_definition),
                ("GET", r"custom-data-definitions/(?P<ident>[^/]+)", self._get_definition),
                ("DELETE", r"custom-data-definitions/(?P<ident>[^/]+)", self._delete_definition),
                (
                    "PATCH",
                    r"custom-data-definitions/(?P<ident>[^/]+)/(?P<action>extend|activate|deactivate)",
                    self._change_definition,
                ),
                ("POST", r"events", self._create_event),
                ("POST", r"events/trigger/(?P<code>.+)", self._trigger_event),
                ("GET", r"integration-config", self._get_config),
                ("PUT", r"integration-config", self._put_config),
                ("POST", r"contacts", self._upsert_contact),
                ("POST", r"(?P<resource>.+)/bulk-delete", self._bulk_delete),
            )
        ]

    # --- seeding and reading state ------------------------------------------------------

    def add_data_source(
        self,
        label: str,
        *,
        type: str = "pos",  # noqa: A002 - the API's own field name
        config: Mapping[str, Any] | str | None = None,
        parent_id: int | None = None,
    ) -> int:
        """Create a data source as if it already existed; returns its `id_data_source`."""
        ident = next(self._ids)
        self.data_sources[ident] = {
            "id_data_source": ident,
            "label": label,
            "type": type,
            "config": json.dumps(config) if isinstance(config, Mapping) else config,
            "parent_id": parent_id,
            "active": True,
            "is_default": False,
        }
        return ident

    def add_definition(
        self,
        name: str,
        *,
        status: str = "active",
        fields: Sequence[Mapping[str, Any] | str] = (),
        relationships: Sequence[Mapping[str, Any]] = (),
        unique_keys: Sequence[str] = (),
    ) -> int:
        """Create a custom data definition as if it already existed; returns its `id`.

        A field given as a plain name becomes a non-required text field.
        """
        ident = next(self._ids)
        self.definitions[ident] = {
            "id": ident,
            "name": name,
            "schema_name": _slug(name),
            "description": None,
            "status": status,
            "unique_keys": list(unique_keys),
            "fields": [
                {"name": f, "label": f, "type": "text", "required": False}
                if isinstance(f, str)
                else dict(f)
                for f in fields
            ],
            "relationships": [dict(r) for r in relationships],
        }
        return ident

    def add_event(self, code_name: str) -> None:
        """Declare an event type as if it already existed."""
        self.events[code_name] = {"id_event": next(self._ids), "code_name": code_name}

    def items(self, resource: str, *, method: str = "POST") -> list[dict[str, Any]]:
        """Items accepted by `method resource` (only the first `keep_items` when set)."""
        return [json.loads(text) for text in self._items[(method, resource)]]

    def count(self, resource: str, *, method: str = "POST") -> int:
        """How many items `method resource` accepted (always exact)."""
        return self._counts[(method, resource)]

    def records(self, definition_id: int) -> list[dict[str, Any]]:
        """Records accepted for a custom data definition."""
        return self.items(f"custom-data-records/{definition_id}")

    def requests_to(self, path: str, *, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests to exactly `path` (without `/v1/`), optionally of one method."""
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]

    # --- behaviour hooks ----------------------------------------------------------------

    def reject_when(self, predicate: Predicate) -> None:
        """Reject bulk items for which `predicate(resource, item)` returns a reason."""
        self._rejections.append(predicate)

    def clear_rejections(self) -> None:
        """Accept every item again (the rules of `reject_when` are dropped)."""
        self._rejections.clear()

    def inject(self, fault: Fault) -> None:
        """Add a fault; faults are tried in the order they were added."""
        self._faults.append(fault)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        retry_after: str | int | None = None,
        path: str | None = None,
        method: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `count` matching requests (after `after` untouched ones) answer `status`,
        with `Retry-After` when given, and are not processed."""
        self.inject(
            Fault(
                kind="status",
                remaining=count,
                status=status,
                retry_after=None if retry_after is None else str(retry_after),
                path=path,
                method=method,
                after=after,
            )
        )

    def slow_next(
        self,
        count: int = 1,
        *,
        seconds: float,
        path: str | None = None,
        method: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `count` matching requests wait `seconds` (trio time) before being handled."""
        self.inject(
            Fault(
                kind="slow", remaining=count, seconds=seconds, path=path, method=method, after=after
            )
        )

    def drop_next(
        self, count: int = 1, *, path: str | None = None, method: str | None = None, after: int = 0
    ) -> None:
        """The next `count` matching requests are processed, then their answer is cut off."""
        self.inject(Fault(kind="drop", remaining=count, path=path, method=method, after=after))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- ASGI: recording and faults in front of the quart app -------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: Any = self.app
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        method = str(scope["method"]).upper()
        full = str(scope["path"])
        path = full[len("/v1/") :] if full.startswith("/v1/") else full.lstrip("/")
        self.requests.append(
            RecordedRequest(
                method=method,
                path=path,
                query=dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1"))),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                },
                body=body,
                at=trio.current_time(),
            )
        )
        fault = self._take_fault(method, path)
        replay = replaying(body, receive)
        if fault is None:
            await app(scope, replay, send)
        elif fault.kind == "status":
            status, payload = _error(fault.status, "injected fault")
            headers = [(b"content-type", b"application/json")]
            if fault.retry_after is not None:
                headers.append((b"retry-after", fault.retry_after.encode("latin-1")))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
        elif fault.kind == "slow":
            await trio.sleep(fault.seconds)
            await app(scope, replay, send)
        else:
            with contextlib.suppress(Exception):
                await app(scope, replay, _cutting(send))

    async def _route(self, rest: str) -> Response:
        status, payload = self._answer(
            request.method.upper(),
            rest,
            request.headers.get("spm-api-key"),
            request.headers.get("idempotency-key"),
            dict(request.args),
            await request.get_data(True, False, False),
        )
        return Response(json.dumps(payload), status=status, content_type="application/json")

    def _answer(
        self,
        method: str,
        path: str,
        token: str | None,
        idempotency_key: str | None,
        query: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        if token is None or token not in self.tokens:
            return _error(401, "Unauthorized")
        cache_key = (method, path, idempotency_key or "")
        if idempotency_key and method in ("POST", "PATCH") and cache_key in self._replies:
            return self._replies[cache_key]
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return _error(400, "the body is not valid JSON")
        answer = self._dispatch(method, path, query, payload)
        if idempotency_key and method in ("POST", "PATCH") and answer[0] < 500:
            self._replies[cache_key] = answer
            while len(self._replies) > _REPLY_CACHE:
                self._replies.popitem(last=False)
        return answer

    def _dispatch(self, method: str, path: str, query: Mapping[str, str], payload: Any) -> Answer:
        for route_method, pattern, handler in self._routes:
            found = pattern.fullmatch(path)
            if found is not None and route_method == method:
                return handler(payload, query, **found.groupdict())
        if method in ("POST", "PUT") and _chunk_limit(path) is not None:
            return self._bulk(method, path, payload)
        return _error(404, f"Cannot {method} /v1/{path}")

    # --- bulk ---------------------------------------------------------------------------

    def _reason(self, resource: str, item: Mapping[str, Any]) -> str | None:
        for predicate in self._rejections:
            reason = predicate(resource, item)
            if reason:
                return reason
        return None

    def _record_rules(self, resource: str) -> tuple[Answer | None, list[str], str | None]:
        """For custom-data-records: an error answer, required fields, or a rejection reason."""
        if not resource.startswith("custom-data-records/"):
            return None, [], None
        ident = _int_id(resource.rsplit("/", 1)[1])
        definition = self.definitions.get(ident) if ident is not None else None
        if definition is None or definition["status"] == "deleted":
            return _error(404, "Custom data definition not found"), [], None
        required = [f["name"] for f in definition["fields"] if f.get("required")]
        inactive = (
            None if definition["status"] == "active" else "custom data definition is not active"
        )
        return None, required, inactive

    def _bulk(self, method: str, resource: str, payload: Any) -> Answer:
        limit = _chunk_limit(resource) or 0
        if not isinstance(payload, list) or not all(isinstance(i, dict) for i in payload):
            return _error(400, ["body must be an array of objects"])
        if len(payload) > limit:
            return _error(400, f"at most {limit} items per request; got {len(payload)}")
        refused, required, blanket = self._record_rules(resource)
        if refused is not None:
            return refused
        sent = 0
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(payload):
            missing = next((name for name in required if item.get(name) in (None, "")), None)
            reason = blanket or (f"field '{missing}' is required" if missing else None)
            reason = reason or self._reason(resource, item)
            if reason:
                rejected.append({"index": index, "item": item, "reason": reason})
                continue
            key = (method, resource)
            self._counts[key] += 1
            if self.keep_items is None or len(self._items[key]) < self.keep_items:
                self._items[key].append(json.dumps(item, separators=(",", ":")))
            sent += 1
        return 200, {
            "sent_count": sent,
            "rejected_count": len(rejected),
            "rejected_items": rejected,
        }

    def _bulk_delete(self, payload: Any, query: Mapping[str, str], *, resource: str) -> Answer:
        key = _delete_key(resource)
        if key is None:
            return _error(404, f"Cannot POST /v1/{resource}/bulk-delete")
        ids = payload.get(key) if isinstance(payload, dict) else None
        if not isinstance(ids, list):
            return _error(400, [f"{key} must be an array"])
        self.deleted[resource].extend(ids)
        return 200, {"sent_count": len(ids), "rejected_count": 0, "rejected_items": []}

    # --- data sources -------------------------------------------------------------------

    def _list_sources(self, payload: Any, query: Mapping[str, str]) -> Answer:
        return _ok([dict(row) for row in self.data_sources.values()])

    def _create_source(self, payload: Any, query: Mapping[str, str]) -> Answer:
        if not isinstance(payload, dict):
            return _error(400, ["label should not be empty"])
        label = payload.get("label")
        if not isinstance(label, str) or not label.strip():
            return _error(400, ["label should not be empty", "label must be a string"])
        parent = payload.get("parent_id")
        if parent is not None and parent not in self.data_sources:
            return _error(400, f"parent data source {parent} not found")
        config = payload.get("config")
        ident = self.add_data_source(
            label,
            type=str(payload.get("type") or ""),
            config=config if isinstance(config, Mapping | str) else None,
            parent_id=parent,
        )
        return _ok(self.data_sources[ident], 201)

    def _update_source(self, payload: Any, query: Mapping[str, str], *, ident: str) -> Answer:
        row = self.data_sources.get(_int_id(ident) or 0)
        if row is None:
            return _error(404, "Data source not found")
        if not isinstance(payload, dict):
            return _error(400, "body must be an object")
        for key in ("label", "type", "config", "active", "parent_id"):
            if key in payload:
                row[key] = payload[key]
        return _ok(row)

    def _delete_source(self, payload: Any, query: Mapping[str, str], *, ident: str) -> Answer:
        if self.data_sources.pop(_int_id(ident) or 0, None) is None:
            return _error(404, "Data source not found")
        return _ok(None)

    # --- custom data definitions ----------------------------------------------------------

    def _live_definition(self, ident: str) -> dict[str, Any] | None:
        row = self.definitions.get(_int_id(ident) or 0)
        return None if row is None or row["status"] == "deleted" else row

    def _list_definitions(self, payload: Any, query: Mapping[str, str]) -> Answer:
        asked = _int_id(query.get("limit", ""))
        limit = asked if asked is not None and 1 <= asked <= 100 else 10  # the real API's quirk
        rows = [self.definitions[k] for k in sorted(self.definitions)][:limit]
        summary = ("id", "name", "schema_name", "description", "status")
        return _ok([{k: row[k] for k in summary} for row in rows])

    def _get_definition(self, payload: Any, query: Mapping[str, str], *, ident: str) -> Answer:
        row = self._live_definition(ident)
        return _ok(row) if row is not None else _error(400, "Custom data definition not found")

    def _delete_definition(self, payload: Any, query: Mapping[str, str], *, ident: str) -> Answer:
        row = self._live_definition(ident)
        if row is None:
            return _error(400, "Custom data definition not found")
        row["status"] = "deleted"
        return _ok(None)

    def _check_parts(self, fields: Any, relationships: Any, names: set[str]) -> list[str]:
        problems: list[str] = []
        if not isinstance(fields, list) or not isinstance(relationships, list):
            return ["fields and relationships must be arrays"]
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
                problems.append("each field must have a name")
            elif f["name"] in names:
                problems.append(f"field '{f['name']}' already exists")
            elif f.get("type") not in FIELD_TYPES:
                problems.append(f"field '{f['name']}' has an invalid type")
            else:
                names.add(f["name"])
        for r in relationships:
            if not isinstance(r, dict) or r.get("sourceField") not in names:
                problems.append("relationship sourceField must be a field of the definition")
            elif r.get("targetSchemaType") not in ("system", "custom"):
                problems.append("targetSchemaType must be system or custom")
            elif (
                r["targetSchemaType"] == "custom"
                and self._live_definition(str(r.get("targetSchema"))) is None
            ):
                problems.append(f"target custom data definition {r.get('targetSchema')} not found")
        return problems

    def _create_definition(self, payload: Any, query: Mapping[str, str]) -> Answer:
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            return _error(400, ["name must be a string"])
        name = payload["name"]
        taken = {
            row["name"].strip().casefold()
            for row in self.definitions.values()
            if row["status"] != "deleted"
        }
        if name.strip().casefold() in taken:
            return _error(400, "custom data definition name is already used.")
        fields = payload.get("fields", [])
        relationships = payload.get("relationships", [])
        names: set[str] = set()
        problems = self._check_parts(fields, relationships, names)
        problems += [
            f"unique key '{k}' is not a field"
            for k in payload.get("unique_keys", [])
            if k not in names
        ]
        if not fields:
            problems.append("fields should not be empty")
        if problems:
            return _error(400, problems)
        ident = self.add_definition(
            name,
            status="inactive",
            fields=fields,
            relationships=relationships,
            unique_keys=payload.get("unique_keys", []),
        )
        self.definitions[ident]["description"] = payload.get("description")
        return _ok(self.definitions[ident], 201)

    def _change_definition(
        self, payload: Any, query: Mapping[str, str], *, ident: str, action: str
    ) -> Answer:
        row = self._live_definition(ident)
        if row is None:
            return _error(400, "Custom data definition not found")
        if action == "extend":
            body = payload if isinstance(payload, dict) else {}
            fields = body.get("fields", [])
            relationships = body.get("relationships", [])
            have = {r["sourceField"] for r in row["relationships"]}
            problems = self._check_parts(fields, relationships, {f["name"] for f in row["fields"]})
            problems += [
                f"relationship on '{r['sourceField']}' already exists"
                for r in relationships
                if isinstance(r, dict) and r.get("sourceField") in have
            ]
            if problems:
                return _error(400, problems)
            row["fields"].extend(fields)
            row["relationships"].extend(relationships)
            return _ok(row)
        wanted = "active" if action == "activate" else "inactive"
        if row["status"] == wanted:
            return _error(409, f"Custom data definition is already {wanted}")
        row["status"] = wanted
        return _ok(row)

    # --- events, contacts, integration config --------------------------------------------

    def _create_event(self, payload: Any, query: Mapping[str, str]) -> Answer:
        code = payload.get("code_name") if isinstance(payload, dict) else None
        if not isinstance(code, str) or not code:
            return _error(400, ["code_name should not be empty"])
        if code in self.events:
            return _error(409, f"An event with code_name '{code}' already exists")
        self.events[code] = {"id_event": next(self._ids), **payload}
        return _ok(self.events[code], 201)

    def _trigger_event(self, payload: Any, query: Mapping[str, str], *, code: str) -> Answer:
        if code not in self.events:
            return _error(404, "Event not found")
        if not isinstance(payload, dict):
            return _error(400, "body must be an object")
        self.triggers.append((code, payload))
        return _ok({"triggered": True, "id_event": self.events[code]["id_event"]})

    def _upsert_contact(self, payload: Any, query: Mapping[str, str]) -> Answer:
        if not isinstance(payload, dict):
            return _error(400, "body must be an object")
        key = str(payload.get("email") or payload.get("phone") or "").strip().casefold()
        if not key:
            return _error(400, ["email or phone is required"])
        existing = self.contacts.get(key)
        if existing is not None:
            existing.update(payload)
            return _ok({"id_contact": existing["id_contact"]}, 200)
        self.contacts[key] = {"id_contact": next(self._ids), **payload}
        return _ok({"id_contact": self.contacts[key]["id_contact"]}, 201)

    def _get_config(self, payload: Any, query: Mapping[str, str]) -> Answer:
        return _ok({"values": dict(self.integration_config)})

    def _put_config(self, payload: Any, query: Mapping[str, str]) -> Answer:
        if not isinstance(payload, dict):
            return _error(400, "body must be an object")
        self.integration_config.update(payload)
        return _ok({"values": dict(self.integration_config)})
