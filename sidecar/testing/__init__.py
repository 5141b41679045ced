"""Stand-ins for the sidecar's two peers, served for real over loopback.

- `FakeShopimind`: ShopiMind's REST API as the sidecar uses it, with its quirks and
  faults on demand;
- `FakeVendorApp`: a vendor app implementing the whole app bridge, with generated data;
- `RecordingShopimind`: in front of `FakeShopimind`, records which installation and which
  replica (by its `User-Agent`) wrote what, and when (the multi-process tests);
- `running(app)`: serves any of them (any ASGI app) on 127.0.0.1 with a free port.

The test suite uses them, the `demo` command runs the whole flow against them, and a
vendor can use them to try an `integration.toml` before its own app is ready.
"""

from sidecar.testing.recording import RecordingShopimind
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp

__all__ = ["Dataset", "FakeShopimind", "FakeVendorApp", "RecordingShopimind", "running"]
