"""Custom data definitions on ShopiMind: find and extend, or create and activate (PROTOCOL §4).

Each definition of a prepared plan (`sidecar.shopimind.definition_plan`) is found in one
listing (`limit=100`: above that the API silently serves 10 rows, and soft-deleted rows
count against the page) by trimmed, case-insensitive name, skipping deleted rows and rows
without an id, preferring active > inactive > editing/creating, then the lowest id (the
oldest row, which holds the records, and a choice two concurrent runs agree on). A found
definition is extended with the fields (by name) and relationships (by sourceField) it
lacks — the API only appends, so a stored relationship pointing at another definition than
the plan's is reported, not fixed. A missing one is created and activated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidecar.declaration.model import CustomDataSpec, RelationshipSpec
from sidecar.errors import ShopimindError
from sidecar.shopimind._report import Report
from sidecar.shopimind._wire import ResourceId, resource_id
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.definition_plan import (
    DefinitionPlan,
    field_wire,
    norm_name,
    relationship_wire,
)

__all__ = ["ensure_definitions"]

_ID_KEYS = ("id_definition", "id_custom_data_definition", "id")
_STATUS_RANK = {"active": 0, "inactive": 1, "editing": 2, "creating": 2}
"""Lower is better. An unknown or missing status ranks as active (fail open: turning every
lookup into a create would break on the API's name-uniqueness check)."""


def _numeric(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _id_order(value: ResourceId) -> tuple[int, int, str]:
    text = str(value)
    return (0, int(text), "") if _numeric(text) else (1, 0, text)


def _best_match(rows: Sequence[Mapping[str, object]], wanted: str) -> tuple[ResourceId, str] | None:
    """The id and status of the definition to converge on, or None."""
    best: tuple[int, tuple[int, int, str], ResourceId, str] | None = None
    for row in rows:
        name = row.get("name") if row.get("name") is not None else row.get("schema_name")
        status = norm_name(row.get("status"))
        found = resource_id(row, *_ID_KEYS)
        if norm_name(name) != wanted or status == "deleted" or found is None:
            continue
        candidate = (_STATUS_RANK.get(status, 0), _id_order(found), found, status)
        if best is None or candidate[:2] < best[:2]:
            best = candidate
    return (best[2], best[3]) if best is not None else None


def _list_of_objects(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _source_field(rel: Mapping[str, object]) -> str:
    return norm_name(rel.get("sourceField", rel.get("source_field")))


def _target_text(value: object) -> str:
    return str(value).strip() if isinstance(value, str | int) else ""


class _Definitions:
    """One run over the ordered definitions, against one listing."""

    def __init__(
        self, api: ShopimindApi, plan: DefinitionPlan, rows: Sequence[Mapping[str, object]]
    ) -> None:
        self.api = api
        self.plan = plan
        self.rows = rows
        self.resolved: dict[str, ResourceId] = {}

    def _targets(
        self, spec: CustomDataSpec, report: Report, subject: str
    ) -> list[tuple[RelationshipSpec, str | None]]:
        """Each relationship with its `targetSchema`; None marks a reference to itself."""
        own = norm_name(spec.name)
        resolved: list[tuple[RelationshipSpec, str | None]] = []
        for rel in spec.relationships:
            target = rel.target_schema.strip()
            key = norm_name(rel.target_schema)
            if rel.target_schema_type != "custom":
                resolved.append((rel, rel.target_schema))
            elif key == own:
                resolved.append((rel, None))
            elif key in self.resolved:
                resolved.append((rel, str(self.resolved[key])))
            else:
                if not _numeric(target):
                    report.warning(
                        subject,
                        f"relationship {rel.source_field!r} targets {rel.target_schema!r}, which "
                        "is neither a definition of this plan nor an id: sent as declared",
                    )
                resolved.append((rel, target))
        return resolved

    async def ensure(self, spec: CustomDataSpec, report: Report) -> ResourceId | None:
        subject = f"custom data '{spec.name}'"
        own = norm_name(spec.name)
        for rel in spec.relationships:
            target = norm_name(rel.target_schema)
            if (
                rel.target_schema_type == "custom"
                and target in self.plan.siblings
                and target not in (own, *self.resolved)
            ):
                report.error(
                    subject, f"it depends on {rel.target_schema!r}, which was not provisioned"
                )
                return None
        targets = self._targets(spec, report, subject)
        match = _best_match(self.rows, own)
        if match is None:
            return await self._create(spec, targets, report, subject)
        found, status = match
        if status not in ("", "active"):
            report.warning(
                subject,
                f"definition {found} is {status!r}, not active: ShopiMind rejects its records "
                "until it is activated",
            )
        await self._converge(spec, found, targets, report, subject)
        return found

    async def _converge(
        self,
        spec: CustomDataSpec,
        found: ResourceId,
        targets: list[tuple[RelationshipSpec, str | None]],
        report: Report,
        subject: str,
    ) -> None:
        stored = await self.api.get_custom_data_definition(found)
        have_fields = {norm_name(f.get("name")) for f in _list_of_objects(stored.get("fields"))}
        have_rels = {_source_field(r): r for r in _list_of_objects(stored.get("relationships"))}
        fields = [field_wire(f) for f in spec.fields if norm_name(f.name) not in have_fields]
        relationships: list[dict[str, object]] = []
        for rel, target in targets:
            wanted = str(found) if target is None else target
            stored_rel = have_rels.get(norm_name(rel.source_field))
            if stored_rel is None:
                relationships.append(relationship_wire(rel, wanted))
                continue
            theirs = _target_text(stored_rel.get("targetSchema", stored_rel.get("target_schema")))
            stale = theirs != wanted and _numeric(theirs) and _numeric(wanted)
            if rel.target_schema_type == "custom" and stale:
                report.error(
                    subject,
                    f"relationship {rel.source_field!r} points at definition {theirs} but "
                    f"the plan resolves it to {wanted}; the API cannot update a "
                    f"relationship: delete and re-create {spec.name!r} to repair it",
                )
        if fields or relationships:
            with report.collect(subject):
                await self.api.extend_custom_data_definition(
                    found, fields=fields, relationships=relationships
                )
                report.log.info(
                    "custom data definition extended",
                    definition=spec.name,
                    id=found,
                    fields=len(fields),
                    relationships=len(relationships),
                )

    async def _create(
        self,
        spec: CustomDataSpec,
        targets: list[tuple[RelationshipSpec, str | None]],
        report: Report,
        subject: str,
    ) -> ResourceId:
        body: dict[str, object] = {
            "name": spec.name.strip(),
            "fields": [field_wire(f) for f in spec.fields],
        }
        if spec.description is not None:
            body["description"] = spec.description
        if spec.unique_keys:
            body["unique_keys"] = list(spec.unique_keys)
        known = [relationship_wire(rel, target) for rel, target in targets if target is not None]
        if known:
            body["relationships"] = known
        created = await self.api.create_custom_data_definition(body)
        found = resource_id(created, *_ID_KEYS)
        if found is None:
            raise ShopimindError("the created definition's answer carries no id")
        report.log.info("custom data definition created", definition=spec.name, id=found)
        with report.collect(subject):
            await self.api.activate_custom_data_definition(found)  # 409: already active, fine
        # A relationship to itself needs its own id, known only now.
        own = [relationship_wire(rel, str(found)) for rel, target in targets if target is None]
        if own:
            with report.collect(subject):
                await self.api.extend_custom_data_definition(found, relationships=own)
        return found


async def ensure_definitions(
    api: ShopimindApi, plan: DefinitionPlan, report: Report
) -> dict[str, ResourceId]:
    """Converge every definition of `plan` in order; their ids by declared name."""
    if not plan.ordered:
        return {}
    try:
        rows = await api.list_custom_data_definitions()
    except ShopimindError as exc:
        report.error("custom data", f"cannot list the shop's definitions: {exc}")
        return {}
    run = _Definitions(api, plan, rows)
    ids: dict[str, ResourceId] = {}
    for spec in plan.ordered:
        with report.collect(f"custom data '{spec.name}'"):
            found = await run.ensure(spec, report)
            if found is not None:
                run.resolved[norm_name(spec.name)] = found
                ids[spec.name] = found
    return ids
