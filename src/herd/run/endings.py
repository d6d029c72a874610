"""How a task leaves the worker phase without a commit: failed for good (back to open,
with the evidence), deferred (not attempted: a blocker failed, the budget or a halt), or
given back after an interrupt. Each ending is journaled and told to the queue."""

from __future__ import annotations

import threading
import time

from herd.engine.events import TaskEnd
from herd.engine.executor import JobResult
from herd.engine.journal import Journal, Outcome, TaskState
from herd.engine.policies import Policies, Stop
from herd.git.worktree import WorktreeManager
from herd.queue.core import Queue
from herd.run.attempts import TaskRun, WorkResult, tail_of


class Endings:
    def __init__(
        self,
        queue: Queue,
        journal: Journal,
        worktrees: WorktreeManager,
        worktree_lock: threading.Lock,
        result: WorkResult,
        policies: Policies,
    ) -> None:
        self.queue = queue
        self.journal = journal
        self.run_id = journal.run_id
        self.worktrees = worktrees
        self.worktree_lock = worktree_lock
        self.result = result
        self.policies = policies

    def fail(self, run: TaskRun, reason: str, tail: str) -> None:
        self.result.failed[run.id] = reason
        self.policies.finished(False, None)
        self.journal.set_task(run.id, state=TaskState.FAILED.value, reason=reason)
        attempts = run.attempt
        self.queue.release(
            run.id,
            (
                f"herd run {self.run_id}: failed after {attempts} attempt"
                f"{'s' if attempts != 1 else ''}: {reason}\n\nOutput tail:\n```\n{tail_of(tail)}\n```\n"
                + (f"Worktree kept for inspection: {run.worktree.path}" if run.worktree else "")
            ),
        )
        self.journal.emit(TaskEnd(task=run.id, state=TaskState.FAILED, reason=reason))

    def defer(self, run: TaskRun, why: str) -> None:
        if run.worktree is not None:  # prepared ahead; the git pool may be busy
            with self.worktree_lock:
                self.worktrees.remove(run.worktree)
        self.result.deferred[run.id] = why
        self.journal.set_task(run.id, state=TaskState.DEFERRED.value, reason=why)
        if run.actor and run.attempt:
            self.queue.release(run.id)
        self.journal.emit(TaskEnd(task=run.id, state=TaskState.DEFERRED, reason=why))

    def interrupted(
        self, run: TaskRun, *, unjudged: bool, job: JobResult | None = None, halt: Stop | None = None
    ) -> None:
        """Give a task back after Ctrl-C or `--halt now`. An attempt cut short is not the
        task's fault: it does not use up a retry (`unjudged`: claimed and counted, but never
        judged). After a halt the task is deferred with the halt's reason."""
        if unjudged:
            if run.started:
                self.journal.end_attempt(
                    run.id,
                    run.attempt,
                    ended_at=job.ended_at if job else time.time(),
                    exit_code=job.exit_code if job else None,
                    signal=job.signal if job else None,
                    outcome=Outcome.INTERRUPTED,
                    reason=halt.reason if halt else "interrupted",
                    tail=job.tail if job else "",
                )
            run.attempt -= 1
        if run.worktree is not None:
            self.worktrees.remove(run.worktree)
            run.worktree = None
        if halt is not None:
            self.journal.set_task(run.id, attempts=run.attempt)
            if run.actor:
                self.queue.release(run.id)
                run.actor = ""
            self.defer(run, halt.reason)
            return
        self.journal.set_task(run.id, state=TaskState.QUEUED.value, attempts=run.attempt)
        if run.actor:
            self.queue.release(run.id)
