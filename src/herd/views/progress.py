"""Rendering events for people and programs, the same for a run, a map and a pipeline:
one line per event on stderr (CI, pipes), or JSONL on stdout (`--json`)."""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from herd.engine.events import (
    AttemptEnd,
    AttemptStart,
    Event,
    ItemFailed,
    LandStart,
    MapResume,
    MapStart,
    Message,
    Phase,
    PipelineStart,
    RunEnd,
    RunStart,
    Scale,
    StageFailed,
    TaskEnd,
    TestRun,
    WaveStart,
)
from herd.units import plural

STDERR_LINES = 3  # of a failed job, under its failure line


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _slot(worker: str) -> str:
    """The worker slot as attempt_start names it ("w1"), also for an older journal whose
    attempt_end named it as the executor does ("local/w1")."""
    return worker.removeprefix("local/")


def describe(event: Event) -> str | None:
    """What happened, for a person: a line (a failed item: with its stderr's last lines
    under it), or None for events not worth one."""
    match event:
        case RunStart():
            return (
                f"run {event.run}: {plural(event.tasks, 'task')} in "
                f"{plural(event.waves, 'wave')}, {plural(event.workers, 'worker')} "
                f"(base {event.base[:12]})"
            )
        case LandStart():
            return f"run {event.run}: landing {plural(event.tasks, 'task')}"
        case WaveStart():
            return f"wave {event.wave}: {', '.join(event.tasks)}"
        case AttemptStart():
            return f"{_slot(event.worker)} {'start':<6} {event.task} (attempt {event.attempt}) {event.title}"
        case AttemptEnd():
            return (
                f"{_slot(event.worker)} {event.outcome:<6} {event.task} (attempt "
                f"{event.attempt}, {event.duration:.1f}s): {event.reason}"
            )
        case TaskEnd():
            extra = event.commit or event.reason or ""
            return f"task {event.task} {event.state}{': ' + extra[:80] if extra else ''}"
        case Phase():
            return f"phase: {event.phase}" + (f" ({event.detail})" if event.detail else "")
        case TestRun():
            verdict = "passed" if event.exit_code == 0 else f"failed (exit {event.exit_code})"
            return (
                f"test [{event.purpose}] on {plural(event.commits, 'commit')} {verdict} "
                f"in {event.duration:.1f}s"
            )
        case RunEnd():
            return f"run {event.run} {event.state} (exit {event.exit_code})"
        case Message():
            return event.text
        case MapStart():
            return (
                f"map {event.run}: {plural(event.items, 'item')} in "
                f"{plural(event.invocations, 'invocation')} of {event.batch_size}, "
                f"{event.workers} worker{'' if event.workers == '1' else 's'}"
            )
        case MapResume():
            return (
                f"map {event.run}: resuming {plural(event.items, 'item')} in "
                f"{plural(event.invocations, 'invocation')}"
            )
        case Scale():
            line = f"-j auto: {plural(event.workers, 'worker')}: {event.reason}"
            return line + (f" [{event.jobs}]" if event.jobs else "")
        case PipelineStart():
            return f"pipeline {event.run}: {plural(event.items, 'item')}, stages {event.stages}"
        case ItemFailed() | StageFailed():
            what = f"#{event.seq}" if isinstance(event, ItemFailed) else f"at {event.stage}:"
            line = (
                f"failed {what} {' '.join(event.items)[:60]} after "
                f"{plural(event.attempts, 'attempt')}: {event.reason}"
            )
            tail = event.tail.rstrip().splitlines()[-STDERR_LINES:]
            return "\n".join([line, *(f"  | {text[:150]}" for text in tail)])
    return None  # step, progress, map_end, pipeline_end, run_resume: journal only


class PlainProgress:
    """`herd: HH:MM:SS <what happened>` per event: a stable format for logs and CI.

    For a map or a pipeline (`items=True`) the lines carry no clock (the jobs' own output
    shares the terminal) and the run_end line is left to the command's summary."""

    def __init__(self, stream: TextIO | None = None, *, items: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.items = items

    def __call__(self, event: Event) -> None:
        if self.items and isinstance(event, RunEnd):
            return
        text = describe(event)
        if text is None:
            return
        stamp = "" if self.items else _clock(event.ts or time.time()) + " "
        first, *rest = text.splitlines() or [""]
        self.stream.write("".join([f"herd: {stamp}{first}\n", *(f"herd: {line}\n" for line in rest)]))
        self.stream.flush()


class JsonProgress:
    """`--json`: the event stream as JSONL on stdout, nothing else (the same serialisation
    as events.jsonl)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self.stream.flush()
