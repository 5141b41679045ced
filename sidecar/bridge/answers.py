"""What the vendor's app may answer, as typed values, and the checks that get us there.

The app is code we do not control, written in any language by someone reading a table in
the docs. Every answer is checked against the contract before anything else touches it,
so a mistake in the app becomes one precise message ("'sources'[2] is 7, not a non-empty
string") instead of a `KeyError` deep in the sync engine, or worse, a silent skip.

Messages describe a bad value by its kind (`a list`, `an empty string`) and echo only
numbers, booleans and null: strings and containers may hold customer data or secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ConnectionCheck",
    "ExternalAccount",
    "LifecycleAnswer",
    "MalformedAnswerError",
    "RemoteOption",
    "SyncPage",
    "parse_connection_check",
    "parse_lifecycle_answer",
    "parse_provisioning",
    "parse_remote_options",
    "parse_sources",
    "parse_sync_page",
]

_SHOWN_KEY_CHARS = 64


class MalformedAnswerError(ValueError):
    """The answer is JSON but not the shape the contract asks for; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionCheck:
    """The app's verdict on the merchant's settings: `ok`, or not with the app's reason."""

    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteOption:
    """One choice of a select whose options the app provides."""

    value: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalAccount:
    """The app's own account for this shop: the correlation between both systems."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleAnswer:
    """The app's answer to a lifecycle notification."""

    ok: bool
    error: str | None = None
    external_account: ExternalAccount | None = None
    integrator_config: dict[str, object] | None = None
    """Values of `owner: integrator` config fields the app sets (checked by the lifecycle)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPage:
    """One page of items (already ShopiMind-shaped) and the token of the next, or None."""

    items: tuple[dict[str, object], ...]
    next: str | None


def _shown(value: object) -> str:
    """A bad value, described without echoing anything that could be data."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - json.loads makes nothing else


def _object(answer: object) -> dict[str, object]:
    if not isinstance(answer, dict):
        raise MalformedAnswerError(f"must be a JSON object; got {_shown(answer)}")
    return answer


def _required(answer: Mapping[str, object], key: str, where: str = "") -> object:
    if key not in answer:
        raise MalformedAnswerError(f"{where}.{key} is missing" if where else f"'{key}' is missing")
    return answer[key]


def _ok(answer: Mapping[str, object]) -> bool:
    ok = _required(answer, "ok")
    if not isinstance(ok, bool):
        raise MalformedAnswerError(f"'ok' must be true or false; got {_shown(ok)}")
    return ok


def _error(answer: Mapping[str, object]) -> str | None:
    error = answer.get("error")
    if error is not None and not isinstance(error, str):
        raise MalformedAnswerError(f"'error' must be a string or null; got {_shown(error)}")
    return error


def _text(value: object, where: str) -> str:
    """A string, or an integer turned into one (apps often key things by numeric id)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedAnswerError(f"{where} must be a string (or an integer); got {_shown(value)}")


def _list(answer: Mapping[str, object], key: str) -> list[object]:
    value = _required(answer, key)
    if not isinstance(value, list):
        raise MalformedAnswerError(f"'{key}' must be a list; got {_shown(value)}")
    return value


def parse_connection_check(answer: object) -> ConnectionCheck:
    """`{ok: true}` or `{ok: false, error}` → ConnectionCheck (an ok answer carries no error)."""
    body = _object(answer)
    ok = _ok(body)
    error = _error(body)
    return ConnectionCheck(ok=ok, error=None if ok else error)


def parse_remote_options(answer: object) -> tuple[RemoteOption, ...]:
    """`{data: [{value, label}]}` → options; integer values or labels become strings."""
    data = _list(_object(answer), "data")
    options: list[RemoteOption] = []
    for index, entry in enumerate(data):
        where = f"'data'[{index}]"
        if not isinstance(entry, dict):
            raise MalformedAnswerError(f"{where} must be an object; got {_shown(entry)}")
        value = _text(_required(entry, "value", where), f"{where}.value")
        label = _text(_required(entry, "label", where), f"{where}.label")
        options.append(RemoteOption(value=value, label=label))
    return tuple(options)


def _external_account(value: object) -> ExternalAccount | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedAnswerError(
            f"'external_account' must be an object or null; got {_shown(value)}"
        )
    account_id = _text(_required(value, "id", "'external_account'"), "'external_account'.id")
    if not account_id:
        raise MalformedAnswerError("'external_account'.id must not be empty")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise MalformedAnswerError(
            f"'external_account'.name must be a string or null; got {_shown(name)}"
        )
    return ExternalAccount(id=account_id, name=name)


def parse_lifecycle_answer(answer: object) -> LifecycleAnswer:
    """`{ok, error?, external_account?: {id, name}, integrator_config?: {...}}`."""
    body = _object(answer)
    ok = _ok(body)
    error = _error(body)
    values = body.get("integrator_config")
    if values is not None and not isinstance(values, dict):
        raise MalformedAnswerError(f"`integrator_config` must be an object, not {_shown(values)}")
    return LifecycleAnswer(
        ok=ok,
        error=None if ok else error,
        external_account=_external_account(body.get("external_account")),
        integrator_config=values,
    )


def parse_provisioning(answer: object) -> dict[str, object]:
    """Any JSON object: its content is a provisioning plan, checked by the declaration parser."""
    return _object(answer)


def parse_sources(answer: object) -> tuple[str, ...]:
    """`{sources: [...]}` → the source keys: non-empty strings, each listed once."""
    sources = _list(_object(answer), "sources")
    keys: list[str] = []
    seen: set[str] = set()
    for index, key in enumerate(sources):
        if not isinstance(key, str) or not key:
            raise MalformedAnswerError(
                f"'sources' must be a list of non-empty strings; item {index} is {_shown(key)}"
            )
        if key in seen:
            raise MalformedAnswerError(
                f"'sources' must list each source once; item {index} repeats "
                f"{key[:_SHOWN_KEY_CHARS]!r}"
            )
        seen.add(key)
        keys.append(key)
    return tuple(keys)


def parse_sync_page(answer: object, *, limit: int) -> SyncPage:
    """`{items: [objects], next: token | null}` → SyncPage; more than `limit` items is refused.

    Both keys are required: an app that spells the token differently (`cursor`,
    `next_page`) would otherwise end every sync after its first page without a word.
    """
    body = _object(answer)
    items = _list(body, "items")
    if len(items) > limit:
        raise MalformedAnswerError(f"{len(items)} items in one page; the limit asked was {limit}")
    objects: list[dict[str, object]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MalformedAnswerError(f"'items'[{index}] must be an object; got {_shown(item)}")
        objects.append(item)
    token = _required(body, "next")
    if token is not None and (not isinstance(token, str) or not token):
        raise MalformedAnswerError(
            f"'next' must be a non-empty string, or null on the last page; got {_shown(token)}"
        )
    return SyncPage(items=tuple(objects), next=token)
