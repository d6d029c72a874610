"""The hypervisor: a pool of workers, each running ONE task in its own worktree.

One single-threaded loop claims tasks, creates worktrees, writes context
files, submits worker jobs to an executor, and judges each result: squash it
to one commit, check it stayed in scope, retry a failure once with the
evidence, give a task back after its last attempt. Every step is journaled
before the next one starts, so `herd resume` can continue after a crash.
The hypervisor never prints: it emits events through the journal.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, cast

from herd.engine.events import AttemptEnd, AttemptStart, Message, TaskEnd, WaveStart
from herd.engine.executor import Executor, JobResult, JobSpec
from herd.engine.journal import Journal, Outcome, TaskState, failpoint
from herd.engine.policies import (
    Attempt,
    Stop,
)
from herd.engine.shutdown import Shutdown
from herd.errors import HerdError, Interrupted
from herd.git.repo import Git
from herd.git.worktree import WorktreeManager
from herd.queue.core import Queue
from herd.run.attempts import RunOptions, TaskRun, Verdict, WorkResult, tail_of
from herd.run.endings import Endings
from herd.run.plan import Plan
from herd.run.scope import Scope, scope_for
from herd.run.workbench import Workbench

if TYPE_CHECKING:
    from herd.store.journal import TaskFields, TaskRow

# How often the loop looks at the git pool while workers run (seconds).
_GIT_POLL = 0.002


class Hypervisor:
    def __init__(
        self,
        queue: Queue,
        git: Git,
        journal: Journal,
        options: RunOptions,
        executor_factory: Callable[[RunOptions], Executor],
        base: str,
        shutdown: Shutdown | None = None,
        units: int | None = None,
    ) -> None:
        self.queue = queue
        self.git = git
        self.journal = journal
        self.options = options
        self.executor_factory = executor_factory
        self.base = base
        self.run_id = journal.run_id
        self.worktrees = WorktreeManager(git, queue.store.herd_dir / "worktrees")
        self.result = WorkResult()
        self.shutdown = shutdown or Shutdown()
        self.policies = options.policies(units)
        self.bench = Workbench(git, journal, self.worktrees, options, self.policies, self._retry)
        self.endings = Endings(
            queue, journal, self.worktrees, self.bench.worktree_lock, self.result, self.policies
        )
        self.halted: Stop | None = None  # --halt stopped the run
        self._executor: Executor | None = None  # one for the whole run, made on first use

    # -- what landing sees (run.landing.WorkerPhase) ----------------------------------

    @property
    def failed(self) -> dict[str, str]:
        return self.result.failed

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self.executor_factory(self.options)
            self.shutdown.on_hurry(self._executor.hurry)
        return self._executor

    def close(self) -> None:
        """Release the run's executor (its workers are all reaped by now)."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    def __enter__(self) -> Hypervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------

    def work(self, plan: Plan, *, already: dict[str, TaskRow] | None = None) -> WorkResult:
        """Run every task of the plan, wave by wave. `already` holds journal rows of a
        resumed run: tasks that succeeded are kept, the rest run again."""
        already = already or {}
        records = {t["id"]: t for t in plan.tasks}
        self.bench.install()
        executor = self.executor
        for wave_number, wave in enumerate(plan.waves):
            runs = []
            for task_id in wave:
                row = cast("dict[str, Any]", already.get(task_id) or {})
                if row.get("state") == TaskState.SUCCEEDED and row.get("commit_sha"):
                    self.result.succeeded[task_id] = row["commit_sha"]
                    continue
                if row.get("state") == TaskState.FAILED:
                    # Failed before a crash: it counts in this run's result all the same.
                    self.result.failed[task_id] = row.get("reason") or "failed"
                    continue
                if row.get("state") in (TaskState.LANDED, TaskState.EJECTED):
                    continue
                run = TaskRun(
                    records[task_id],
                    wave_number,
                    plan.scopes[task_id],
                    actor=row.get("actor") or "",
                    attempt=int(row.get("attempts") or 0) if row else 0,
                )
                broken = [
                    b
                    for b in plan.after.get(task_id, ())
                    if b in self.result.failed or b in self.result.deferred
                ]
                stop = self.policies.stop()
                if stop is not None:
                    self.endings.defer(run, stop.reason)
                elif broken:
                    self.endings.defer(run, f"depends on {', '.join(broken)}, which did not succeed")
                else:
                    runs.append(run)
            if runs:
                base = self._wave_base(plan, wave_number, runs)
                for run in runs:
                    run.base = base
                self.journal.emit(WaveStart(wave=wave_number + 1, tasks=[r.id for r in runs], base=base))
                self._run_wave(executor, runs)
        return self.result

    def _wave_base(self, plan: Plan, wave_number: int, runs: list[TaskRun]) -> str:
        """A later wave starts from the earlier waves' commits stacked on the base. A task is
        in a later wave because it depends on earlier work or because its scope overlaps an
        earlier task's: either way it must see that work, or its commit could not be stacked
        with theirs (two edits of one file, both made from the base, conflict)."""
        earlier = [t for wave in plan.waves[:wave_number] for t in wave if t in self.result.succeeded]
        if not earlier:
            return self.base
        return self.worktrees.stack_commits(
            self.run_id, f"wave{wave_number + 1}", self.base, [self.result.succeeded[t] for t in earlier]
        )

    # -- reruns asked for by the integrator --------------------------------------

    def rerun(self, task_id: str, base: str, evidence: str) -> str | None:
        """Run a task again on top of `base` (its commit conflicted with the stack) when it
        has an attempt left; its commit sha, or None when it failed for good."""
        row = next((r for r in self.journal.tasks() if r["task_id"] == task_id), None)
        if row is None:
            return None
        record = self.queue.get(task_id)
        run = TaskRun(
            record,
            int(row["wave"]),
            scope_for(record),
            actor=row.get("actor") or "",
            attempt=int(row["attempts"] or 0),
            evidence=[evidence],
            base=base,
        )
        self.result.succeeded.pop(task_id, None)
        if not self._retry(run, Outcome.CONFLICT):
            self.endings.fail(
                run, "its commit conflicted with the stack and it has no attempt left", evidence
            )
            return None
        self._run_wave(self.executor, [run])
        return self.result.succeeded.get(task_id)

    def give_back(self, task_id: str, reason: str, detail: str = "") -> None:
        """The integrator could not land a task: failed, back to open, with the evidence."""
        self.result.succeeded.pop(task_id, None)
        record = self.queue.get(task_id)
        run = TaskRun(record, 0, Scope(()))
        row = next((r for r in self.journal.tasks() if r["task_id"] == task_id), None)
        run.attempt = int(row["attempts"] or 0) if row else 0
        self.endings.fail(run, reason, detail)

    def _run_wave(self, executor: Executor, runs: list[TaskRun]) -> None:
        """Keep `workers` workers busy. The loop owns all state and every journal and queue
        write; the git work of an attempt (worktree and context before it, squash, scope
        check and cleanup after it) runs in a small thread pool, so one task's git never
        holds up another's start (git spends its time waiting on the disk, not the GIL).

        Each worker slot takes its next task while its current one runs: claimed and
        prepared ahead, it starts as soon as the slot's previous attempt is judged and
        journaled (never before: the journal's order is the order things happened in). So
        a slot has two tickets, one for the task running on it and one waiting for it."""
        pending: deque[TaskRun] = deque(runs)
        in_flight: dict[str, TaskRun] = {}  # claimed and not yet judged
        git_work: dict[Future[Any], tuple[TaskRun, JobResult | None]] = {}
        tickets = list(range(self.options.workers, 0, -1)) * 2  # popped from the end: w1 first
        busy: set[int] = set()  # slots whose attempt runs or is not yet journaled
        waiting: dict[int, tuple[TaskRun, JobSpec]] = {}  # prepared, for a busy slot
        next_renewal = time.monotonic() + self.options.lease_seconds / 3
        pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="herd-git")

        def start(run: TaskRun, job: JobSpec) -> None:
            stop = self.policies.stop()
            if stop is not None:
                del in_flight[run.key]
                tickets.append(run.slot)
                self.endings.defer(run, stop.reason)
                return
            busy.add(run.slot)
            self._start(executor, run, job)

        try:
            while pending or in_flight:
                if self.shutdown.requested:
                    raise Interrupted("interrupted")
                stop = self.policies.stop()
                if stop is not None and stop.kill and in_flight:
                    self._stop(executor, pool, pending, in_flight, git_work, halt=stop)
                    return
                while pending and tickets:
                    if stop is not None:
                        for skipped in pending:
                            self.endings.defer(skipped, stop.reason)
                        pending.clear()
                        break
                    run = pending.popleft()
                    run.slot = tickets.pop()
                    if self._claim(run):
                        in_flight[run.key] = run
                        git_work[pool.submit(self.bench.prepare, run)] = (run, None)
                    else:
                        tickets.append(run.slot)
                for future in [f for f in git_work if f.done()]:
                    run, ended = git_work.pop(future)
                    if ended is None and isinstance(future.exception(), HerdError | OSError):
                        # No worktree, no worker: a failed attempt like any other.
                        del in_flight[run.key]
                        tickets.append(run.slot)
                        if self._unprepared(run, future.exception()):
                            pending.appendleft(run)
                        continue
                    if ended is None:
                        if run.slot in busy:
                            waiting[run.slot] = (run, future.result())
                        else:
                            start(run, future.result())
                    else:
                        del in_flight[run.key]
                        again = self._record(run, ended, future.result())
                        # Only now is the slot free: its result is journaled before its next
                        # attempt starts, so at most `workers` attempts are ever open.
                        busy.discard(run.slot)
                        tickets.append(run.slot)
                        if run.slot in waiting:
                            start(*waiting.pop(run.slot))
                        if again:
                            pending.appendleft(run)
                if not in_flight:
                    continue
                if executor.outstanding:
                    # Git work in the pool finishes without waking the executor: poll it often.
                    finished = executor.wait(timeout=_GIT_POLL if git_work else 1.0)
                else:
                    futures_wait(list(git_work), timeout=1.0, return_when=FIRST_COMPLETED)
                    finished = []
                for ended in finished:
                    run = in_flight[ended.key]
                    # Counted now, before the slot's next task starts, so a budget holds.
                    run.cost = self.bench.cost(ended)
                    self.result.cost_usd += run.cost or 0.0
                    self.policies.ended(Attempt.of(ended, run.id, run.attempt, run.attempt, cost=run.cost))
                    git_work[pool.submit(self.bench.examine, run, ended)] = (run, ended)
                if time.monotonic() >= next_renewal:
                    for run in in_flight.values():
                        self.queue.renew_lease(run.id, run.actor, self.options.lease_seconds)
                    next_renewal = time.monotonic() + self.options.lease_seconds / 3
        except (KeyboardInterrupt, Interrupted) as exc:  # Interrupted: e.g. a lost Dask scheduler
            self._stop(executor, pool, pending, in_flight, git_work)
            why = str(exc) if isinstance(exc, Interrupted) else "interrupted"
            raise Interrupted(f"{why}; state saved: `herd resume {self.run_id}` continues") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _stop(
        self,
        executor: Executor,
        pool: ThreadPoolExecutor,
        pending: deque[TaskRun],
        in_flight: dict[str, TaskRun],
        git_work: dict[Future[Any], tuple[TaskRun, JobResult | None]],
        *,
        halt: Stop | None = None,
    ) -> None:
        """Ctrl-C (or `--halt now`): stop every worker, let the git steps already running
        end (they are short; a Ctrl-C from a terminal may have killed them too), give every
        unfinished task back: queued for `herd resume`, or deferred with the halt's reason."""
        cancelled = {job.key: job for job in executor.cancel_all(self.shutdown.grace(self.options.grace))}
        pool.shutdown(wait=True, cancel_futures=True)
        for future, (run, job) in git_work.items():
            if job is not None and future.done() and future.exception() is None:
                # Its worker had finished before the interrupt: its verdict stands.
                in_flight.pop(run.key, None)
                if self._record(run, job, future.result()):
                    self.endings.interrupted(run, unjudged=False, halt=halt)
        for key, run in in_flight.items():
            self.endings.interrupted(run, unjudged=True, job=cancelled.get(key), halt=halt)
        for run in pending:
            self.endings.interrupted(run, unjudged=False, halt=halt)
        if halt is not None:
            self.halted = halt
            self.journal.emit(Message(text=f"halted: {halt.reason}"))

    # -- one attempt ----------------------------------------------------------

    def _claim(self, run: TaskRun) -> bool:
        """Claim the task (CAS; the same actor again on a retry or resume) and count the attempt."""
        previous = run.actor
        if not run.actor.endswith(f"@{self.journal.token}"):
            # The token names this process: a resumed run takes over the dead owner's claims.
            run.actor = f"herd:{self.run_id}/w{run.slot}@{self.journal.token}"
        try:
            if previous and previous != run.actor:
                self.queue.take_over(run.id, previous, run.actor, self.options.lease_seconds)
            else:
                self.queue.claim(run.id, run.actor, self.options.lease_seconds)
        except HerdError as exc:
            if self.options.skip_taken and run.attempt == 0:
                # --ready chose it; another run claimed it first: theirs, not a failure here.
                self.endings.defer(run, f"skipped: another run claimed it first ({exc})")
                self.result.skipped[run.id] = self.result.deferred.pop(run.id)
            else:
                self.endings.defer(run, f"could not claim it: {exc}")
            return False
        self.journal.set_task(run.id, actor=run.actor)
        failpoint("after-claim")
        run.attempt += 1
        run.started = False
        run.base = run.base or self.base
        return True

    def _unprepared(self, run: TaskRun, error: BaseException | None) -> bool:
        """Journal an attempt whose worktree or context could not be made; True to retry."""
        self.journal.start_attempt(run.id, run.attempt, f"w{run.slot}", None)
        failed = JobResult.unrun(run.key, str(error), worker=f"w{run.slot}")
        return self._record(
            run, failed, Verdict(Outcome.CRASH, f"could not prepare the attempt's worktree: {error}", None)
        )

    def _start(self, executor: Executor, run: TaskRun, job: JobSpec) -> None:
        worker = f"w{run.slot}"
        run.started = True
        self.journal.start_attempt(run.id, run.attempt, worker, job.log_path)
        self.journal.emit(
            AttemptStart(
                task=run.id,
                attempt=run.attempt,
                worker=worker,
                title=run.task.get("title", ""),
                log=str(job.log_path),
            )
        )
        executor.submit(job)

    def _record(self, run: TaskRun, job: JobResult, verdict: Verdict) -> bool:
        """Journal the attempt's verdict; True when it failed and should run again."""
        outcome, reason, sha = verdict
        cost = run.cost
        task_fields: TaskFields = {}
        if sha is not None:
            task_fields = {"state": TaskState.SUCCEEDED.value, "commit_sha": sha, "reason": None}
        elif self._retry(run, outcome):
            task_fields = {"state": TaskState.QUEUED.value, "reason": reason}
        self.journal.end_attempt(
            run.id,
            run.attempt,
            task_fields,
            ended_at=job.ended_at,
            exit_code=job.exit_code,
            signal=job.signal,
            outcome=outcome,
            reason=reason,
            tail=job.tail,
            cost_usd=cost,
            worker=job.worker,
        )
        self.journal.emit(
            AttemptEnd(
                task=run.id,
                attempt=run.attempt,
                outcome=outcome,
                exit_code=job.exit_code,
                reason=reason,
                duration=round(job.duration, 3),
                worker=f"w{run.slot}",
                host=job.worker,
            )
        )
        if sha is not None:
            self.result.succeeded[run.id] = sha
            self.policies.finished(True, job.exit_code)
            self.journal.emit(TaskEnd(task=run.id, state=TaskState.SUCCEEDED, commit=sha))
            failpoint("after-worker")
            return False
        if self._retry(run, outcome):
            run.evidence.append(
                f"Attempt {run.attempt} ({outcome}): {reason}\n\nOutput tail:\n```\n{tail_of(job.tail)}\n```"
            )
            failpoint("after-worker")
            return True
        self.endings.fail(run, reason, job.tail)
        failpoint("after-worker")
        return False

    # -- helpers ---------------------------------------------------------------

    def _retry(self, run: TaskRun, outcome: Outcome) -> bool:
        """The attempt policies' word on a failed attempt: run the task again?"""
        return self.policies.retry(Attempt(run.id, run.attempt, run.attempt, ok=False, outcome=outcome))
