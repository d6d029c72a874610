"""herd: run a batch of independent tasks concurrently and land them as one change.

The public surface is small and loaded on first use, so `herd --version` and
`herd ready` pay only for what they touch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Queue": "herd.queue.core",
    "Store": "herd.store",
    "Journal": "herd.engine.journal",
    "HerdError": "herd.errors",
    "make_plan": "herd.run.plan",
    "Scope": "herd.run.scope",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'herd' has no attribute {name!r}")
