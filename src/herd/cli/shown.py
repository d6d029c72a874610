"""How a run's, a map's or a pipeline's events are shown, chosen without click (the
click-free `herd map` path uses it too)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from herd.engine.journal import Listener


def listeners(as_json: bool, *, items: bool = False, live: bool = True) -> list[Listener]:
    """How events are shown, for a run as for a map: JSONL with --json, the live display on
    a terminal (rich, loaded only then; `live=False` declines it), one plain line per event
    otherwise (pipes, CI, HERD_PROGRESS=plain; `items`: the lines of a map or pipeline)."""
    from herd.views.progress import JsonProgress, PlainProgress

    if as_json:
        return [JsonProgress()]
    if live and sys.stderr.isatty() and os.environ.get("HERD_PROGRESS", "") != "plain":
        from herd.views.live import LiveDisplay

        return [LiveDisplay()]
    return [PlainProgress(items=items)]


def close_listeners(chosen: list[Listener]) -> None:
    """Stop displays that own the terminal (the live one), even when the run raised."""
    for listener in chosen:
        close = getattr(listener, "close", None)
        if close is not None:
            close()
