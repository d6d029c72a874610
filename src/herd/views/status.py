"""What a run is doing right now, read from the journal (any terminal, any process)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

from herd.engine.executor.output import read_file_tail
from herd.engine.journal import Journal, honest_run
from herd.store import Store

if TYPE_CHECKING:
    from herd.store.journal import AttemptRow


class Worker(TypedDict):
    """A busy worker (a run's slot, or a map's running job)."""

    worker: str
    task: str
    attempt: int
    elapsed: float
    last_line: str
    log: str | None


class Snapshot(TypedDict):
    """`herd status --json`."""

    run: str
    kind: str
    state: str
    started_at: float
    ended_at: float | None
    exit_code: int | None
    counts: dict[str, int]
    workers: list[Worker]
    resume: NotRequired[str]
    owner_gone: NotRequired[bool]
    error: NotRequired[str]


class TaskShown(TypedDict):
    id: str
    state: str
    attempts: int
    reason: str
    last_line: str


class Detail(Snapshot):
    """The MCP `status` tool: the snapshot, the phase and every task."""

    phase: str
    tasks: list[TaskShown]


def last_line(path: str | None) -> str:
    """The last line a worker wrote to its log (what `status` and the live display show)."""
    if not path:
        return ""
    lines = read_file_tail(Path(path)).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def snapshot(store: Store, run_id: str | None = None) -> Snapshot:
    journal = Journal.open(store, run_id)
    run = honest_run(journal)
    now = time.time()
    workers: list[Worker] = [
        {
            "worker": a["worker"] or "",
            "task": a["task_id"],
            "attempt": a["attempt"],
            "elapsed": round(now - a["started_at"], 1),
            "last_line": last_line(a["log_path"]),
            "log": a["log_path"],
        }
        for a in journal.attempts()
        if a["ended_at"] is None and run["state"] == "running"
    ]
    if run["kind"] != "run" and run["state"] == "running":
        workers = _map_jobs(journal.run_dir / "events.jsonl", now)
    snap: Snapshot = {
        "run": journal.run_id,
        "kind": run["kind"],
        "state": run["state"],
        "started_at": run["created_at"],
        "ended_at": run["ended_at"],
        "exit_code": run["exit_code"],
        "counts": journal.counts(),
        "workers": workers,
    }
    if "resume" in run:
        snap["resume"] = run["resume"]
    if "owner_gone" in run:
        snap["owner_gone"] = run["owner_gone"]
    error = (run["summary"] or {}).get("error")
    if error:
        snap["error"] = str(error)
    return snap


def phase(run_dir: Path, state: str) -> str:
    """What the run is busy with, from the newest phase-like event in its events.jsonl
    (working, wave N, stacking, testing, pushing, ... or how it ended)."""
    if state != "running":
        return state
    from herd.engine import events as ev  # only here: `herd status` need not load it

    phase_events = (
        ev.RunStart,
        ev.RunResume,
        ev.WaveStart,
        ev.Phase,
        ev.RunEnd,
        ev.LandStart,
        ev.MapStart,
        ev.MapResume,
        ev.PipelineStart,
    )
    tail = read_file_tail(run_dir / "events.jsonl").decode(errors="replace").splitlines()
    for line in reversed(tail):
        event = ev.parse(line)  # None for the tail's first line, cut, or a half-written last
        match event:
            case ev.WaveStart():
                return f"working (wave {event.wave})"
            case ev.LandStart():
                return "landing"
            case ev.Phase():
                return f"{event.phase} ({event.detail})" if event.detail else event.phase
            case ev.RunEnd():
                return event.state
            case _ if isinstance(event, phase_events):
                return "working"
    return "starting"


def detail(store: Store, run_id: str | None = None) -> Detail:
    """`snapshot` plus each task's state and last output line, and the current phase: one
    call that answers "where is this run?" for an agent polling it."""
    snap = snapshot(store, run_id)
    journal = Journal.open(store, snap["run"])
    last_attempt: dict[str, AttemptRow] = {a["task_id"]: a for a in journal.attempts()}
    running = {w["task"]: w["last_line"] for w in snap["workers"]}
    tasks: list[TaskShown] = []
    for row in journal.tasks():
        last = last_attempt.get(row["task_id"])
        tail_lines = ((last["tail"] if last else "") or "").strip().splitlines()
        line = running.get(row["task_id"]) or (tail_lines[-1] if tail_lines else "")
        tasks.append(
            {
                "id": row["task_id"],
                "state": row["state"],
                "attempts": row["attempts"],
                "reason": row["reason"] or "",
                "last_line": line,
            }
        )
    return {**snap, "phase": phase(journal.run_dir, snap["state"]), "tasks": tasks}


def _map_jobs(events: Path, now: float) -> list[Worker]:
    """A map journals a job when it ends (in batches, for speed): what runs now is in its
    latest `progress` event, near the end of events.jsonl."""
    from herd.engine import events as ev

    for line in reversed(read_file_tail(events, 256 * 1024).splitlines()):
        if b'"event": "progress"' not in line:
            continue
        event = ev.parse(line)
        if not isinstance(event, ev.Progress):
            continue
        return [
            {
                "worker": f"#{job['seq']}",
                "task": " ".join(job["items"]),
                "attempt": job["attempt"],
                "elapsed": round(now - (job["started"] or now), 1),
                "last_line": "",
                "log": None,
            }
            for job in event.jobs
        ]
    return []
