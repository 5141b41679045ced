"""The merchant's configuration of an installation, stored as PROTOCOL §2 prescribes.

Non-sensitive values are kept together as one JSON object (state key `config`). Each
value of a field the schema declares `sensitive` is sealed on its own (state key
`config.secret.<field>`, JSON-encoded, so any type round-trips). Saving a new payload
replaces the previous configuration: an empty sensitive value erases the stored secret,
and so does a sensitive key absent from the payload. Loading merges both back into one
map, the `settings` the vendor's app receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from sidecar.declaration.model import ConfigSchema
from sidecar.store.interface import State

__all__ = [
    "CONFIG_KEY",
    "SECRET_PREFIX",
    "config_writes",
    "load_settings",
    "save_configs",
    "settings_of",
]

CONFIG_KEY: Final = "config"
SECRET_PREFIX: Final = "config.secret."  # noqa: S105 - a key name, not a secret


def config_writes(
    schema: ConfigSchema, configs: Mapping[str, object], stored_keys: Iterable[str]
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The state writes (values, secrets, keys to delete) that replace the stored
    configuration with `configs`; `stored_keys` are the installation's state keys now."""
    sensitive = schema.sensitive_keys()
    plain = {key: value for key, value in configs.items() if key not in sensitive}
    secrets: dict[str, str] = {}
    erased: list[str] = []
    for key in sorted(sensitive):
        value = configs.get(key)
        if value is None or value == "":
            erased.append(SECRET_PREFIX + key)
        else:
            secrets[SECRET_PREFIX + key] = json.dumps(value, ensure_ascii=False)
    # Secrets stored under keys the schema no longer declares sensitive are dropped too.
    stale = [
        key
        for key in stored_keys
        if key.startswith(SECRET_PREFIX) and key[len(SECRET_PREFIX) :] not in sensitive
    ]
    return {CONFIG_KEY: json.dumps(plain, ensure_ascii=False)}, secrets, [*erased, *stale]


def settings_of(schema: ConfigSchema, configs: Mapping[str, object]) -> dict[str, object]:
    """The settings `load_settings` reads back once `configs` is saved (before it is)."""
    sensitive = schema.sensitive_keys()
    return {
        key: value
        for key, value in configs.items()
        if key not in sensitive or (value is not None and value != "")
    }


async def save_configs(
    state: State, schema: ConfigSchema, installation_id: str, configs: Mapping[str, object]
) -> None:
    """Replace the stored configuration with `configs`, in one transaction."""
    stored = [entry.key for entry in await state.keys(installation_id)]
    values, secrets, delete = config_writes(schema, configs, stored)
    await state.write_many(installation_id, values=values, secrets=secrets, delete=delete)


async def load_settings(state: State, installation_id: str) -> dict[str, object]:
    """The stored configuration with its secrets decrypted: one map, as the app sees it."""
    loaded = await state.get_json(installation_id, CONFIG_KEY)
    settings: dict[str, object] = dict(loaded) if isinstance(loaded, dict) else {}
    for entry in await state.keys(installation_id):
        if entry.key.startswith(SECRET_PREFIX):
            text = await state.get(installation_id, entry.key)
            if text is not None:
                settings[entry.key[len(SECRET_PREFIX) :]] = json.loads(text)
    return settings
