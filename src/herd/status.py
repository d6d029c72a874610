"""What a run is doing right now, read from the journal (any terminal, any process)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from herd.executor.output import read_file_tail
from herd.journal import Journal
from herd.store import Store


def last_line(path: str | None) -> str:
    """The last line a worker wrote to its log (what `status` and the live display show)."""
    if not path:
        return ""
    lines = read_file_tail(Path(path)).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def snapshot(store: Store, run_id: str | None = None) -> dict[str, Any]:
    journal = Journal.open(store, run_id)
    run = journal.run()
    now = time.time()
    workers = [
        {"worker": a["worker"], "task": a["task_id"], "attempt": a["attempt"],
         "elapsed": round(now - a["started_at"], 1), "last_line": last_line(a["log_path"]),
         "log": a["log_path"]}
        for a in journal.attempts() if a["ended_at"] is None and run["state"] == "running"
    ]
    return {"run": journal.run_id, "kind": run["kind"], "state": run["state"],
            "started_at": run["created_at"], "ended_at": run["ended_at"],
            "exit_code": run["exit_code"], "counts": journal.counts(), "workers": workers}
