"""`python -m sidecar` is the same as the `shopimind-sidecar` command."""

import gc

# The imports build objects that all live on (modules, classes): collecting garbage
# among them is wasted work, ~10% of `serve`'s start. The command line turns the
# collector back on (`sidecar.cli`: at once, or for `serve` after its imports).
gc.disable()

from sidecar.cli import main  # noqa: E402 - after the collector is off

raise SystemExit(main())
