"""`shopimind-sidecar installations --show-inbound-secret <id>`: the one way an operator reads
an inbound secret, audited and logged, never shown otherwise."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import INBOUND_SECRET
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import open_sqlite_store
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.test_cli import run


async def seed(database: Path) -> str:
    store = await open_sqlite_store(
        database, cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    try:
        await store.installations.upsert(
            InstallationUpsert(installation_id="inst_7", status="active")
        )
        await store.installations.upsert(
            InstallationUpsert(installation_id="inst_8", status="uninstalled")
        )
        await store.installations.upsert(
            InstallationUpsert(installation_id="inst_9", status="active")
        )
        return await store.state.setdefault_secret(
            "inst_9", INBOUND_SECRET, lambda: "insec_" + "9" * 48
        )
    finally:
        await store.aclose()


async def test_show_inbound_secret_prints_it_and_leaves_a_trace(valid_env: dict[str, str]) -> None:
    database = Path(valid_env["DATABASE_PATH"])
    existing = await seed(database)

    shown = run(valid_env, "installations", "--show-inbound-secret", "inst_9")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == existing + "\n"
    assert existing not in shown.stderr
    log = [json.loads(line) for line in shown.stderr.splitlines()]
    line = next(entry for entry in log if entry["msg"] == "inbound secret shown to an operator")
    assert (line["installation_id"], line["created"]) == ("inst_9", False)
    assert str(line["actor"]).startswith("cli:")

    created = run(valid_env, "installations", "--show-inbound-secret", "inst_7")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("insec_")
    assert len(secret) == len("insec_") + 48
    again = run(valid_env, "installations", "--show-inbound-secret", "inst_7")
    assert again.stdout.strip() == secret  # created once, then the same

    with sqlite3.connect(database) as connection:
        audit = connection.execute(
            "SELECT actor, action, installation_id, detail_json FROM audit_log ORDER BY id"
        ).fetchall()
        stored = connection.execute("SELECT value FROM installation_state").fetchall()
    assert [(a[1], a[2], json.loads(a[3])) for a in audit] == [
        ("inbound_secret.show", "inst_9", {"created": False}),
        ("inbound_secret.show", "inst_7", {"created": True}),
        ("inbound_secret.show", "inst_7", {"created": False}),
    ]
    assert all(secret not in str(row) and existing not in str(row) for row in audit + stored)

    listing = run(valid_env, "installations", "--json")
    assert listing.returncode == 0
    assert secret not in listing.stdout + listing.stderr
    assert existing not in listing.stdout + listing.stderr


async def test_show_inbound_secret_refuses_unknown_and_uninstalled(
    valid_env: dict[str, str],
) -> None:
    await seed(Path(valid_env["DATABASE_PATH"]))
    unknown = run(valid_env, "installations", "--show-inbound-secret", "ghost")
    assert unknown.returncode == 1
    assert "no installation 'ghost'" in unknown.stderr
    gone = run(valid_env, "installations", "--show-inbound-secret", "inst_8")
    assert gone.returncode == 1
    assert "uninstalled" in gone.stderr
    assert unknown.stdout == gone.stdout == ""
