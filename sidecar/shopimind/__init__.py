"""The edge toward ShopiMind: the REST API client, bulk pushes, provisioning, endpoint facts.

- `sidecar.shopimind.client`: `ShopimindClient` (one per process) and `ShopimindApi` (one
  installation's view, bound to its access token);
- `sidecar.shopimind.bulk`: `BulkResult`, what a bulk push achieved;
- `sidecar.shopimind.provisioning`: `provision()`, the idempotent find-or-create of §4;
- `sidecar.shopimind.resources`: bulk endpoints, chunk sizes, delete keys.

Nothing is re-exported here on purpose: the declaration model imports `resources`, and
provisioning imports the declaration model, so this package must stay free of imports to
keep every import order cycle-free and cheap.
"""

__all__: list[str] = []
