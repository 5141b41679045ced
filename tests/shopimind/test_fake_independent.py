"""The fake ShopiMind is written from PROTOCOL.md, not from the code it tests: it imports
nothing of the sidecar's reading of the contract, and enforces the chunk sizes itself."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

import sidecar.testing.shopimind_api as fake_module
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import DEFAULT_TOKEN, FakeShopimind


def test_the_fake_imports_nothing_of_the_sidecar() -> None:
    tree = ast.parse(Path(fake_module.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert sorted(name for name in imported if name.startswith("sidecar")) == []


async def test_chunk_limits_and_delete_keys_from_the_protocol() -> None:
    api = FakeShopimind()
    headers = {"spm-api-key": DEFAULT_TOKEN}
    async with running(api) as url, httpx.AsyncClient(base_url=url, headers=headers) as http:
        cases = {
            "customers": 50,
            "customers-groups": 100,
            "orders-statuses": 100,
            "custom-data-records/7": 20,
            "products/12/images": 50,
        }
        for path, limit in cases.items():
            items = [{"id": str(i)} for i in range(limit + 1)]
            too_many = await http.post(f"/v1/{path}", json=items)
            assert too_many.status_code == 400, path
            assert f"at most {limit} items" in too_many.text
        deleted = await http.post(
            "/v1/orders-statuses/bulk-delete", json={"order_status_ids": [1, 2]}
        )
        assert deleted.json()["sent_count"] == 2
        unknown = await http.post("/v1/unicorns", json=[{"id": 1}])
        assert unknown.status_code == 404
