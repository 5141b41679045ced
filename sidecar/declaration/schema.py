"""The JSON Schema of `integration.toml`, so editors check the file as it is typed.

Generated from the same nodes that validate the file at boot, so the two never
disagree on a key's name, type or allowed values. Editors that read TOML through JSON
Schema (taplo, the "Even Better TOML" VS Code extension) use it: save the output of
`shopimind-sidecar schema` next to the file and put `#:schema ./integration.schema.json`
on its first line. Rules that span sections (a sync target naming a declared custom
data definition…) are beyond JSON Schema: `shopimind-sidecar check` reports those.
Free-form values passed through to ShopiMind as given (defaults, a data source's
`config`, widget groups) are the only tables that accept any key.
"""

from __future__ import annotations

from typing import Any, Final

from sidecar.declaration._nodes import SchemaDefs
from sidecar.declaration._root import DECLARATION

__all__ = ["JSON_SCHEMA_DIALECT", "declaration_json_schema"]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def declaration_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the declaration file, as a JSON-ready dict."""
    defs = SchemaDefs()
    body = DECLARATION.body(defs)
    return {"$schema": JSON_SCHEMA_DIALECT, "title": "integration.toml", **body, "$defs": defs.defs}
