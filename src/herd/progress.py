"""Rendering run events for people: one line per event on stderr (CI, pipes), or JSONL."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

Event = dict[str, Any]


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
        return (f"run {event['run']}: {event.get('tasks')} tasks in {event.get('waves')} waves, "
                f"{event.get('workers')} workers (base {str(event.get('base', ''))[:12]})")
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
        return (f"test [{event.get('purpose')}] on {event.get('commits')} commits {verdict} "
                f"in {event.get('duration', 0):.1f}s")
    if name == "run_end":
        return f"run {event['run']} {event.get('state')} (exit {event.get('exit_code')})"
    if name == "message":
        return str(event.get("text", ""))
    return None


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
