"""The run journal: what a run was asked to do and everything it did, so a crash loses
nothing and `herd resume` can pick up where it stopped.

State lives in the store (SQLite); the event stream is also appended to
`.herd/runs/<run>/events.jsonl` for `herd status` and humans, and handed to
listeners (the progress display) as it happens.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.engine.states import Outcome as Outcome
from herd.engine.states import RunState as RunState
from herd.engine.states import TaskState as TaskState
from herd.errors import NotFound, Refused
from herd.run.owner import Owner, run_owner_alive
from herd.store import Store
from herd.store import journal as sql
from herd.store.journal import StepDetail

if TYPE_CHECKING:
    # At run time events.py is imported where an event is made: defining its classes costs
    # a few ms that `herd runs`, `herd status` and `herd report` need not pay.
    from herd.engine.events import Event, JsonScalar
    from herd.store.journal import AttemptRow, RunRow, StepRow, TaskFields, TaskRow, TaskUpdate, TestRunRow

Listener = Callable[["Event"], None]


def failpoint(name: str) -> None:
    """`HERD_FAILPOINT=name` makes herd die right here, as a crash would (crash tests of the
    journal: every step before this point must be recoverable by `herd resume`)."""
    if os.environ.get("HERD_FAILPOINT") == name:
        os._exit(99)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


class Journal:
    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.listeners: list[Listener] = []
        self._events: Any = None
        self.owner: Owner | None = None  # set when this process drives the run

    # -- lifecycle ----------------------------------------------------------

    @classmethod
    def create(
        cls,
        store: Store,
        kind: str,
        args: Mapping[str, object],
        base: str | None = None,
        run_id: str | None = None,
    ) -> Journal:
        journal = cls(store, run_id or new_run_id())
        journal.owner = Owner.this_process(kind)
        with store.write() as tx:
            sql.insert_run(
                tx,
                journal.run_id,
                kind,
                RunState.RUNNING,
                time.time(),
                os.getpid(),
                args,
                base,
                str(journal.owner),
            )
        journal.run_dir.mkdir(parents=True, exist_ok=True)
        return journal

    @classmethod
    def open(cls, store: Store, run_id: str | None = None, kind: str | None = None) -> Journal:
        with store.read() as tx:
            chosen = run_id or sql.latest_run(tx, kind)
            if chosen is None or sql.get_run(tx, chosen) is None:
                what = f"run {run_id!r}" if run_id else "run"
                raise NotFound(f"no {what} in this store; `herd runs` lists them")
        return cls(store, chosen)

    def take_over(self) -> None:
        """Become the run's owner, for `herd resume` and `herd map --resume`: refused (exit 4)
        while the recorded owner lives, and a compare-and-swap on the owner, so of two
        resumes racing exactly one proceeds."""
        run = self.run()
        if run["state"] == RunState.RUNNING and run_owner_alive(run):
            raise Refused(_held_by(self.run_id, run))
        me = Owner.this_process("resume")
        with self.store.write() as tx:
            won = sql.take_over_run(
                tx, self.run_id, was_owner=run.get("owner"), was_pid=run.get("pid"), owner=str(me), pid=me.pid
            )
        if not won:
            raise Refused(_held_by(self.run_id, self.run()))
        self.owner = me

    @property
    def token(self) -> str:
        """This process's token, part of the run's actor names."""
        if self.owner is None:
            self.owner = Owner.this_process("run")
        return self.owner.token

    @property
    def run_dir(self) -> Path:
        return self.store.herd_dir / "runs" / self.run_id

    def run(self) -> RunRow:
        with self.store.read() as tx:
            row = sql.get_run(tx, self.run_id)
        assert row is not None
        return row

    def set_run(self, **fields: Any) -> None:
        with self.store.write() as tx:
            sql.update_run(tx, self.run_id, **fields)

    def finish(self, state: RunState, exit_code: int, summary: Mapping[str, object] | None = None) -> None:
        """End the run; `summary`, a JSON object, is kept with it (`herd runs`, reports)."""
        self.set_run(
            state=state.value,
            exit_code=exit_code,
            ended_at=time.time(),
            **({"summary": summary} if summary is not None else {}),
        )
        from herd.engine.events import RunEnd

        self.emit(RunEnd(state=state, exit_code=exit_code))

    # -- events -------------------------------------------------------------

    def emit(self, event: Event) -> Event:
        """Stamp the event with the time and this run, append it to events.jsonl, hand it
        to the listeners; returns the stamped event."""
        stamped = event.stamped(round(time.time(), 3), self.run_id)
        if self._events is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._events = (self.run_dir / "events.jsonl").open("a", encoding="utf-8")
        self._events.write(json.dumps(stamped.to_json(), ensure_ascii=False) + "\n")
        self._events.flush()
        for listener in self.listeners:
            listener(stamped)
        return stamped

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    # -- tasks and attempts -------------------------------------------------

    def add_tasks(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """(task_id, seq, wave, stage, state, payload); one transaction however many rows."""
        with self.store.write() as tx:
            sql.insert_tasks(tx, self.run_id, rows)

    def record_items(
        self,
        new: Sequence[tuple[Any, ...]],
        updates: Sequence[TaskUpdate],
        attempts: Sequence[tuple[Any, ...]],
    ) -> None:
        """Item runs write in batches: new rows, finished rows and finished attempts in one
        transaction (attempts as `sql.insert_attempts`)."""
        with self.store.write() as tx:
            if new:
                sql.insert_tasks(tx, self.run_id, new)
            sql.update_tasks(tx, self.run_id, updates)
            if attempts:
                sql.insert_attempts(tx, attempts)

    def tasks(self, *states: str) -> list[TaskRow]:
        with self.store.read() as tx:
            return sql.tasks(tx, self.run_id, list(states) or None)

    def counts(self) -> dict[str, int]:
        with self.store.read() as tx:
            return sql.task_counts(tx, self.run_id)

    def set_task(self, task_id: str, **fields: Any) -> None:
        with self.store.write() as tx:
            sql.update_task(tx, self.run_id, task_id, **fields)

    def set_tasks(self, fields: Mapping[str, Mapping[str, Any]]) -> None:
        """`set_task` of several tasks (task id -> its fields) in one transaction."""
        with self.store.write() as tx:
            sql.update_task_rows(tx, self.run_id, fields)

    def start_attempt(
        self, task_id: str, attempt: int, worker: str, log_path: Path | None, pid: int | None = None
    ) -> None:
        with self.store.write() as tx:
            sql.insert_attempt(
                tx,
                self.run_id,
                task_id,
                attempt,
                worker,
                time.time(),
                str(log_path) if log_path else None,
                pid,
            )
            sql.update_task(tx, self.run_id, task_id, state=TaskState.RUNNING.value, attempts=attempt)

    def end_attempt(
        self, task_id: str, attempt: int, task_fields: TaskFields | None = None, **fields: Any
    ) -> None:
        """Record how an attempt ended and, in the same transaction, the task's new state."""
        with self.store.write() as tx:
            sql.finish_attempt(tx, self.run_id, task_id, attempt, **fields)
            if task_fields:
                sql.update_task(tx, self.run_id, task_id, **task_fields)

    def attempts(self, task_id: str | None = None) -> list[AttemptRow]:
        with self.store.read() as tx:
            return sql.attempts(tx, self.run_id, task_id)

    # -- integration steps --------------------------------------------------

    @contextmanager
    def step(self, name: str, **detail: JsonScalar) -> Iterator[StepDetail]:
        """Journal a step before it runs and mark it when done (or failed)."""
        with self.store.write() as tx:
            seq = sql.add_step(tx, self.run_id, name, detail or None, time.time())
        from herd.engine.events import Step

        self.emit(Step(step=name, detail=detail))
        result: StepDetail = dict(detail)
        try:
            yield result
        except BaseException:
            with self.store.write() as tx:
                sql.finish_step(tx, self.run_id, seq, "failed", time.time())
            raise
        with self.store.write() as tx:
            sql.finish_step(tx, self.run_id, seq, "done", time.time(), result or None)

    @contextmanager
    def step_batch(
        self, name: str, details: Sequence[Mapping[str, JsonScalar]]
    ) -> Iterator[list[StepDetail]]:
        """`step` for several steps of one kind done together (landing's picks, one git call
        for all): each is journaled, begun, before any runs and marked after, in one
        transaction each way; an event per step. Yields one result dict per step."""
        with self.store.write() as tx:
            seqs = sql.add_steps(tx, self.run_id, name, [dict(d) or None for d in details], time.time())
        from herd.engine.events import Step

        for detail in details:
            self.emit(Step(step=name, detail=dict(detail)))
        results: list[StepDetail] = [dict(detail) for detail in details]
        try:
            yield results
        except BaseException:
            with self.store.write() as tx:
                sql.finish_steps(tx, self.run_id, [(seq, "failed", None) for seq in seqs], time.time())
            raise
        with self.store.write() as tx:
            ends = [(seq, "done", result or None) for seq, result in zip(seqs, results, strict=True)]
            sql.finish_steps(tx, self.run_id, ends, time.time())

    def steps(self) -> list[StepRow]:
        with self.store.read() as tx:
            return sql.steps(tx, self.run_id)

    def record_test(
        self,
        purpose: str,
        command: str,
        commits: Sequence[str],
        exit_code: int | None,
        duration: float,
        tail: str,
    ) -> None:
        with self.store.write() as tx:
            sql.add_test_run(
                tx, self.run_id, purpose, command, commits, exit_code, duration, tail, time.time()
            )
        from herd.engine.events import TestRun

        self.emit(
            TestRun(purpose=purpose, exit_code=exit_code, commits=len(commits), duration=round(duration, 3))
        )

    def test_runs(self) -> list[TestRunRow]:
        with self.store.read() as tx:
            return sql.test_runs(tx, self.run_id)


def list_runs(store: Store, limit: int = 0) -> list[RunRow]:
    with store.read() as tx:
        runs = sql.list_runs(tx, limit)
        for run in runs:
            run["counts"] = sql.task_counts(tx, run["id"])
    for run in runs:
        _honest_state(run)
    return runs


def _honest_state(run: RunRow) -> RunRow:
    """A run recorded as running whose owner is gone (kill -9, a crash, a lost machine) is
    shown as interrupted, with the command that continues it; the row is left as it is
    (a reader never writes), and `recorded_state` keeps what the journal says."""
    if run["state"] == RunState.RUNNING and not run_owner_alive(run):
        run["recorded_state"] = run["state"]
        run["state"] = RunState.INTERRUPTED.value
        run["owner_gone"] = True
    hint = resume_command(run)
    never_started = bool((run.get("summary") or {}).get("error"))  # resuming fails the same way
    if run["state"] in (RunState.INTERRUPTED, RunState.FAILED) and hint and not never_started:
        run["resume"] = hint
    return run


def honest_run(journal: Journal) -> RunRow:
    """`journal.run()` as `herd status` shows it (see `_honest_state`)."""
    return _honest_state(journal.run())


def resume_command(run: RunRow) -> str | None:
    if run["kind"] == "run":
        return f"herd resume {run['id']}"
    if run["kind"] == "map":
        return f"herd map --resume {run['id']}"
    return None


def _held_by(run_id: str, run: RunRow) -> str:
    owner = Owner.parse(run.get("owner"))
    if owner is not None and owner.role == "resume":
        return f"run {run_id} is being resumed by pid {run['pid']}; `herd status {run_id}` shows it"
    return f"run {run_id} is still running (pid {run['pid']}); `herd status {run_id}` shows it"
