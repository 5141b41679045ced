"""Why an operator's request was refused, as values the routes and the CLI both translate.

    AdminError                 status  code
    ├── InvalidRequestError    400     invalid_request    the request itself is wrong
    ├── UnknownInstallationError 404   unknown_installation
    ├── NotFoundError          404     not_found          a cursor, a payload… that is not there
    ├── BusyError              409     busy               the installation is syncing (or queued)
    ├── NotPossibleError       409     not_possible       not active, no access token…
    └── UnavailableError       503     unavailable        no sync capacity now, or stopping

Messages are for the operator: they name ids and rules, never a secret or a payload.
"""

from __future__ import annotations

from typing import ClassVar

from sidecar.errors import SidecarError

__all__ = [
    "AdminError",
    "BusyError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPossibleError",
    "UnavailableError",
    "UnknownInstallationError",
]


class AdminError(SidecarError):
    """An operator's request that cannot be done; `status` and `code` say how to answer."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"


class InvalidRequestError(AdminError):
    """The request is malformed (a bad id, a missing field)."""


class UnknownInstallationError(AdminError):
    """No installation has this id."""

    status = 404
    code = "unknown_installation"


class NotFoundError(AdminError):
    """The thing asked for (a cursor, a logged payload) does not exist."""

    status = 404
    code = "not_found"


class BusyError(AdminError):
    """The installation is being synced (or provisioned, or is queued for a sync)."""

    status = 409
    code = "busy"


class NotPossibleError(AdminError):
    """The installation cannot do this now (not active, no access token…)."""

    status = 409
    code = "not_possible"


class UnavailableError(AdminError):
    """The sidecar cannot take it now (every sync worker busy, or stopping): retry later."""

    status = 503
    code = "unavailable"
