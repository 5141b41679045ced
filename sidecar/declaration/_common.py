"""Nodes several sections share: labels, URLs, names that end up in a URL path.

Each rule lives here once, so a `code_name`, an `entity` and a remote `resource` (all
placed in URL paths) accept exactly the same characters, and every label is read the
same way.
"""

from __future__ import annotations

from typing import Final

from sidecar.declaration._compound import ArrayOf, MapOf, Named, OneOf
from sidecar.declaration._nodes import Text
from sidecar.declaration._record import Key, Record
from sidecar.declaration.model import Localized, SelectOption

__all__ = [
    "IDENTIFIER",
    "IDENTIFIER_PATTERN",
    "LOCALIZED",
    "NONBLANK",
    "SELECT_OPTION",
    "SELECT_OPTIONS",
    "URL",
    "URL_SEGMENT",
    "URL_SEGMENT_PATTERN",
]

IDENTIFIER_PATTERN: Final = "[a-z0-9_-]+"
IDENTIFIER_HINT: Final = "lower-case letters, digits, '_' and '-' only (e.g. 'acme-pos')"
IDENTIFIER: Final = Text(pattern=IDENTIFIER_PATTERN, hint=IDENTIFIER_HINT)
"""The slug and inbound action names."""

URL_SEGMENT_PATTERN: Final = "[A-Za-z0-9._~-]+"
URL_SEGMENT: Final = Text(
    pattern=URL_SEGMENT_PATTERN,
    hint="letters, digits, '.', '_', '~' and '-' only: it is placed in a URL path",
)
"""Names the sidecar puts in a URL path: entities, remote resources, event code names."""

URL: Final = Text(
    pattern=r"https?://\S+", hint="an absolute http:// or https:// URL without spaces"
)
NONBLANK: Final = Text(nonblank=True)

LOCALIZED: Final = Named[Localized](
    name="Localized",
    description='A label: one string, or one string per language such as { fr = "…", en = "…" }.',
    node=OneOf[Localized](branches=(Text(), MapOf[str](value=Text(), min_items=1))),
)

SELECT_OPTION: Final = Record[SelectOption](
    name="SelectOption",
    description="One static choice of a select.",
    build=SelectOption,
    keys=(
        Key(name="value", node=NONBLANK, required=True, description="The value stored."),
        Key(name="label", node=LOCALIZED, required=True, description="What the merchant sees."),
    ),
)

SELECT_OPTIONS: Final = ArrayOf(
    item=SELECT_OPTION,
    min_items=1,
    unique_by=lambda option: option.value,
    unique_key="value",
    unique_what="option value",
)
"""The static choices of a select: at least one, each value once."""
