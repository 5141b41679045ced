"""Data sources: find or create each declared source, exactly once (PROTOCOL §4).

A source is found first by its stable config value (`config[stable_key]`, e.g. a store id
that survives a rename — then only its label is updated), else by its trimmed label, else
created. The listing is read once per run; a row already matched in this run is not
matched again, and a label match never takes a row whose stable value names another
store, so two stores that happen to share a name stay two sources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from sidecar.declaration.model import DataSourceSpec
from sidecar.errors import ShopimindError
from sidecar.shopimind._report import Report
from sidecar.shopimind._wire import ResourceId, resource_id
from sidecar.shopimind.client import ShopimindApi

__all__ = ["ensure_sources"]

_ID_KEYS = ("id_data_source", "id")


def _label(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _scalar(value: object) -> str | None:
    """A config value in comparable form: `12` and `"12"` compare equal, blanks are ignored."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, sort_keys=True, default=str)


def _config_value(row: Mapping[str, object], key: str) -> str | None:
    config = row.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return None
    return _scalar(config.get(key)) if isinstance(config, Mapping) else None


class _Sources:
    """One run over the declared sources, against one listing of the shop's sources."""

    def __init__(
        self, api: ShopimindApi, rows: Sequence[Mapping[str, object]], report: Report
    ) -> None:
        self.api = api
        self.rows = rows
        self.report = report
        self.ids: dict[str, ResourceId] = {}
        self.claimed: set[str] = set()

    def _free(self, row: Mapping[str, object]) -> ResourceId | None:
        found = resource_id(row, *_ID_KEYS)
        return found if found is not None and str(found) not in self.claimed else None

    def _stable_value(self, spec: DataSourceSpec, subject: str) -> str | None:
        if spec.stable_key is None:
            return None
        value = _scalar(spec.config.get(spec.stable_key))
        if value is None:
            self.report.warning(
                subject,
                f"stable key {spec.stable_key!r} has no value in its config; matching on the "
                "label only",
            )
        return value

    async def ensure(self, spec: DataSourceSpec) -> ResourceId | None:
        subject = f"data source '{spec.key}'"
        parent_id: ResourceId | None = None
        if spec.parent is not None:
            parent_id = self.ids.get(spec.parent)
            if parent_id is None:
                self.report.error(
                    subject,
                    f"its parent '{spec.parent}' was not provisioned before it (declare the "
                    "parent earlier in the plan, or see the parent's own error)",
                )
                return None
        label = spec.label.strip()
        stable = self._stable_value(spec, subject)
        if stable is not None and spec.stable_key is not None:
            for row in self.rows:
                found = self._free(row)
                if found is not None and _config_value(row, spec.stable_key) == stable:
                    if _label(row.get("label")) != label:
                        with self.report.collect(subject):
                            await self.api.update_data_source(found, {"label": label})
                            self.report.log.info("data source renamed", key=spec.key, id=found)
                    return found
        for row in self.rows:
            found = self._free(row)
            if found is None or _label(row.get("label")) != label:
                continue
            if stable is not None and spec.stable_key is not None:
                theirs = _config_value(row, spec.stable_key)
                if theirs is not None and theirs != stable:
                    continue  # same name, another store
            return found
        body: dict[str, object] = {
            "label": label,
            "type": spec.type,
            "config": json.dumps(dict(spec.config), ensure_ascii=False, separators=(",", ":")),
        }
        if parent_id is not None:
            body["parent_id"] = parent_id
        created = await self.api.create_data_source(body)
        found = resource_id(created, *_ID_KEYS)
        if found is None:
            raise ShopimindError("the created source's answer carries no id_data_source or id")
        self.report.log.info("data source created", key=spec.key, id=found)
        return found


async def ensure_sources(
    api: ShopimindApi, specs: Sequence[DataSourceSpec], report: Report
) -> dict[str, ResourceId]:
    """Find or create every source in `specs`, in order; their ids by declared key."""
    if not specs:
        return {}
    try:
        rows = await api.list_data_sources()
    except ShopimindError as exc:
        report.error("data sources", f"cannot list the shop's sources: {exc}")
        return {}
    run = _Sources(api, rows, report)
    seen: set[str] = set()
    for spec in specs:
        subject = f"data source '{spec.key}'"
        if spec.key in seen:
            report.error(subject, "declared twice in the plan")
            continue
        seen.add(spec.key)
        with report.collect(subject):
            found = await run.ensure(spec)
            if found is not None:
                run.ids[spec.key] = found
                run.claimed.add(str(found))
    return run.ids
