"""Seeing the replicas: `GET /admin/replicas` (both tokens), `/health`'s `replicas`, the
`sidecar_replicas_alive` gauge, and `shopimind-sidecar replicas` (table and --json)."""

from __future__ import annotations

import json
from pathlib import Path

from sidecar import __version__
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET
from tests.harness import EXAMPLE, sidecar_stack
from tests.test_cli import run

TOKEN = "t" * 40
READONLY = "r" * 40
OTHER = (
    "INSERT INTO replicas VALUES ('web-2', '0.0.9', 'host-2', 7, 30, "
    "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:10.000Z', '2026-01-01T00:00:40.000Z', NULL)"
)


async def test_the_api_health_and_metrics_show_the_replicas(tmp_path: Path) -> None:
    env = {"REPLICA_ID": "web-1", "ADMIN_TOKEN": TOKEN, "ADMIN_READONLY_TOKEN": READONLY}
    async with sidecar_stack(tmp_path, env=env) as stack:
        with stack.writable() as db:
            db.execute(OTHER)  # a replica that died long ago
            db.execute(
                "INSERT INTO leases (name, owner, acquired_at, expires_at) "
                "VALUES ('installation:x', 'web-1/0a0b0c0d', '2026-01-01T00:00:00.000Z', "
                "'2999-01-01T00:00:00.000Z')"
            )
        for token in (TOKEN, READONLY):
            answer = await stack.http.get(
                stack.url + "/admin/replicas", headers={"x-admin-token": token}
            )
            assert answer.status_code == 200
            body = answer.json()
            assert (body["success"], body["self"], body["alive"]) == (True, "web-1", 1)
            first, second = body["items"]
            assert {k: first[k] for k in ("id", "alive", "self", "version")} == {
                "id": "web-1",
                "alive": True,
                "self": True,
                "version": __version__,
            }
            assert first["leases_held"] >= 1  # ours, and whatever serve holds (the outbox)
            assert set(first) == {
                "id", "version", "host", "pid", "started_at", "heartbeat_at", "stopped_at",
                "alive", "leases_held", "self",
            }  # fmt: skip
            assert (second["id"], second["alive"], second["self"]) == ("web-2", False, False)
        refused = await stack.http.get(stack.url + "/admin/replicas")
        assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")

        health = (await stack.http.get(stack.url + "/health")).json()
        assert health["replicas"] == {"alive": 1, "self": "web-1"}
        assert health["db"] == "ok"
        assert "installations" in health  # everything else is still there

        metrics = await stack.http.get(stack.url + "/metrics", headers={"x-admin-token": TOKEN})
        assert "shopimind_sidecar_replicas_alive 1.0" in metrics.text.splitlines()


def _env(tmp_path: Path, database: Path) -> dict[str, str]:
    return {
        "INTEGRATION_FILE": str(EXAMPLE),
        "DATABASE_PATH": str(database),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CREDENTIALS_KEY": CREDENTIALS_KEY_HEX,
        "APP_BASE_URL": "http://127.0.0.1:9/shopimind",
        "APP_SECRET": APP_SECRET,
    }


async def test_the_command_lists_them_as_a_table_and_as_json(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path, env={"REPLICA_ID": "web-1"}) as stack:
        with stack.writable() as db:
            db.execute(OTHER)
    env = _env(tmp_path, tmp_path / "sidecar.sqlite")
    table = run(env, "replicas")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "0 of 2 replica(s) alive"  # web-1 stopped cleanly, web-2 is dead
    assert lines[1].split() == ["REPLICA", "STATE", "VERSION", "STARTED", "HEARTBEAT", "LEASES"]
    assert [line.split()[:3] for line in lines[2:]] == [
        ["web-1", "stopped", __version__],
        ["web-2", "dead", "0.0.9"],
    ]
    listed = run(env, "replicas", "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert [(i["id"], i["alive"], i["self"], i["stopped_at"] is None) for i in items] == [
        ("web-1", False, False, False),
        ("web-2", False, False, True),
    ]


def test_the_command_on_an_empty_database(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run(_env(tmp_path, tmp_path / "data" / "s.sqlite"), "replicas")
    assert (result.returncode, result.stdout) == (0, "no replica has run on this database yet\n")
