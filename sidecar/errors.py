"""The sidecar's exception tree. Every error the sidecar raises on purpose is one of these.

    SidecarError
    ├── ConfigError          the environment is wrong; carries one problem per variable
    ├── DeclarationError     integration.toml is wrong; carries one problem per path
    ├── LeaseLostError       a lease we held was taken over: a fenced write changed nothing
    ├── SecurityError
    │   └── CipherError      a stored secret cannot be decrypted or is in the wrong format
    └── StoreError           the SQLite store failed or refused an operation
        ├── NotADatabaseError  DATABASE_PATH holds a file that is not SQLite
        ├── MigrationError     the schema in the file does not match this build
        └── StoreClosedError   the store was used after it was closed
    └── UpstreamError        a peer failed: unreachable, timed out, or answered badly
        ├── ShopimindError     the ShopiMind REST API (carries the HTTP status and message)
        └── BridgeError        the vendor's app, called through the app bridge

Library errors are translated at the edge (`raise StoreError(...) from exc`) so callers
catch the sidecar's own classes and messages say what rule was broken and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BridgeError",
    "CipherError",
    "ConfigError",
    "ConfigProblem",
    "DeclarationError",
    "DeclarationProblem",
    "LeaseLostError",
    "MigrationError",
    "NotADatabaseError",
    "SecurityError",
    "ShopimindError",
    "SidecarError",
    "StoreClosedError",
    "StoreError",
    "UpstreamError",
]


class SidecarError(Exception):
    """Base class of every error the sidecar raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration: which variable, and what is expected."""

    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


class ConfigError(SidecarError):
    """The configuration is invalid. `problems` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class DeclarationProblem:
    """One thing wrong with the declaration file: where (`file: dotted.path`) and why."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.reason}"


class DeclarationError(SidecarError):
    """The declaration is invalid. `problems` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[DeclarationProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class LeaseLostError(SidecarError):
    """Our lease `name` at `epoch` is gone (taken over, or not renewed in time): someone
    else may own the work now, so stop it. Raised by a fenced write whose fence is stale
    (it wrote nothing) and by `hold_lease` when its body had to be stopped.

    Not a StoreError on purpose: code that logs a store failure and carries on must not
    carry on after this one.
    """

    def __init__(self, name: str, owner: str, epoch: int, message: str | None = None) -> None:
        self.name = name
        self.owner = owner
        self.epoch = epoch
        super().__init__(message or f"lost the lease {name} (epoch {epoch}) to another holder")


class SecurityError(SidecarError):
    """A security primitive refused its input."""


class CipherError(SecurityError):
    """A stored secret cannot be decrypted: wrong format, tampered, moved, or wrong key."""


class StoreError(SidecarError):
    """The store failed or refused an operation."""


class NotADatabaseError(StoreError):
    """The database path holds a file that is not an SQLite database; it was left untouched."""


class MigrationError(StoreError):
    """The schema recorded in the database file does not match the migrations of this build."""


class StoreClosedError(StoreError):
    """The store was used after `aclose()`."""


class UpstreamError(SidecarError):
    """A peer (ShopiMind, the vendor's app) failed or answered badly. Messages hold no secret."""


class ShopimindError(UpstreamError):
    """The ShopiMind API failed. `status` is the HTTP status (None for a network failure);
    `retry_after_seconds` what its `Retry-After` asked, when it answered one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_seconds: float | None = None
    ) -> None:
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


class BridgeError(UpstreamError):
    """The vendor's app failed or answered something that is not the bridge contract;
    `retry_after_seconds` what its `Retry-After` asked, when it answered one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_seconds: float | None = None
    ) -> None:
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)
