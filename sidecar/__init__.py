"""shopimind-sidecar: one executable that turns a vendor's app into a ShopiMind integration."""

__all__ = ["__version__"]

__version__ = "0.1.0"
