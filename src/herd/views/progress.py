"""Rendering run events for people: one line per event on stderr (CI, pipes), or JSONL."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from herd.units import plural

Event = dict[str, Any]
MAP_EVENTS = {"map_start", "map_resume", "scale", "item_failed", "pipeline_start",
              "stage_failed"}
STDERR_LINES = 3  # of a failed job, under its failure line


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _slot(event: Event) -> str:
    """The worker slot as attempt_start names it ("w1"): attempt_end carries the executor's
    name for it ("local/w1"), which made the two lines of one attempt disagree."""
    return str(event.get("worker", "")).removeprefix("local/")


def describe(event: Event) -> str | None:
    """One human line for an event, or None for events not worth a line."""
    name = event.get("event")
    task = event.get("task", "")
    if name == "run_start":
        return (f"run {event['run']}: {plural(int(event.get('tasks') or 0), 'task')} in "
                f"{plural(int(event.get('waves') or 0), 'wave')}, "
                f"{plural(int(event.get('workers') or 0), 'worker')} "
                f"(base {str(event.get('base', ''))[:12]})")
    if name == "land_start":
        return f"run {event['run']}: landing {plural(int(event.get('tasks') or 0), 'task')}"
    if name in MAP_EVENTS:
        return describe_map(event)
    if name == "wave_start":
        return f"wave {event['wave']}: {', '.join(event.get('tasks', []))}"
    if name == "attempt_start":
        return (f"{_slot(event)} {'start':<6} {task} (attempt {event.get('attempt')}) "
                f"{event.get('title', '')}")
    if name == "attempt_end":
        return (f"{_slot(event)} {event.get('outcome'):<6} {task} (attempt "
                f"{event.get('attempt')}, {event.get('duration', 0):.1f}s): {event.get('reason', '')}")
    if name == "task_end":
        extra = event.get("commit") or event.get("reason") or ""
        return f"task {task} {event.get('state')}{': ' + str(extra)[:80] if extra else ''}"
    if name == "phase":
        return f"phase: {event.get('phase')}" + (f" ({event['detail']})" if event.get("detail") else "")
    if name == "step":
        return None
    if name == "test_run":
        verdict = "passed" if event.get("exit_code") == 0 else f"failed (exit {event.get('exit_code')})"
        return (f"test [{event.get('purpose')}] on "
                f"{plural(int(event.get('commits') or 0), 'commit')} {verdict} "
                f"in {event.get('duration', 0):.1f}s")
    if name == "run_end":
        return f"run {event['run']} {event.get('state')} (exit {event.get('exit_code')})"
    if name == "message":
        return str(event.get("text", ""))
    return None


def describe_map(event: Event) -> str | None:
    """`herd map` and `herd pipeline` events; a failure shows the last lines of its stderr."""
    name = event.get("event")
    if name == "map_start":
        return (f"map {event['run']}: {plural(int(event['items']), 'item')} in "
                f"{plural(int(event['invocations']), 'invocation')} of {event['batch_size']}, "
                f"{event['workers']} worker{'' if str(event['workers']) == '1' else 's'}")
    if name == "map_resume":
        return (f"map {event['run']}: resuming {plural(int(event['items']), 'item')} in "
                f"{plural(int(event['invocations']), 'invocation')}")
    if name == "scale":
        line = f"-j auto: {plural(int(event['workers']), 'worker')}: {event['reason']}"
        return line + (f" [{event['jobs']}]" if event.get("jobs") else "")
    if name == "pipeline_start":
        return (f"pipeline {event['run']}: {plural(int(event['items']), 'item')}, "
                f"stages {event['stages']}")
    what = (f"#{event['seq']}" if name == "item_failed" else f"at {event.get('stage')}:")
    line = (f"failed {what} {' '.join(event.get('items', []))[:60]} after "
            f"{plural(int(event['attempts']), 'attempt')}: {event['reason']}")
    tail = str(event.get("tail") or "").rstrip().splitlines()[-STDERR_LINES:]
    return "\n".join([line, *(f"  | {text[:150]}" for text in tail)])


class PlainProgress:
    """`herd: HH:MM:SS <what happened>` per event: a stable format for logs and CI."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is not None:
            self.stream.write(f"herd: {_clock(event.get('ts', time.time()))} {line}\n")
            self.stream.flush()


class JsonProgress:
    """`--json`: the event stream as JSONL on stdout, nothing else."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.stream.flush()
