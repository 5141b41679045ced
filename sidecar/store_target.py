"""Where the settings put the store: a PostgreSQL server (DATABASE_URL) or the SQLite file
(DATABASE_PATH). Pure: `check` describes the store without loading trio, a driver or the
store itself (tests/test_lean_start.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.postgres_url import DEFAULT_DATABASE_SCHEMA, redact_url

if TYPE_CHECKING:
    from sidecar.config import Settings

__all__ = ["StoreTarget", "store_target"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreTarget:
    """Where the store lives: `url` (PostgreSQL, in `schema`) or else the file at `path`."""

    path: Path
    url: str | None = None
    schema: str = DEFAULT_DATABASE_SCHEMA

    @property
    def is_postgres(self) -> bool:
        """True when the store is on a PostgreSQL server."""
        return self.url is not None

    def describe(self) -> str:
        """For people: the file, or the server with its password masked, and the schema."""
        if self.url is None:
            return str(self.path)
        return f"{redact_url(self.url)} (schema {self.schema})"


def store_target(settings: Settings) -> StoreTarget:
    """Where the settings put the store: DATABASE_URL (PostgreSQL) or DATABASE_PATH."""
    url = settings.database_url.reveal() if settings.database_url else None
    return StoreTarget(path=settings.database_path, url=url, schema=settings.database_schema)
