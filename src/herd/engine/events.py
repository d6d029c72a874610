"""Typed events: one frozen class per kind of thing a run, a map or a pipeline reports.

The journal stamps each event with the time and the run, writes it to
`.herd/runs/RUN/events.jsonl` and hands it to the listeners (the views). One
serialisation serves the file, `--json` and `herd status --watch`: `to_json()` gives
`{"ts", "run", "event": KIND, ...fields}` (the field names are the contract documented
for `--json`), and `from_json` / `parse` read it back into the same class.

The classes are frozen keyword-only structs (herd.structs: declared like dataclasses,
built without compiling six methods each; these 21 cost every herd command ~10 ms at
start-up as dataclasses).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from herd.engine.states import Outcome, RunState, TaskState
from herd.structs import field, fields, struct

JsonScalar = str | int | float | bool | None

_KINDS: dict[str, type[Event]] = {}
_E = TypeVar("_E", bound="Event")
# A field with this metadata is left out of the JSON when it is None (as it always was).
OMIT_NONE = {"omit_none": True}


def _optional() -> Any:
    return field(default=None, metadata=OMIT_NONE)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
def event(cls: type[_E]) -> type[_E]:
    """A frozen keyword-only struct of its fields (and its bases'), known by its `kind`."""
    struct(frozen=True, kw_only=True)(cls)
    kind = cls.__dict__.get("kind")
    if kind:
        _KINDS[kind] = cls
    return cls


@event
class Event:
    kind: ClassVar[str] = ""
    ts: float = 0.0
    """Set by the journal when the event is emitted."""
    run: str = ""
    """Set by the journal when the event is emitted."""

    def stamped(self, ts: float, run: str) -> Event:
        """A copy with the time and run set (what the journal emits)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__, ts=ts, run=run)
        return copy

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "run": self.run, "event": self.kind, **self._fields_json()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event:
        """The event `to_json` wrote; ValueError for an unknown kind or missing field."""
        cls = _KINDS.get(str(data.get("event")))
        if cls is None:
            raise ValueError(f"unknown event {data.get('event')!r}")
        values = {k: v for k, v in data.items() if k != "event"}
        try:
            return cls._from_fields(values)
        except (TypeError, KeyError) as exc:  # a required field is missing
            raise ValueError(f"event {cls.kind}: {exc}") from None

    def _fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("ts", "run") or (value is None and f.metadata.get("omit_none")):
                continue
            out[f.name] = value
        return out

    @classmethod
    def _from_fields(cls, values: dict[str, Any]) -> Event:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def parse(line: str | bytes) -> Event | None:
    """One line of events.jsonl, or None when it is not a whole event this herd knows (a
    line cut by a crash, an event kind from a newer herd)."""
    try:
        data = json.loads(line)
        return Event.from_json(data) if isinstance(data, dict) else None
    except ValueError:
        return None


# -- a run ------------------------------------------------------------------------------


@event
class RunStart(Event):
    kind: ClassVar[str] = "run_start"
    tasks: int
    waves: int
    workers: int
    base: str


@event
class RunResume(Event):
    kind: ClassVar[str] = "run_resume"
    killed_workers: int
    lost_attempts: list[str]


@event
class LandStart(Event):
    kind: ClassVar[str] = "land_start"
    tasks: int


@event
class WaveStart(Event):
    kind: ClassVar[str] = "wave_start"
    wave: int
    tasks: list[str]
    base: str


@event
class AttemptStart(Event):
    kind: ClassVar[str] = "attempt_start"
    task: str
    attempt: int
    worker: str
    """The worker slot, "w1"."""
    title: str = ""
    log: str | None = None


@event
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


@event
class TaskEnd(Event):
    kind: ClassVar[str] = "task_end"
    task: str
    state: TaskState
    commit: str | None = _optional()
    reason: str | None = _optional()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TaskState(self.state))


@event
class Phase(Event):
    """Landing's phases: stacking, formatting, testing, bisecting, rebasing, pushing, ..."""

    kind: ClassVar[str] = "phase"
    phase: str
    detail: str = ""


@event
class Message(Event):
    kind: ClassVar[str] = "message"
    text: str


@event
class Step(Event):
    """A journaled landing step began; its detail keys sit beside `step` in the JSON."""

    kind: ClassVar[str] = "step"
    step: str
    detail: dict[str, JsonScalar] = field(default_factory=dict)

    def _fields_json(self) -> dict[str, Any]:
        return {"step": self.step, **self.detail}

    @classmethod
    def _from_fields(cls, values: dict[str, Any]) -> Event:
        rest = {k: v for k, v in values.items() if k not in ("ts", "run", "step")}
        return cls(ts=values.get("ts", 0.0), run=values.get("run", ""), step=values["step"], detail=rest)


@event
class TestRun(Event):
    __test__ = False  # not a pytest test class, whatever its name
    kind: ClassVar[str] = "test_run"
    purpose: str
    exit_code: int | None
    commits: int
    duration: float


@event
class RunEnd(Event):
    """The last event of every run, map and pipeline."""

    kind: ClassVar[str] = "run_end"
    state: RunState
    exit_code: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", RunState(self.state))


# -- a map ------------------------------------------------------------------------------


if TYPE_CHECKING:  # a plain dict at run time (a TypedDict class costs start-up)
    from typing import TypedDict

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


@event
class MapStart(Event):
    kind: ClassVar[str] = "map_start"
    items: int
    invocations: int
    batch_size: int
    workers: str
    """"4", or "auto (2..8)"."""
    batch_reason: str


@event
class MapResume(Event):
    kind: ClassVar[str] = "map_resume"
    invocations: int
    items: int


@event
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


@event
class Progress(Event):
    """A map's counts and what runs now, every few seconds (not one event per job)."""

    kind: ClassVar[str] = "progress"
    total: int
    done: int
    failed: int
    running: int
    jobs: list[ProgressJob] = field(default_factory=list)


@event
class ItemFailed(Event):
    kind: ClassVar[str] = "item_failed"
    seq: int
    items: list[str]
    attempts: int
    reason: str
    tail: str
    log: str


@event
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


if TYPE_CHECKING:  # a plain dict at run time

    class StageCounts(TypedDict):
        invocations: int
        succeeded: int
        failed: int


@event
class PipelineStart(Event):
    kind: ClassVar[str] = "pipeline_start"
    items: int
    stages: str
    """"fetch(4) -> parse(2)"."""


@event
class StageFailed(Event):
    kind: ClassVar[str] = "stage_failed"
    stage: str
    items: list[str]
    attempts: int
    reason: str
    tail: str


@event
class PipelineEnd(MapEnd):
    kind: ClassVar[str] = "pipeline_end"
    stages: dict[str, StageCounts] = field(default_factory=dict)


def kinds() -> dict[str, type[Event]]:
    """Every event kind and its class."""
    return dict(_KINDS)
