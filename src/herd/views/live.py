"""The live display of a run or map on a terminal (rich): one row per worker slot, an
overall bar with counts and an ETA, and the current phase.

It is an event listener like progress.PlainProgress, so the hypervisor does not know it
exists. rich refreshes it on its own thread; events only update the state under a lock.
`herd status --watch` feeds the same class from events.jsonl (see `follow`).
Import this module only when a terminal is there: `rich` is not loaded otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from herd.engine import events as ev
from herd.engine.events import Event
from herd.engine.states import TaskState
from herd.units import format_duration
from herd.views.progress import describe
from herd.views.status import last_line

if TYPE_CHECKING:
    from herd.views.status import Snapshot

DONE = {TaskState.SUCCEEDED, TaskState.LANDED}
FAILED = {TaskState.FAILED, TaskState.EJECTED}
# Lines worth keeping on screen above the live rows (the rest is in events.jsonl). Phases
# scroll too: stacking or closing can be over between two refreshes of the live rows.
SCROLL_EVENTS = (
    ev.Message,
    ev.TestRun,
    ev.RunStart,
    ev.WaveStart,
    ev.Phase,
    ev.LandStart,
    ev.MapStart,
    ev.MapResume,
    ev.Scale,
    ev.ItemFailed,
    ev.PipelineStart,
    ev.StageFailed,
)


@dataclass
class Slot:
    task: str
    attempt: int
    started: float
    title: str = ""
    log: str | None = None


class LiveDisplay:
    """`__call__(event)` like PlainProgress; `close()` (or `with`) stops the display."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        refresh_per_second: float = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.clock = clock
        self.lock = threading.Lock()
        self.run_id = ""
        self.kind = "run"
        self.total = 0
        self.workers = 0
        self.started: float | None = None
        self.phase = "starting"
        self.phase_detail = ""
        self.states: dict[str, str] = {}
        self.slots: dict[str, Slot] = {}
        self.finished_attempts: list[float] = []
        self.ended: str | None = None
        # A map reports counts in `progress` events (not one event per job): they win.
        self.progress: dict[str, int] | None = None
        self._eta_anchor: tuple[int, float, float] | None = None  # finished, when, estimate
        self._tails: dict[str, tuple[float, str]] = {}
        self.live = Live(
            get_renderable=self.render,
            console=self.console,
            auto_refresh=True,
            refresh_per_second=refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started_live = False

    # -- listener ------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.apply(event)
        if isinstance(event, SCROLL_EVENTS) or (isinstance(event, ev.TaskEnd) and event.state in FAILED):
            line = describe(event)
            if line:
                self.console.print(Text(line, style=_scroll_style(event)), highlight=False)
        if isinstance(event, ev.RunEnd):
            self.close()
        else:
            self.start()
            # Redrawn now, not at the next tick: rich keeps the last frame it drew (the first
            # one is made before any event: it said 0/0), and a phase like stacking can be
            # over between two ticks.
            self.live.refresh()

    def apply(self, event: Event) -> None:
        """Update the state from one event (no output: `follow` replays history with it)."""
        ts = event.ts or self.clock()
        self.run_id = event.run or self.run_id
        match event:
            case ev.RunStart():
                self.total, self.workers = event.tasks, event.workers
                self.started = self.started or ts
                self.phase = "working"
            case ev.RunResume():
                self.phase, self.slots, self.ended = "working", {}, None
            case ev.MapStart() | ev.MapResume() | ev.PipelineStart():
                self.kind = "pipeline" if isinstance(event, ev.PipelineStart) else "map"
                self.total = event.items if isinstance(event, ev.PipelineStart) else event.invocations
                if isinstance(event, ev.MapStart) and event.workers.isdigit():
                    self.workers = int(event.workers)
                self.started = self.started or ts
                self.phase, self.slots, self.ended = "working", {}, None
            case ev.LandStart():
                self.total = event.tasks
                self.started = self.started or ts
                self.phase, self.ended = "landing", None
            case ev.Progress():
                self.progress = {
                    "total": event.total,
                    "done": event.done,
                    "failed": event.failed,
                    "running": event.running,
                }
                self.slots = {
                    f"#{job['seq']}": Slot(" ".join(job["items"]), job["attempt"], job["started"] or ts)
                    for job in event.jobs
                }
            case ev.MapEnd():
                counts = event.counts
                self.progress = {
                    "total": sum(counts.values()),
                    "done": counts.get(TaskState.SUCCEEDED, 0),
                    "failed": counts.get(TaskState.FAILED, 0),
                    "running": 0,
                }
                self.slots = {}
            case ev.WaveStart():
                self.phase, self.phase_detail = "working", f"wave {event.wave}"
                for task in event.tasks:
                    self.states.setdefault(task, TaskState.QUEUED)
            case ev.AttemptStart():
                self.started = self.started or ts
                self.slots[event.worker] = Slot(event.task, event.attempt, ts, event.title, event.log)
                self.states[event.task] = TaskState.RUNNING
            case ev.AttemptEnd():
                for worker, slot in list(self.slots.items()):
                    if slot.task == event.task and slot.attempt == event.attempt:
                        del self.slots[worker]
                self.finished_attempts.append(event.duration)
                if self.states.get(event.task) == TaskState.RUNNING:
                    self.states[event.task] = TaskState.QUEUED  # until task_end says more
            case ev.TaskEnd():
                self.states[event.task] = event.state
            case ev.Phase():
                self.phase, self.phase_detail = event.phase, event.detail
            case ev.RunEnd():
                self.ended = self.phase = event.state

    def seed(self, snap: Snapshot, task_states: dict[str, str]) -> None:
        """Take the journal's word for counts and running workers (status --watch)."""
        with self.lock:
            self.run_id, self.kind = snap["run"], snap["kind"]
            self.started = snap["started_at"]
            self.states = dict(task_states)
            self.total = max(self.total, len(task_states))
            now = self.clock()
            self.slots = {
                w["worker"].split("/")[-1]: Slot(
                    w["task"], w["attempt"], now - w["elapsed"], log=w.get("log")
                )
                for w in snap["workers"]
            }
            if snap["state"] != "running":
                self.ended = self.phase = snap["state"]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if not self._started_live:
            self._started_live = True
            self.live.start()

    def close(self) -> None:
        if self._started_live:
            self.live.refresh()
            self.live.stop()
            self._started_live = False

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- rendering ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        if self.progress is not None:
            p = self.progress
            total = max(p["total"], self.total)
            return {
                "total": total,
                "done": p["done"],
                "failed": p["failed"],
                "running": p["running"],
                "deferred": 0,
                "queued": max(0, total - p["done"] - p["failed"] - p["running"]),
            }
        states = list(self.states.values())
        done = sum(s in DONE for s in states)
        failed = sum(s in FAILED for s in states)
        deferred = sum(s == "deferred" for s in states)
        running = len(self.slots)
        total = max(self.total, len(states))
        queued = max(0, total - done - failed - deferred - running)
        return {
            "total": total,
            "done": done,
            "failed": failed,
            "running": running,
            "queued": queued,
            "deferred": deferred,
        }

    def eta(self) -> float | None:
        """Estimated when a task finishes (the rate so far), then counted down: between two
        finishes the estimate only shrinks (re-estimating each frame made it grow while
        the workers were busy)."""
        c = self.counts()
        finished = c["done"] + c["failed"] + c["deferred"]
        if self.started is None or finished == 0 or self.phase != "working":
            return None
        now = self.clock()
        if self._eta_anchor is None or self._eta_anchor[0] != finished:
            rate = finished / max(1e-6, now - self.started)
            self._eta_anchor = (finished, now, (c["queued"] + c["running"]) / rate)
        _, when, estimate = self._eta_anchor
        return max(0.0, estimate - (now - when))

    def render(self) -> RenderableType:
        with self.lock:
            return self._render()

    def _render(self) -> RenderableType:
        now = self.clock()
        c = self.counts()
        elapsed = now - self.started if self.started else 0.0
        head = Text()
        head.append(f"herd {self.kind} {self.run_id}  ", style="bold")
        head.append(f"{self.phase}", style=_phase_style(self.phase))
        if self.phase_detail and self.ended is None:
            head.append(f" ({self.phase_detail})", style="dim")
        head.append(f"  {format_duration(elapsed)}", style="dim")
        table = Table(box=None, pad_edge=False, show_edge=False, expand=True, header_style="dim")
        table.add_column("slot", width=5, no_wrap=True)
        table.add_column("task", width=22, no_wrap=True, overflow="ellipsis")
        table.add_column("try", width=3, justify="right")
        table.add_column("elapsed", width=8, justify="right")
        table.add_column("last output", ratio=1, no_wrap=True, overflow="ellipsis")
        for worker in sorted(self.slots, key=_natural):
            slot = self.slots[worker]
            table.add_row(
                worker,
                slot.task,
                str(slot.attempt),
                format_duration(now - slot.started),
                Text(self._tail(slot, now), style="dim"),
            )
        if not self.slots:
            table.add_row("", Text("no worker running", style="dim"), "", "", "")
        bar = Table.grid(padding=(0, 1), expand=True)
        bar.add_column(ratio=1)
        bar.add_column(no_wrap=True)
        finished = c["done"] + c["failed"] + c["deferred"]
        eta = self.eta()
        summary = Text()
        summary.append(f"{finished}/{c['total']}  ")
        summary.append(f"{c['done']} done", style="green")
        summary.append(" · ")
        summary.append(f"{c['failed']} failed", style="red" if c["failed"] else "")
        summary.append(f" · {c['running']} running · {c['queued']} queued")
        if c["deferred"]:
            summary.append(f" · {c['deferred']} deferred", style="yellow")
        summary.append(f"  ETA {format_duration(eta)}" if eta is not None else "", style="cyan")
        bar.add_row(
            ProgressBar(
                total=max(1, c["total"]),
                completed=finished,
                complete_style="red" if c["failed"] else "green",
                finished_style="green" if not c["failed"] else "red",
            ),
            summary,
        )
        return Group(head, table, bar)

    def _tail(self, slot: Slot, now: float) -> str:
        """The attempt log's last line, re-read at most twice a second per slot."""
        if not slot.log:
            return slot.title
        cached = self._tails.get(slot.log)
        if cached is None or now - cached[0] > 0.5:
            cached = (now, last_line(slot.log) or slot.title)
            self._tails[slot.log] = cached
        return cached[1]


class EventTail:
    """New complete lines of a growing events.jsonl, from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self) -> list[Event]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a half-written last line waits its turn
        self.offset += len(complete)
        return [e for e in map(ev.parse, complete.splitlines()) if e is not None]


def follow(
    tail: EventTail, display: LiveDisplay, *, still_running: Callable[[], bool], interval: float = 0.25
) -> None:
    """Feed new events to `display` until `run_end`, or until the run stops without one
    (a crashed process: the journal says so)."""
    display.start()
    last_check = time.monotonic()
    while display.ended is None:
        for event in tail.read_new():
            display(event)
        if display.ended is not None:
            break
        if time.monotonic() - last_check > 2:
            last_check = time.monotonic()
            if not still_running():
                break
        time.sleep(interval)


def _scroll_style(event: Event) -> str:
    if isinstance(event, ev.TaskEnd | ev.ItemFailed | ev.StageFailed) or (
        isinstance(event, ev.TestRun) and event.exit_code != 0
    ):
        return "red"
    if isinstance(event, ev.Phase):
        return _phase_style(event.phase)
    return "dim"


def _phase_style(phase: str) -> str:
    return {
        "working": "bold cyan",
        "testing": "bold yellow",
        "bisecting": "bold magenta",
        "pushing": "bold blue",
        "stacking": "bold blue",
        "formatting": "bold blue",
        "rebasing": "bold magenta",
        "closing": "bold green",
        "landing": "bold blue",
        "done": "bold green",
        "partial": "bold yellow",
        "failed": "bold red",
        "interrupted": "bold red",
    }.get(phase, "bold")


def _natural(text: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]
