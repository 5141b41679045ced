"""The demo: the whole flow of the sidecar in one command, against embedded peers."""

from sidecar.demo.run import example_declaration, run_demo

__all__ = ["example_declaration", "run_demo"]
