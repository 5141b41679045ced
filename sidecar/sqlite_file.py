"""Checks on the database path that never modify it: run by `check` and before opening."""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["SQLITE_HEADER", "database_path_problem", "is_sqlite_file"]

SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_file(path: Path) -> bool:
    """True when `path` is empty (SQLite adopts it) or starts with the SQLite header."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_HEADER))
    return head in (b"", SQLITE_HEADER)


def database_path_problem(path: Path) -> str | None:
    """What prevents using `path` as the store, or None. Reads, never writes, the file."""
    try:
        return _path_problem(path)
    except OSError as exc:  # a folder on the way that this user may not enter (EACCES)
        return (
            f"cannot reach {path}: {exc.strerror or type(exc).__name__} on "
            f"{exc.filename or path} (the user running the sidecar needs search (x) "
            "permission on every folder above the database)"
        )


def _path_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a folder; give the path of a file, such as {path / 'sidecar.sqlite'}"
    folder = path.parent
    if not folder.exists():
        return f"folder {folder} does not exist; create it (mkdir -p {folder}) or pick another path"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        # The only way to know for sure (root ignores permission bits, a read-only mount
        # does not): SQLite must create its -wal and -shm files next to the database.
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sidecar-probe-"):
            pass
    except OSError as exc:
        return (
            f"folder {folder} is not writable ({exc.strerror or type(exc).__name__}); "
            "SQLite needs to create files beside the database"
        )
    if path.exists():
        try:
            if not is_sqlite_file(path):
                return f"{path} is not an SQLite database; refusing to touch it"
        except OSError as exc:
            return f"cannot read {path} ({exc.strerror or type(exc).__name__})"
    return None
