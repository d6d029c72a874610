"""Measuring a job's whole process tree."""

from __future__ import annotations

import contextlib


def tree_rss(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, in bytes (0 if it is gone)."""
    # Imported here: only jobs with a memory ceiling pay psutil's import time.
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total
