"""Typed events: one frozen class per kind of thing a run, a map or a pipeline reports.

The journal stamps each event with the time and the run, writes it to
`.herd/runs/RUN/events.jsonl` and hands it to the listeners (the views). One
serialisation serves the file, `--json` and `herd status --watch`: `to_json()` gives
`{"ts", "run", "event": KIND, ...fields}` (the field names are the contract documented
for `--json`), and `from_json` / `parse` read it back into the same class.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

from herd.engine.states import Outcome, RunState, TaskState

JsonScalar = str | int | float | bool | None
# A field with this metadata is left out of the JSON when it is None (as it always was).
OMIT_NONE = {"omit_none": True}

_KINDS: dict[str, type[Event]] = {}


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = ""
    ts: float = 0.0
    """Set by the journal when the event is emitted."""
    run: str = ""
    """Set by the journal when the event is emitted."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "run": self.run, "event": self.kind, **self._fields_json()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event:
        """The event `to_json` wrote; ValueError for an unknown kind or missing field."""
        cls = _KINDS.get(str(data.get("event")))
        if cls is None:
            raise ValueError(f"unknown event {data.get('event')!r}")
        fields = {k: v for k, v in data.items() if k != "event"}
        try:
            return cls._from_fields(fields)
        except (TypeError, KeyError) as exc:  # a required field is missing
            raise ValueError(f"event {cls.kind}: {exc}") from None

    def _fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("ts", "run") or (value is None and f.metadata.get("omit_none")):
                continue
            out[f.name] = value
        return out

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> Event:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in fields.items() if k in names})


def parse(line: str | bytes) -> Event | None:
    """One line of events.jsonl, or None when it is not a whole event this herd knows (a
    line cut by a crash, an event kind from a newer herd)."""
    try:
        data = json.loads(line)
        return Event.from_json(data) if isinstance(data, dict) else None
    except ValueError:
        return None


def _optional() -> Any:
    return field(default=None, metadata=OMIT_NONE)


# -- a run ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunStart(Event):
    kind: ClassVar[str] = "run_start"
    tasks: int
    waves: int
    workers: int
    base: str


@dataclass(frozen=True, kw_only=True)
class RunResume(Event):
    kind: ClassVar[str] = "run_resume"
    killed_workers: int
    lost_attempts: list[str]


@dataclass(frozen=True, kw_only=True)
class LandStart(Event):
    kind: ClassVar[str] = "land_start"
    tasks: int


@dataclass(frozen=True, kw_only=True)
class WaveStart(Event):
    kind: ClassVar[str] = "wave_start"
    wave: int
    tasks: list[str]
    base: str


@dataclass(frozen=True, kw_only=True)
class AttemptStart(Event):
    kind: ClassVar[str] = "attempt_start"
    task: str
    attempt: int
    worker: str
    """The worker slot, "w1"."""
    title: str = ""
    log: str | None = None


@dataclass(frozen=True, kw_only=True)
class AttemptEnd(Event):
    kind: ClassVar[str] = "attempt_end"
    task: str
    attempt: int
    outcome: Outcome
    exit_code: int | None
    reason: str
    duration: float
    worker: str
    """The worker slot, as in attempt_start."""
    host: str = ""
    """The executor's name for where it ran ("local/w1", a Dask worker)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", Outcome(self.outcome))


@dataclass(frozen=True, kw_only=True)
class TaskEnd(Event):
    kind: ClassVar[str] = "task_end"
    task: str
    state: TaskState
    commit: str | None = _optional()
    reason: str | None = _optional()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TaskState(self.state))


@dataclass(frozen=True, kw_only=True)
class Phase(Event):
    """Landing's phases: stacking, formatting, testing, bisecting, rebasing, pushing, ..."""

    kind: ClassVar[str] = "phase"
    phase: str
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class Message(Event):
    kind: ClassVar[str] = "message"
    text: str


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    """A journaled landing step began; its detail keys sit beside `step` in the JSON."""

    kind: ClassVar[str] = "step"
    step: str
    detail: dict[str, JsonScalar] = field(default_factory=dict)

    def _fields_json(self) -> dict[str, Any]:
        return {"step": self.step, **self.detail}

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> Event:
        rest = {k: v for k, v in fields.items() if k not in ("ts", "run", "step")}
        return cls(ts=fields.get("ts", 0.0), run=fields.get("run", ""), step=fields["step"], detail=rest)


@dataclass(frozen=True, kw_only=True)
class TestRun(Event):
    __test__ = False  # not a pytest test class, whatever its name
    kind: ClassVar[str] = "test_run"
    purpose: str
    exit_code: int | None
    commits: int
    duration: float


@dataclass(frozen=True, kw_only=True)
class RunEnd(Event):
    """The last event of every run, map and pipeline."""

    kind: ClassVar[str] = "run_end"
    state: RunState
    exit_code: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RunState(self.state))


# -- a map ------------------------------------------------------------------------------


class ScaleDecision(TypedDict):
    """One `-j auto` decision (autoscale.AutoScaler.tick)."""

    workers: int
    was: int
    settled: bool
    jobs: str
    reason: str
    rate: float
    cpu_ratio: float


class ProgressJob(TypedDict):
    seq: int
    items: list[str]
    attempt: int
    started: float


@dataclass(frozen=True, kw_only=True)
class MapStart(Event):
    kind: ClassVar[str] = "map_start"
    items: int
    invocations: int
    batch_size: int
    workers: str
    """"4", or "auto (2..8)"."""
    batch_reason: str


@dataclass(frozen=True, kw_only=True)
class MapResume(Event):
    kind: ClassVar[str] = "map_resume"
    invocations: int
    items: int


@dataclass(frozen=True, kw_only=True)
class Scale(Event):
    """`-j auto` changed (or settled) the worker count; the first one has no measurement."""

    kind: ClassVar[str] = "scale"
    workers: int
    was: int | None = _optional()
    settled: bool | None = _optional()
    jobs: str | None = _optional()
    reason: str
    rate: float | None = _optional()
    cpu_ratio: float | None = _optional()


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    """A map's counts and what runs now, every few seconds (not one event per job)."""

    kind: ClassVar[str] = "progress"
    total: int
    done: int
    failed: int
    running: int
    jobs: list[ProgressJob] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ItemFailed(Event):
    kind: ClassVar[str] = "item_failed"
    seq: int
    items: list[str]
    attempts: int
    reason: str
    tail: str
    log: str


@dataclass(frozen=True, kw_only=True)
class MapEnd(Event):
    """A map's summary; `herd map --json` ends with it (then run_end)."""

    kind: ClassVar[str] = "map_end"
    exit_code: int
    state: RunState
    counts: dict[str, int]
    failed: dict[str, str]
    """Batch seq -> reason (the first 50)."""
    scaling: list[ScaleDecision] = field(default_factory=list)
    elapsed: float
    stderr_log: str = ""
    halted: str | None = None
    """Why `--halt` stopped it early (always written, null when it did not)."""
    retries: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RunState(self.state))


# -- a pipeline -------------------------------------------------------------------------


class StageCounts(TypedDict):
    invocations: int
    succeeded: int
    failed: int


@dataclass(frozen=True, kw_only=True)
class PipelineStart(Event):
    kind: ClassVar[str] = "pipeline_start"
    items: int
    stages: str
    """"fetch(4) -> parse(2)"."""


@dataclass(frozen=True, kw_only=True)
class StageFailed(Event):
    kind: ClassVar[str] = "stage_failed"
    stage: str
    items: list[str]
    attempts: int
    reason: str
    tail: str


@dataclass(frozen=True, kw_only=True)
class PipelineEnd(MapEnd):
    kind: ClassVar[str] = "pipeline_end"
    stages: dict[str, StageCounts] = field(default_factory=dict)


def kinds() -> dict[str, type[Event]]:
    """Every event kind and its class."""
    return dict(_KINDS)
