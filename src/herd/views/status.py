"""What a run is doing right now, read from the journal (any terminal, any process)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from herd.engine.executor.output import read_file_tail
from herd.engine.journal import Journal, honest_run
from herd.store import Store


def last_line(path: str | None) -> str:
    """The last line a worker wrote to its log (what `status` and the live display show)."""
    if not path:
        return ""
    lines = read_file_tail(Path(path)).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def snapshot(store: Store, run_id: str | None = None) -> dict[str, Any]:
    journal = Journal.open(store, run_id)
    run = honest_run(journal)
    now = time.time()
    workers = [
        {"worker": a["worker"], "task": a["task_id"], "attempt": a["attempt"],
         "elapsed": round(now - a["started_at"], 1), "last_line": last_line(a["log_path"]),
         "log": a["log_path"]}
        for a in journal.attempts() if a["ended_at"] is None and run["state"] == "running"
    ]
    if run["kind"] != "run" and run["state"] == "running":
        workers = _map_jobs(journal.run_dir / "events.jsonl", now)
    return {"run": journal.run_id, "kind": run["kind"], "state": run["state"],
            "started_at": run["created_at"], "ended_at": run["ended_at"],
            "exit_code": run["exit_code"], "counts": journal.counts(), "workers": workers,
            **{k: run[k] for k in ("resume", "owner_gone") if k in run},
            **({"error": run["summary"]["error"]} if (run.get("summary") or {}).get("error")
               else {})}


PHASE_EVENTS = ("run_start", "run_resume", "wave_start", "phase", "run_end", "land_start",
                "map_start", "map_resume", "pipeline_start")


def phase(run_dir: Path, state: str) -> str:
    """What the run is busy with, from the newest phase-like event in its events.jsonl
    (working, wave N, stacking, testing, pushing, ... or how it ended)."""
    if state != "running":
        return state
    tail = read_file_tail(run_dir / "events.jsonl").decode(errors="replace").splitlines()
    for line in reversed(tail):
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the tail's first line may be cut, the last half-written
        name = event.get("event") if isinstance(event, dict) else None
        if name not in PHASE_EVENTS:
            continue
        if name == "wave_start":
            return f"working (wave {event.get('wave')})"
        if name == "land_start":
            return "landing"
        if name == "phase":
            detail = event.get("detail")
            return f"{event.get('phase')} ({detail})" if detail else str(event.get("phase"))
        return "working" if name != "run_end" else str(event.get("state"))
    return "starting"


def detail(store: Store, run_id: str | None = None) -> dict[str, Any]:
    """`snapshot` plus each task's state and last output line, and the current phase: one
    call that answers "where is this run?" for an agent polling it."""
    snap = snapshot(store, run_id)
    journal = Journal.open(store, snap["run"])
    last_attempt: dict[str, dict[str, Any]] = {}
    for attempt in journal.attempts():
        last_attempt[attempt["task_id"]] = attempt
    running = {w["task"]: w["last_line"] for w in snap["workers"]}
    tasks = []
    for row in journal.tasks():
        attempt = last_attempt.get(row["task_id"]) or {}
        tail_lines = (attempt.get("tail") or "").strip().splitlines()
        line = running.get(row["task_id"]) or (tail_lines[-1] if tail_lines else "")
        tasks.append({"id": row["task_id"], "state": row["state"], "attempts": row["attempts"],
                      "reason": row["reason"] or "", "last_line": line})
    return {**snap, "phase": phase(journal.run_dir, snap["state"]), "tasks": tasks}


def _map_jobs(events: Path, now: float) -> list[dict[str, Any]]:
    """A map journals a job when it ends (in batches, for speed): what runs now is in its
    latest `progress` event, near the end of events.jsonl."""
    for line in reversed(read_file_tail(events, 256 * 1024).splitlines()):
        if b'"event": "progress"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        return [{"worker": f"#{job['seq']}", "task": " ".join(job.get("items", [])),
                 "attempt": job.get("attempt", 1),
                 "elapsed": round(now - float(job.get("started") or now), 1),
                 "last_line": "", "log": None} for job in event.get("jobs", [])]
    return []
