"""herd: run a batch of independent tasks concurrently and land them as one change."""

__version__ = "0.1.0"

__all__ = ["__version__"]
