"""The ShopiMind REST API client (PROTOCOL §6).

One `ShopimindClient` per process holds the base URL, the connection pool and the retry
policy; each installation talks through `client.api(access_token)`, a `ShopimindApi` bound
to its key. The generic verbs (`get`, `post`, `put`, `patch`, `delete`, `request`) live in
`sidecar.shopimind._http`; this module adds bulk pushes, which stream one chunk at a time
and report through `BulkResult`, and small typed helpers for the routes the sidecar uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal
from urllib.parse import quote

import httpx
import trio

from sidecar.clock import Clock, system_clock
from sidecar.errors import ShopimindError
from sidecar.metrics.hooks import CallObserver
from sidecar.outbound import DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_SECONDS, RetryPolicy
from sidecar.peer_guard import PeerGuard
from sidecar.shopimind._http import ApiResult, ApiVerbs, Method, Transport, checked_base_url
from sidecar.shopimind._wire import ResourceId
from sidecar.shopimind.bulk import BulkResult, read_chunk_answer
from sidecar.shopimind.resources import BULK_RESOURCES, chunk_size_for, custom_records_path

__all__ = [
    "DEFINITIONS_PAGE_LIMIT",
    "ApiResult",
    "BulkResult",
    "Method",
    "ResourceId",
    "ShopimindApi",
    "ShopimindClient",
]

_DEFINITIONS: Final = "custom-data-definitions"
DEFINITIONS_PAGE_LIMIT: Final = 100
"""The largest page `custom-data-definitions` serves; above it the API silently serves 10."""


def _object_of(data: object, what: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise ShopimindError(f"ShopiMind {what}: the answer's `data` is not an object")
    return data


def _segment(value: ResourceId) -> str:
    """One path segment from an id or a code name, escaped so it cannot change the path."""
    return quote(str(value), safe="")


class ShopimindClient:
    """The process-wide ShopiMind client: base URL, HTTP pool, retry policy."""

    __slots__ = ("_transport",)

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
        clock: Clock = system_clock,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        observe: CallObserver | None = None,
        guard: PeerGuard | None = None,
    ) -> None:
        """Refuses (ValueError) an `http://` base on a host other than loopback.

        `observe` is told the outcome of every call (metrics); `guard` holds the API's rate
        limits and circuit breaker, shared by every client of the process."""
        self._transport = Transport(
            base_url=checked_base_url(base_url),
            http=http,
            policy=policy,
            clock=clock,
            timeout_seconds=timeout_seconds,
            max_body_bytes=max_body_bytes,
            observe=observe,
            guard=guard,
        )

    @property
    def base_url(self) -> str:
        """The API base, without the `/v1/` prefix."""
        return self._transport.base_url

    def paused_for(self) -> float:
        """Seconds the API's circuit still refuses every call unsent (`PeerGuard`); 0."""
        guard = self._transport.guard
        return 0.0 if guard is None else guard.paused_for()

    def api(self, access_token: str, *, installation_id: str | None = None) -> ShopimindApi:
        """The API as one installation, authenticated by its access token (`spm-api-key`)."""
        if not access_token.strip():
            raise ValueError("a ShopiMind access token is required")
        return ShopimindApi(self._transport, access_token.strip(), installation_id)


class ShopimindApi(ApiVerbs):
    """The ShopiMind API as one installation. Its key is sent, never logged nor shown."""

    __slots__ = ()

    # --- bulk ----------------------------------------------------------------------------

    async def push(
        self,
        resource: str,
        items: Sequence[Mapping[str, object]],
        *,
        method: Literal["POST", "PUT"] = "POST",
        chunk_size: int | None = None,
        idempotency_key: str | None = None,
        concurrency: int = 1,
    ) -> BulkResult:
        """Save (POST) or update (PUT) `items` on a bulk endpoint, chunk by chunk, at most
        `concurrency` chunks in flight (started in order).

        Chunks have the resource's size (PROTOCOL §6) unless `chunk_size` is given. With an
        `idempotency_key`, chunk i carries `<key>:<i>`, so a replay of the same page is
        recognised chunk by chunk. The first chunk that fails in transport stops the push:
        no further chunk starts (those in flight finish), because the caller replays the
        whole page anyway and pushing on into an API that just failed would only stack up
        waits. Its items and the unsent ones count as `failed`. The result is returned only
        once no chunk is in flight, so a page counts as pushed only when all its chunks are
        acknowledged.
        """
        path = resource.strip("/")
        size = chunk_size if chunk_size is not None else chunk_size_for(path)
        if size is None:
            raise ValueError(f"{path!r} is not a known bulk resource; pass chunk_size")
        if size < 1:
            raise ValueError(f"chunk_size must be at least 1; got {size}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency}")
        chunks = [items[start : start + size] for start in range(0, len(items), size)]
        outcomes: list[BulkResult | None] = [None] * len(chunks)
        room = trio.Semaphore(concurrency)
        stop = False

        async def push_chunk(index: int) -> None:
            nonlocal stop
            try:
                key = f"{idempotency_key}:{index}" if idempotency_key is not None else None
                outcome = await self._push_chunk(method, path, chunks[index], index, key)
                outcomes[index] = outcome
                stop = stop or outcome.transport_failed
            finally:
                room.release()

        async with trio.open_nursery() as nursery:
            for index in range(len(chunks)):
                await room.acquire()  # chunks start in order, `concurrency` at most in flight
                if stop:
                    room.release()
                    break  # the rest is never sent: counted as failed below
                nursery.start_soon(push_chunk, index)
        total = BulkResult()
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            total += BulkResult(failed=len(chunk)) if outcome is None else outcome
        return total

    async def _push_chunk(
        self,
        method: Literal["POST", "PUT"],
        path: str,
        chunk: Sequence[Mapping[str, object]],
        index: int,
        key: str | None,
    ) -> BulkResult:
        """One chunk of a bulk push, its answer read (`failed` > 0: a transport failure)."""
        log = self._log
        try:
            result = await self.request(method, path, json=list(chunk), idempotency_key=key)
        except ShopimindError as exc:
            log.warning(
                "bulk chunk failed", resource=path, chunk=index, items=len(chunk), error=str(exc)
            )
            return BulkResult(
                failed=len(chunk),
                errors=(f"chunk {index} ({len(chunk)} items): {exc}",),
                retry_after_seconds=exc.retry_after_seconds,
            )
        answer = read_chunk_answer(result.body, chunk)
        if answer.failed > 0:
            log.warning("bulk chunk partly failed", resource=path, chunk=index)
            message = (
                f"ShopiMind {method} /v1/{path}: chunk {index} reported "
                f"{answer.failed} item(s) failed"
            )
            return BulkResult(
                sent=answer.sent,
                rejected=answer.rejected,
                rejected_items=answer.rejected_items,
                failed=answer.failed,
                errors=(message,),
            )
        if answer.rejected:
            log.info("bulk items rejected", resource=path, chunk=index, rejected=answer.rejected)
        return BulkResult(
            sent=answer.sent, rejected=answer.rejected, rejected_items=answer.rejected_items
        )

    async def push_custom_records(
        self,
        definition_id: ResourceId,
        items: Sequence[Mapping[str, object]],
        *,
        chunk_size: int | None = None,
        idempotency_key: str | None = None,
        concurrency: int = 1,
    ) -> BulkResult:
        """Save records of a custom data definition (`custom-data-records/{id}`, 20 a chunk)."""
        return await self.push(
            custom_records_path(definition_id),
            items,
            chunk_size=chunk_size,
            idempotency_key=idempotency_key,
            concurrency=concurrency,
        )

    async def delete_many(
        self,
        resource: str,
        ids: Sequence[ResourceId],
        *,
        idempotency_key: str | None = None,
    ) -> BulkResult:
        """Delete by id: `POST <resource>/bulk-delete` with `{<singular>_ids: [...]}`, chunked."""
        known = BULK_RESOURCES.get(resource.strip("/"))
        if known is None or known.delete_key is None:
            raise ValueError(f"{resource!r} has no bulk delete")
        total = BulkResult()
        for index, start in enumerate(range(0, len(ids), known.chunk_size)):
            chunk = list(ids[start : start + known.chunk_size])
            key = f"{idempotency_key}:{index}" if idempotency_key is not None else None
            try:
                result = await self.post(
                    f"{known.path}/bulk-delete",
                    {known.delete_key: chunk},
                    idempotency_key=key,
                )
            except ShopimindError as exc:
                error = f"chunk {index} ({len(chunk)} ids): {exc}"
                return total + BulkResult(failed=len(ids) - start, errors=(error,))
            answer = read_chunk_answer(result.body, [{"id": each} for each in chunk])
            total += BulkResult(
                sent=answer.sent, rejected=answer.rejected, rejected_items=answer.rejected_items
            )
        return total

    # --- data sources -----------------------------------------------------------------

    async def list_data_sources(self) -> list[Mapping[str, object]]:
        """Every data source of the shop."""
        return await self.get_rows("data-sources")

    async def create_data_source(self, source: Mapping[str, object]) -> Mapping[str, object]:
        """Create a data source (`label`, `type`, `config` as a JSON string, `parent_id`)."""
        return _object_of((await self.post("data-sources", source)).data, "POST data-sources")

    async def update_data_source(
        self, source_id: ResourceId, changes: Mapping[str, object]
    ) -> None:
        """Change a data source's attributes (e.g. its label)."""
        await self.put(f"data-sources/{_segment(source_id)}", changes)

    async def delete_data_source(self, source_id: ResourceId) -> None:
        """Delete a data source."""
        await self.delete(f"data-sources/{_segment(source_id)}")

    # --- custom data definitions --------------------------------------------------------

    async def list_custom_data_definitions(self) -> list[Mapping[str, object]]:
        """Every definition, soft-deleted ones included, asking for the largest page (100)."""
        return await self.get_rows(_DEFINITIONS, params={"limit": DEFINITIONS_PAGE_LIMIT})

    async def get_custom_data_definition(self, definition_id: ResourceId) -> Mapping[str, object]:
        """One definition with its `fields` and `relationships`."""
        return await self.get_object(f"{_DEFINITIONS}/{_segment(definition_id)}")

    async def create_custom_data_definition(
        self, definition: Mapping[str, object]
    ) -> Mapping[str, object]:
        """Create a definition; it still has to be activated."""
        result = await self.post(_DEFINITIONS, definition)
        return _object_of(result.data, f"POST {_DEFINITIONS}")

    async def extend_custom_data_definition(
        self,
        definition_id: ResourceId,
        *,
        fields: Sequence[Mapping[str, object]] = (),
        relationships: Sequence[Mapping[str, object]] = (),
    ) -> None:
        """Append fields and relationships (the API cannot change existing ones)."""
        body: dict[str, object] = {}
        if fields:
            body["fields"] = list(fields)
        if relationships:
            body["relationships"] = list(relationships)
        await self.patch(f"{_DEFINITIONS}/{_segment(definition_id)}/extend", body)

    async def activate_custom_data_definition(self, definition_id: ResourceId) -> bool:
        """Activate a definition; False when it already was (409)."""
        path = f"{_DEFINITIONS}/{_segment(definition_id)}/activate"
        return (await self.patch(path, accept=(409,))).status != 409

    async def deactivate_custom_data_definition(self, definition_id: ResourceId) -> bool:
        """Deactivate a definition; False when it already was inactive (409)."""
        path = f"{_DEFINITIONS}/{_segment(definition_id)}/deactivate"
        return (await self.patch(path, accept=(409,))).status != 409

    # --- events, order statuses, integration config, contacts ---------------------------

    async def create_event(self, event: Mapping[str, object]) -> bool:
        """Declare an event type; False when its `code_name` already exists (409)."""
        return (await self.post("events", event, accept=(409,))).status != 409

    async def trigger_event(
        self, code_name: str, payload: Mapping[str, object], *, idempotency_key: str | None
    ) -> object:
        """Fire one event of type `code_name`; returns the answer's `data`."""
        result = await self.post(
            f"events/trigger/{_segment(code_name)}", payload, idempotency_key=idempotency_key
        )
        return result.data

    async def save_order_statuses(self, statuses: Sequence[Mapping[str, object]]) -> BulkResult:
        """Bulk-save order statuses (`orders-statuses`)."""
        return await self.push("orders-statuses", statuses)

    async def get_integration_config(self) -> Mapping[str, object]:
        """The values of the integrator-owned config fields for this shop."""
        data = await self.get_object("integration-config")
        values = data.get("values")
        return values if isinstance(values, Mapping) else data

    async def put_integration_config(self, values: Mapping[str, object]) -> None:
        """Set values of integrator-owned config fields (`owner: integrator`)."""
        await self.put("integration-config", values)

    async def upsert_contact(
        self, contact: Mapping[str, object], *, idempotency_key: str | None
    ) -> bool:
        """Create or update a contact; True when it was created (201), False if updated."""
        result = await self.post("contacts", contact, idempotency_key=idempotency_key)
        return result.status == 201
