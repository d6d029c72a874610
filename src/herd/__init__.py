"""herd: run a batch of independent tasks concurrently and land them as one change.

The library API is `__all__`: `run_batch` (herd run), `map` (herd map), `Queue` (the
beads-compatible task queue), their typed outcomes and `HerdError`. It is loaded on
first use, so `herd --version` and `herd ready` pay only for what they touch.
"""

from __future__ import annotations

# Not `typing`'s TYPE_CHECKING: importing typing costs every command several ms (a claim's
# whole SQL takes 3); mypy reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ loads them on first use
    from typing import Any

    from herd.api import map as map
    from herd.api import run_batch as run_batch
    from herd.errors import HerdError as HerdError
    from herd.items.mapper import MapOutcome as MapOutcome
    from herd.queue.core import Queue as Queue
    from herd.run.batch import RunOutcome as RunOutcome
    from herd.store import Store as Store

__version__ = "0.1.0"

_PUBLIC = {
    "run_batch": "herd.api",
    "map": "herd.api",
    "Queue": "herd.queue.core",
    "Store": "herd.store",
    "RunOutcome": "herd.run.batch",
    "MapOutcome": "herd.items.mapper",
    "HerdError": "herd.errors",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'herd' has no attribute {name!r}")
