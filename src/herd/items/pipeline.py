"""`herd pipeline FILE.toml`: items flow through stages, each stage with its own pool size.

Streaming, not stage by stage: an item moves on as soon as its stage finishes it,
so every stage runs at once. One coordinator loop drives one `LocalExecutor`
whose slots are the sum of the stages' workers; each stage's own limit is kept
by the loop (a stage never has more than `workers` invocations running), which
lets one `wait()` watch all stages instead of polling one executor per stage.

A stage with `items_from = "stdout"` takes the previous stage's output lines as
its items; otherwise it takes the items the previous stage finished. A failed
invocation (after its retries) stops its items at that stage. The last stage's
stdout (and any stdout no stage consumes) is written whole to ours.
"""

from __future__ import annotations

import json
import shlex
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict

from herd.engine.events import PipelineStart, StageFailed
from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.executor.local import LocalExecutor
from herd.engine.journal import Journal, Outcome, RunState, TaskState
from herd.engine.policies import Attempt, Halt, Policies, Retries
from herd.engine.shutdown import handling_signals
from herd.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, BadInput
from herd.items.mapper import (
    CANCEL_GRACE,
    MapOutcome,
    Recorder,
    command_for,
    resolve_program,
    utf8_text,
)

if TYPE_CHECKING:
    from herd.engine.events import StageCounts


@dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple[str, ...]
    workers: int = 1
    batch_size: int = 1
    items_from_stdout: bool = False


class StageArgs(TypedDict):
    name: str
    argv: list[str]
    workers: int
    batch_size: int
    items_from_stdout: bool


class PipelineArgs(TypedDict):
    """A pipeline's `args` in the journal."""

    stages: list[StageArgs]
    items: int
    retries: int
    cwd: str | None
    halt: str | None


@dataclass(frozen=True)
class PipelineSpec:
    stages: tuple[Stage, ...]
    items: tuple[str, ...]
    retries: int = 1
    cwd: Path | None = None
    halt: str | None = None
    """GNU parallel's --halt, over all stages' invocations."""

    def policies(self) -> Policies:
        """The attempt policies of a pipeline: the same classes `herd run` and `herd map` use."""
        return Policies([Retries(self.retries), Halt.parse(self.halt)])

    def to_args(self) -> PipelineArgs:
        return {
            "stages": [
                {
                    "name": s.name,
                    "argv": list(s.argv),
                    "workers": s.workers,
                    "batch_size": s.batch_size,
                    "items_from_stdout": s.items_from_stdout,
                }
                for s in self.stages
            ],
            "items": len(self.items),
            "retries": self.retries,
            "cwd": str(self.cwd) if self.cwd else None,
            "halt": self.halt,
        }


def load(path: Path, retries: int = 1, halt: str | None = None) -> PipelineSpec:
    """Read and check a pipeline file; every mistake is one BadInput line naming the field."""
    try:
        data = tomllib.loads(utf8_text(path.read_bytes(), str(path)))
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: {exc}") from None
    tables = data.get("stage")
    if not isinstance(tables, list) or not tables:
        raise BadInput(f"{path}: no [[stage]] tables")
    stages = tuple(_stage(path, n, table) for n, table in enumerate(tables, 1))
    if len({s.name for s in stages}) != len(stages):
        raise BadInput(f"{path}: stage names must be unique")
    if stages[0].items_from_stdout:
        raise BadInput(f"{path}: the first stage has no previous stage to take stdout from")
    if "items" in data and "items_from_file" in data:
        raise BadInput(f"{path}: give items or items_from_file, not both")
    if "items" in data:
        if not isinstance(data["items"], list):
            raise BadInput(f"{path}: items must be a list")
        items = tuple(str(i) for i in data["items"])
    elif "items_from_file" in data:
        source = path.parent / str(data["items_from_file"])
        try:
            text = utf8_text(source.read_bytes(), f"{path}: items_from_file {source}")
            items = tuple(line for line in text.splitlines() if line)
        except OSError as exc:
            raise BadInput(f"{path}: items_from_file {source}: {exc.strerror}") from None
    else:
        raise BadInput(f"{path}: say where items come from: items = [...] or items_from_file")
    if retries < 0:
        raise BadInput("--retries must be 0 or more")
    Halt.parse(halt)  # a bad --halt is refused before anything runs
    return PipelineSpec(stages, items, retries, path.parent.resolve(), halt)


def _stage(path: Path, number: int, table: Any) -> Stage:
    where = f"{path}: stage {number}"
    if not isinstance(table, dict):
        raise BadInput(f"{where}: must be a table")
    unknown = set(table) - {"name", "cmd", "workers", "batch_size", "items_from"}
    if unknown:
        raise BadInput(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    cmd = table.get("cmd")
    if isinstance(cmd, str):
        argv = tuple(shlex.split(cmd))
    elif isinstance(cmd, list) and all(isinstance(a, str) for a in cmd):
        argv = tuple(cmd)
    else:
        raise BadInput(f"{where}: cmd must be a string or a list of strings")
    if not argv:
        raise BadInput(f"{where}: cmd is empty")
    workers, batch_size = table.get("workers", 1), table.get("batch_size", 1)
    for key, value in (("workers", workers), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadInput(f"{where}: {key} must be a positive integer")
    items_from = table.get("items_from")
    if items_from not in (None, "stdout"):
        raise BadInput(f'{where}: items_from can only be "stdout"')
    return Stage(
        str(table.get("name") or f"stage{number}"), argv, workers, batch_size, items_from == "stdout"
    )


@dataclass
class _Call:
    """One invocation of a stage on a batch of items."""

    stage: int
    task_id: str
    items: tuple[str, ...]
    attempts: int = 0


@dataclass
class _StageState:
    waiting: deque[str] = field(default_factory=deque)
    retry: deque[_Call] = field(default_factory=deque)
    running: int = 0
    calls: int = 0
    done: int = 0
    failed: int = 0

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.retry and not self.running


def run(journal: Journal, spec: PipelineSpec, *, out: IO[bytes]) -> MapOutcome:
    t0 = time.monotonic()
    states = [_StageState() for _ in spec.stages]
    states[0].waiting.extend(spec.items)
    journal.emit(
        PipelineStart(
            items=len(spec.items), stages=" -> ".join(f"{s.name}({s.workers})" for s in spec.stages)
        )
    )
    recorder = Recorder(journal)
    programs = [resolve_program(stage.argv) for stage in spec.stages]
    inflight: dict[str, _Call] = {}
    failed: dict[str, str] = {}
    executor = LocalExecutor(sum(s.workers for s in spec.stages))
    policies = spec.policies()
    interrupted = False
    with handling_signals() as shutdown:
        shutdown.on_hurry(executor.hurry)
        try:
            while not shutdown.requested:
                stop = policies.stop()
                if stop is None:
                    _dispatch(spec, programs, states, inflight, executor, recorder)
                if not inflight or (stop is not None and stop.kill):
                    break
                for result in executor.wait(0.2):
                    call = inflight.pop(result.key)
                    _finished(spec, states, call, result, recorder, failed, journal, out, policies)
                recorder.maybe_flush(time.monotonic())
            interrupted = shutdown.requested
        except KeyboardInterrupt:  # outside handling_signals' reach (not the main thread)
            interrupted = True
        finally:
            # Inside the handlers: a signal during clean-up only makes it hurry.
            for result in executor.cancel_all(shutdown.grace(CANCEL_GRACE)):
                call = inflight.pop(result.key)
                recorder.attempt(call.task_id, call.attempts + 1, result, Outcome.CANCELLED, "interrupted")
                recorder.task(call.task_id, TaskState.DEFERRED, call.attempts + 1, "interrupted")
            executor.close()
            recorder.flush()
    counts = journal.counts()
    halted = policies.stop()
    if interrupted:
        state, code = RunState.INTERRUPTED, EXIT_INTERRUPTED
    elif halted is not None:
        state, code = RunState.PARTIAL, halted.exit_code or EXIT_OK
    elif failed:
        state, code = RunState.PARTIAL, EXIT_PARTIAL
    else:
        state, code = RunState.DONE, EXIT_OK
    per_stage: dict[str, StageCounts] = {
        s.name: {"invocations": st.calls, "succeeded": st.done, "failed": st.failed}
        for s, st in zip(spec.stages, states, strict=True)
    }
    outcome = MapOutcome(
        journal.run_id,
        code,
        state,
        counts,
        failed,
        [],
        time.monotonic() - t0,
        halted=halted.reason if halted else None,
    )
    journal.emit(outcome.end_event(stages=per_stage))
    journal.finish(state, code, {"counts": counts, "stages": per_stage, "elapsed": round(outcome.elapsed, 3)})
    return outcome


def _dispatch(
    spec: PipelineSpec,
    programs: list[tuple[str, ...]],
    states: list[_StageState],
    inflight: dict[str, _Call],
    executor: LocalExecutor,
    recorder: Recorder,
) -> None:
    upstream_idle = True
    for number, (stage, state) in enumerate(zip(spec.stages, states, strict=True)):
        while state.running < stage.workers:
            if state.retry:
                call = state.retry.popleft()
            elif len(state.waiting) >= stage.batch_size or (state.waiting and upstream_idle):
                # A partial batch only once nothing upstream can still add to it.
                take = min(stage.batch_size, len(state.waiting))
                state.calls += 1
                call = _Call(
                    number, f"{stage.name}-{state.calls}", tuple(state.waiting.popleft() for _ in range(take))
                )
                recorder.add_task(
                    (
                        call.task_id,
                        state.calls,
                        number,
                        stage.name,
                        TaskState.RUNNING.value,
                        _payload(call.items),
                    )
                )
            else:
                break
            state.running += 1
            inflight[call.task_id] = call
            executor.submit(
                JobSpec(
                    call.task_id,
                    command_for(programs[number], call.items),
                    cwd=spec.cwd,
                    env={"HERD_STAGE": stage.name},
                    capture_stdout=True,
                )
            )
        upstream_idle = upstream_idle and state.idle


def _finished(
    spec: PipelineSpec,
    states: list[_StageState],
    call: _Call,
    result: JobResult,
    recorder: Recorder,
    failed: dict[str, str],
    journal: Journal,
    out: IO[bytes],
    policies: Policies,
) -> None:
    stage, state = spec.stages[call.stage], states[call.stage]
    state.running -= 1
    call.attempts += 1
    following = spec.stages[call.stage + 1] if call.stage + 1 < len(spec.stages) else None
    attempt = Attempt.of(result, call.task_id, call.attempts, call.attempts)
    reason = attempt.reason
    policies.ended(attempt)
    if not attempt.ok:
        recorder.attempt(call.task_id, call.attempts, result, attempt.outcome, reason)
        if policies.retry(attempt) and not policies.stop():
            state.retry.append(call)
            return
        policies.finished(False, result.exit_code)
        state.failed += 1
        recorder.task(call.task_id, TaskState.FAILED, call.attempts, reason)
        failed[call.task_id] = f"{' '.join(call.items)[:60]}: {reason}"
        journal.emit(
            StageFailed(
                stage=stage.name,
                items=list(call.items[:3]),
                attempts=call.attempts,
                reason=reason,
                tail=result.tail[-300:],
            )
        )
        return
    state.done += 1
    policies.finished(True, 0)
    recorder.attempt(call.task_id, call.attempts, result, Outcome.OK, None)
    recorder.task(call.task_id, TaskState.SUCCEEDED, call.attempts, None)
    if following is None:
        if result.stdout:
            out.write(result.stdout)
            out.flush()
        return
    upcoming = states[call.stage + 1].waiting
    if following.items_from_stdout:
        upcoming.extend(line for line in (result.stdout or b"").decode(errors="replace").splitlines() if line)
        return
    upcoming.extend(call.items)
    if result.stdout:
        out.write(result.stdout)
        out.flush()


def _payload(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))
