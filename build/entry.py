"""The frozen binary's entry point: the same as `python -m sidecar`."""

import gc

# As in sidecar/__main__.py: no garbage collection during the start (the command line
# turns the collector back on: at once, or for `serve` after its imports).
gc.disable()

from sidecar.cli import main  # noqa: E402 - after the collector is off

raise SystemExit(main())
