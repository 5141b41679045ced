"""`python -m sidecar` is the same as the `shopimind-sidecar` command."""

from sidecar.cli import main

raise SystemExit(main())
