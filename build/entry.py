"""The frozen binary's entry point: the same as `python -m sidecar`."""

from sidecar.cli import main

raise SystemExit(main())
