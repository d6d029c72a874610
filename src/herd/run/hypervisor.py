"""The hypervisor: a pool of workers, each running ONE task in its own worktree.

One single-threaded loop claims tasks, creates worktrees, writes context
files, submits worker jobs to an executor, and judges each result: squash it
to one commit, check it stayed in scope, retry a failure once with the
evidence, give a task back after its last attempt. Every step is journaled
before the next one starts, so `herd resume` can continue after a crash.
The hypervisor never prints: it emits events through the journal.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from herd import units
from herd.engine.executor import Executor, JobResult, JobSpec
from herd.engine.executor.local import kill_by_env
from herd.engine.executor.output import last_lines
from herd.engine.journal import Journal, TaskState, failpoint
from herd.engine.policies import (
    Attempt,
    Budget,
    Halt,
    MemoryLimit,
    Policies,
    Retries,
    Stop,
    TimeLimit,
    judge,
)
from herd.engine.shutdown import Shutdown
from herd.errors import EXIT_OK, EXIT_PARTIAL, HerdError, Interrupted
from herd.git.repo import Git, GitError, NotDescendant, NothingToCommit, WorktreeNotItself
from herd.git.worktree import Worktree, WorktreeManager
from herd.queue.core import Queue
from herd.queue.model import Record
from herd.run import agents, context, push_guard
from herd.run.agents import Agent
from herd.run.config_guard import ConfigGuard
from herd.run.plan import Plan
from herd.run.scope import Scope, path_outside, scope_for
from herd.units import plural

TAIL_LINES = 40
# A worker's log keeps its last 64 MiB (HERD_WORKER_LOG_LIMIT overrides, e.g. 512M): an
# agent stuck printing in a loop must not fill the disk.
WORKER_LOG_LIMIT = 64 * 2**20


def worker_log_limit() -> int:
    value = os.environ.get("HERD_WORKER_LOG_LIMIT", "")
    return units.size(value) if value else WORKER_LOG_LIMIT

# How often the loop looks at the git pool while workers run (seconds).
_GIT_POLL = 0.002


@dataclass
class RunOptions:
    agent: Agent
    workers: int
    retries: int = 1
    timeout: float | None = None
    max_memory: int | None = None
    rate_per_min: float | None = None
    budget_usd: float | None = None
    lease_seconds: float = 600.0
    grace: float = 5.0
    skip_taken: bool = False  # --ready: a task another run claims first is skipped, no failure
    halt: str | None = None  # GNU parallel's --halt: now|soon,fail|success|done=N|P%

    def to_json(self) -> dict[str, Any]:
        return {"agent": {"name": self.agent.name, "argv": list(self.agent.argv),
                          "cost_field": self.agent.cost_field},
                "workers": self.workers, "retries": self.retries, "timeout": self.timeout,
                "max_memory": self.max_memory, "rate_per_min": self.rate_per_min,
                "budget_usd": self.budget_usd, "lease_seconds": self.lease_seconds,
                "grace": self.grace, "skip_taken": self.skip_taken, "halt": self.halt}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        spec = data["agent"]
        return cls(agent=Agent(spec["name"], tuple(spec["argv"]), spec.get("cost_field")),
                   **{k: data[k] for k in ("workers", "retries", "timeout", "max_memory",
                                           "rate_per_min", "budget_usd", "lease_seconds",
                                           "grace")},
                   skip_taken=bool(data.get("skip_taken", False)), halt=data.get("halt"))

    def policies(self, units: int | None = None) -> Policies:
        """The attempt policies of a run: the same classes `herd map` and `herd pipeline` use."""
        halt = Halt.parse(self.halt)
        if halt is not None:
            halt.total = units
        return Policies([Retries(self.retries), TimeLimit(self.timeout),
                         MemoryLimit(self.max_memory), Budget(self.budget_usd), halt])


@dataclass
class TaskRun:
    task: Record
    wave: int
    scope: Scope
    actor: str = ""
    attempt: int = 0
    evidence: list[str] = field(default_factory=list)
    worktree: Worktree | None = None
    slot: int = 0
    base: str = ""  # the commit this task's worktree starts from (set per wave)
    started: bool = False  # the current attempt's worker was submitted
    cost: float | None = None  # what the current attempt's agent reported, in USD

    @property
    def id(self) -> str:
        return str(self.task["id"])

    @property
    def key(self) -> str:
        """The executor's job key for the current attempt."""
        return f"{self.id}#{self.attempt}"


class Verdict(NamedTuple):
    outcome: str  # ok, failed, timeout, memory, crash, push, scope, history, empty, git,
    #               worktree, config
    reason: str
    sha: str | None  # the squashed commit, when the attempt succeeded


@dataclass
class WorkResult:
    """What the worker phase produced: committed branches and failures."""

    succeeded: dict[str, str] = field(default_factory=dict)  # task id -> commit sha
    failed: dict[str, str] = field(default_factory=dict)     # task id -> reason
    deferred: dict[str, str] = field(default_factory=dict)   # task id -> why not attempted
    skipped: dict[str, str] = field(default_factory=dict)    # taken by another run (--ready)
    cost_usd: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed or self.deferred else EXIT_OK


class Hypervisor:
    def __init__(self, queue: Queue, git: Git, journal: Journal, options: RunOptions,
                 executor_factory: Callable[[RunOptions], Executor], base: str,
                 shutdown: Shutdown | None = None, units: int | None = None) -> None:
        self.queue = queue
        self.git = git
        self.journal = journal
        self.options = options
        self.executor_factory = executor_factory
        self.base = base
        self.run_id = journal.run_id
        self.worktrees = WorktreeManager(git, queue.store.herd_dir / "worktrees")
        self.hooks_dir = journal.run_dir / "hooks"
        self.result = WorkResult()
        # `git worktree add` and `remove` read every worktree's admin files; run side by
        # side, one can read another's half-written entry and fail ("failed to read
        # .git/worktrees/X/commondir"). Squashing and diffing need no lock.
        self._worktree_lock = threading.Lock()
        self._config: ConfigGuard | None = None  # set when work starts
        self.shutdown = shutdown or Shutdown()
        self.policies = options.policies(units)
        self.halted: Stop | None = None  # --halt stopped the run
        self._executor: Executor | None = None  # one for the whole run, made on first use

    # -- what landing sees (run.landing.WorkerPhase) ----------------------------------

    @property
    def succeeded(self) -> dict[str, str]:
        return self.result.succeeded

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

    def work(self, plan: Plan, *, already: dict[str, dict[str, Any]] | None = None) -> WorkResult:
        """Run every task of the plan, wave by wave. `already` holds journal rows of a
        resumed run: tasks that succeeded are kept, the rest run again."""
        already = already or {}
        records = {t["id"]: t for t in plan.tasks}
        push_guard.install(self.hooks_dir, self.git.hooks_dir())
        self._config = ConfigGuard(self.git.common_dir() / "config")
        executor = self.executor
        for wave_number, wave in enumerate(plan.waves):
            runs = []
            for task_id in wave:
                row = already.get(task_id, {})
                if row.get("state") == TaskState.SUCCEEDED and row.get("commit_sha"):
                    self.result.succeeded[task_id] = row["commit_sha"]
                    continue
                if row.get("state") == TaskState.FAILED:
                    # Failed before a crash: it counts in this run's result all the same.
                    self.result.failed[task_id] = row.get("reason") or "failed"
                    continue
                if row.get("state") in (TaskState.LANDED, TaskState.EJECTED):
                    continue
                run = TaskRun(records[task_id], wave_number, plan.scopes[task_id],
                              actor=row.get("actor") or "",
                              attempt=int(row.get("attempts") or 0) if row else 0)
                broken = [b for b in plan.after.get(task_id, ())
                          if b in self.result.failed or b in self.result.deferred]
                stop = self.policies.stop()
                if stop is not None:
                    self._defer(run, stop.reason)
                elif broken:
                    self._defer(run, f"depends on {', '.join(broken)}, which did not succeed")
                else:
                    runs.append(run)
            if runs:
                base = self._wave_base(plan, wave_number, runs)
                for run in runs:
                    run.base = base
                self.journal.event("wave_start", wave=wave_number + 1,
                                   tasks=[r.id for r in runs], base=base)
                self._run_wave(executor, runs)
        return self.result

    def _wave_base(self, plan: Plan, wave_number: int, runs: list[TaskRun]) -> str:
        """A later wave starts from the earlier waves' commits stacked on the base. A task is
        in a later wave because it depends on earlier work or because its scope overlaps an
        earlier task's: either way it must see that work, or its commit could not be stacked
        with theirs (two edits of one file, both made from the base, conflict)."""
        earlier = [t for wave in plan.waves[:wave_number] for t in wave
                   if t in self.result.succeeded]
        if not earlier:
            return self.base
        return self.worktrees.stack_commits(self.run_id, f"wave{wave_number + 1}", self.base,
                                            [self.result.succeeded[t] for t in earlier])

    # -- reruns asked for by the integrator --------------------------------------

    def rerun(self, task_id: str, base: str, evidence: str) -> str | None:
        """Run a task again on top of `base` (its commit conflicted with the stack) when it
        has an attempt left; its commit sha, or None when it failed for good."""
        row = next((r for r in self.journal.tasks() if r["task_id"] == task_id), None)
        if row is None:
            return None
        record = self.queue.get(task_id)
        run = TaskRun(record, int(row["wave"]), scope_for(record),
                      actor=row.get("actor") or "", attempt=int(row["attempts"] or 0),
                      evidence=[evidence], base=base)
        self.result.succeeded.pop(task_id, None)
        if not self._retry(run, "conflict"):
            self._fail(run, "its commit conflicted with the stack and it has no attempt left",
                       evidence)
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
        self._fail(run, reason, detail)

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
        pool = ThreadPoolExecutor(max_workers=self.options.workers,
                                  thread_name_prefix="herd-git")

        def start(run: TaskRun, job: JobSpec) -> None:
            stop = self.policies.stop()
            if stop is not None:
                del in_flight[run.key]
                tickets.append(run.slot)
                self._defer(run, stop.reason)
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
                            self._defer(skipped, stop.reason)
                        pending.clear()
                        break
                    run = pending.popleft()
                    run.slot = tickets.pop()
                    if self._claim(run):
                        in_flight[run.key] = run
                        git_work[pool.submit(self._prepare, run)] = (run, None)
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
                    run.cost = self._cost(ended)
                    outcome, _ = judge(ended)
                    self.policies.ended(Attempt(run.id, run.attempt, run.attempt,
                                                ok=outcome == "ok", outcome=outcome,
                                                exit_code=ended.exit_code,
                                                duration=ended.duration, cost=run.cost))
                    git_work[pool.submit(self._examine, run, ended)] = (run, ended)
                if time.monotonic() >= next_renewal:
                    for run in in_flight.values():
                        self.queue.renew_lease(run.id, run.actor, self.options.lease_seconds)
                    next_renewal = time.monotonic() + self.options.lease_seconds / 3
        except (KeyboardInterrupt, Interrupted) as exc:  # Interrupted: e.g. a lost Dask scheduler
            self._stop(executor, pool, pending, in_flight, git_work)
            why = str(exc) if isinstance(exc, Interrupted) else "interrupted"
            raise Interrupted(f"{why}; state saved: `herd resume {self.run_id}` "
                              "continues") from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _stop(self, executor: Executor, pool: ThreadPoolExecutor, pending: deque[TaskRun],
              in_flight: dict[str, TaskRun],
              git_work: dict[Future[Any], tuple[TaskRun, JobResult | None]], *,
              halt: Stop | None = None) -> None:
        """Ctrl-C (or `--halt now`): stop every worker, let the git steps already running
        end (they are short; a Ctrl-C from a terminal may have killed them too), give every
        unfinished task back: queued for `herd resume`, or deferred with the halt's reason."""
        cancelled = {job.key: job for job in
                     executor.cancel_all(self.shutdown.grace(self.options.grace))}
        pool.shutdown(wait=True, cancel_futures=True)
        for future, (run, job) in git_work.items():
            if job is not None and future.done() and future.exception() is None:
                # Its worker had finished before the interrupt: its verdict stands.
                in_flight.pop(run.key, None)
                if self._record(run, job, future.result()):
                    self._interrupted(run, unjudged=False, halt=halt)
        for key, run in in_flight.items():
            self._interrupted(run, unjudged=True, job=cancelled.get(key), halt=halt)
        for run in pending:
            self._interrupted(run, unjudged=False, halt=halt)
        if halt is not None:
            self.halted = halt
            self.journal.event("message", text=f"halted: {halt.reason}")

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
                self._defer(run, f"skipped: another run claimed it first ({exc})")
                self.result.skipped[run.id] = self.result.deferred.pop(run.id)
            else:
                self._defer(run, f"could not claim it: {exc}")
            return False
        self.journal.set_task(run.id, actor=run.actor)
        failpoint("after-claim")
        run.attempt += 1
        run.started = False
        run.base = run.base or self.base
        return True

    def _prepare(self, run: TaskRun) -> JobSpec:
        """In the git pool: a fresh worktree and context file; the job that runs the worker.
        Touches no shared state but the run's own fields."""
        task_dir = self.journal.run_dir / run.id
        context_path = context.write(task_dir / f"context-{run.attempt}.md", run.task, run.evidence)
        log_path = task_dir / f"attempt-{run.attempt}.log"
        with self._worktree_lock:
            run.worktree = self.worktrees.create(self.run_id, run.id, run.attempt, run.base)
        push_marker = task_dir / f"push-attempted-{run.attempt}"
        push_marker.unlink(missing_ok=True)
        values = {"id": run.id, "context": str(context_path), "worktree": str(run.worktree.path)}
        argv = agents.build_argv(self.options.agent.argv, values)
        env = {
            "HERD_TASK_ID": run.id, "HERD_CONTEXT_FILE": str(context_path),
            "HERD_RUN_ID": self.run_id, "HERD_WORKER": f"w{run.slot}",
            "HERD_ATTEMPT": str(run.attempt), **push_guard.worker_env(self.hooks_dir, push_marker),
            # A worker's git never looks above its worktree for a repository: after an
            # accidental `rm .git` it fails instead of committing into the user's checkout.
            "GIT_CEILING_DIRECTORIES": str(run.worktree.path.parent.resolve()),
        }
        return self.policies.prepare(JobSpec(
            key=run.key, argv=tuple(argv), cwd=run.worktree.path, env=env, log_path=log_path,
            log_limit=worker_log_limit(), inputs=(context_path,)))

    def _unprepared(self, run: TaskRun, error: BaseException | None) -> bool:
        """Journal an attempt whose worktree or context could not be made; True to retry."""
        self.journal.start_attempt(run.id, run.attempt, f"w{run.slot}", None)
        failed = JobResult.unrun(run.key, str(error), worker=f"w{run.slot}")
        return self._record(run, failed, Verdict(
            "crash", f"could not prepare the attempt's worktree: {error}", None))

    def _start(self, executor: Executor, run: TaskRun, job: JobSpec) -> None:
        worker = f"w{run.slot}"
        run.started = True
        self.journal.start_attempt(run.id, run.attempt, worker, job.log_path)
        self.journal.event("attempt_start", task=run.id, attempt=run.attempt, worker=worker,
                           title=run.task.get("title", ""), log=str(job.log_path))
        executor.submit(job)

    def _examine(self, run: TaskRun, job: JobResult) -> Verdict:
        """In the git pool: squash and check the attempt; remove its worktree unless it is
        the task's last failure (kept for inspection)."""
        assert run.worktree is not None
        # A daemon the worker started in a session of its own escaped the kill of the
        # worker's process group; it must not go on writing while herd judges and cleans up.
        kill_by_env("HERD_RUN_ID", self.run_id, HERD_TASK_ID=run.id,
                    HERD_ATTEMPT=str(run.attempt))
        try:
            changed = self._config.restore_if_changed() if self._config else ""
            verdict = Verdict("config", changed, None) if changed else Verdict(
                *self._verdict(run, job))
        except WorktreeNotItself as exc:
            verdict = Verdict("worktree", str(exc), None)
        except GitError as exc:
            verdict = Verdict("git", f"git failed while judging the attempt: {exc}", None)
        if verdict.sha is not None or self._retry(run, verdict.outcome):
            with self._worktree_lock:
                self.worktrees.remove(run.worktree)
        return verdict

    def _record(self, run: TaskRun, job: JobResult, verdict: Verdict) -> bool:
        """Journal the attempt's verdict; True when it failed and should run again."""
        outcome, reason, sha = verdict
        cost = run.cost
        task_fields: dict[str, Any] = {}
        if sha is not None:
            task_fields = {"state": TaskState.SUCCEEDED.value, "commit_sha": sha, "reason": None}
        elif self._retry(run, outcome):
            task_fields = {"state": TaskState.QUEUED.value, "reason": reason}
        self.journal.end_attempt(run.id, run.attempt, task_fields, ended_at=job.ended_at,
                                 exit_code=job.exit_code, signal=job.signal, outcome=outcome,
                                 reason=reason, tail=job.tail, cost_usd=cost, worker=job.worker)
        self.journal.event("attempt_end", task=run.id, attempt=run.attempt, outcome=outcome,
                           exit_code=job.exit_code, reason=reason,
                           duration=round(job.duration, 3), worker=f"w{run.slot}",
                           host=job.worker)
        if sha is not None:
            self.result.succeeded[run.id] = sha
            self.policies.finished(True, job.exit_code)
            self.journal.event("task_end", task=run.id, state=TaskState.SUCCEEDED.value,
                               commit=sha)
            failpoint("after-worker")
            return False
        if self._retry(run, outcome):
            run.evidence.append(f"Attempt {run.attempt} ({outcome}): {reason}\n\nOutput tail:\n"
                                f"```\n{_tail(job.tail)}\n```")
            failpoint("after-worker")
            return True
        self._fail(run, reason, job.tail)
        failpoint("after-worker")
        return False

    def _verdict(self, run: TaskRun, job: JobResult) -> tuple[str, str, str | None]:
        """(outcome, reason, commit sha when it succeeded)."""
        assert run.worktree is not None
        if (self.journal.run_dir / run.id / f"push-attempted-{run.attempt}").exists():
            return "push", "the worker tried to push (workers commit locally; herd pushes)", None
        outcome, reason = judge(job, timeout=self.options.timeout,
                                max_memory=self.options.max_memory)
        if outcome != "ok":
            return outcome, reason, None
        title = " ".join(str(run.task.get("title", "")).split())  # a subject is one line
        try:
            # The task branch is set explicitly: a worker that switched to another branch
            # (or detached HEAD) would leave it at the base.
            sha = self.git.squash(run.worktree.path, run.base, f"{title} ({run.id})",
                                  {"Herd-Task": run.id, "Herd-Run": self.run_id},
                                  branch=run.worktree.branch)
        except NothingToCommit:
            return "empty", "the worker exited 0 but changed nothing", None
        except NotDescendant:
            return "history", ("the worker's HEAD is not a descendant of the base commit "
                               f"{run.base[:12]} (history was rewritten)"), None
        changed = self.git.changed_paths(run.base, sha)
        outside = path_outside(run.scope, changed)
        if outside:
            shown = ", ".join(outside[:10]) + (" …" if len(outside) > 10 else "")
            return "scope", f"changed paths outside its scope: {shown}", None
        return "ok", f"committed {sha[:12]} ({plural(len(changed), 'path')})", sha

    # -- endings ---------------------------------------------------------------

    def _fail(self, run: TaskRun, reason: str, tail: str) -> None:
        self.result.failed[run.id] = reason
        self.policies.finished(False, None)
        self.journal.set_task(run.id, state=TaskState.FAILED.value, reason=reason)
        attempts = run.attempt
        self.queue.release(run.id, (
            f"herd run {self.run_id}: failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {reason}\n\nOutput tail:\n```\n{_tail(tail)}\n```\n"
            + (f"Worktree kept for inspection: {run.worktree.path}" if run.worktree else "")))
        self.journal.event("task_end", task=run.id, state=TaskState.FAILED.value, reason=reason)

    def _defer(self, run: TaskRun, why: str) -> None:
        if run.worktree is not None:  # prepared ahead; the git pool may be busy
            with self._worktree_lock:
                self.worktrees.remove(run.worktree)
        self.result.deferred[run.id] = why
        self.journal.set_task(run.id, state=TaskState.DEFERRED.value, reason=why)
        if run.actor and run.attempt:
            self.queue.release(run.id)
        self.journal.event("task_end", task=run.id, state=TaskState.DEFERRED.value, reason=why)

    def _interrupted(self, run: TaskRun, *, unjudged: bool, job: JobResult | None = None,
                     halt: Stop | None = None) -> None:
        """Give a task back after Ctrl-C or `--halt now`. An attempt cut short is not the
        task's fault: it does not use up a retry (`unjudged`: claimed and counted, but never
        judged). After a halt the task is deferred with the halt's reason."""
        if unjudged:
            if run.started:
                self.journal.end_attempt(
                    run.id, run.attempt, ended_at=job.ended_at if job else time.time(),
                    exit_code=job.exit_code if job else None, signal=job.signal if job else None,
                    outcome="interrupted", reason=halt.reason if halt else "interrupted",
                    tail=job.tail if job else "")
            run.attempt -= 1
        if run.worktree is not None:
            self.worktrees.remove(run.worktree)
            run.worktree = None
        if halt is not None:
            self.journal.set_task(run.id, attempts=run.attempt)
            if run.actor:
                self.queue.release(run.id)
                run.actor = ""
            self._defer(run, halt.reason)
            return
        self.journal.set_task(run.id, state=TaskState.QUEUED.value, attempts=run.attempt)
        if run.actor:
            self.queue.release(run.id)

    # -- helpers ---------------------------------------------------------------

    def _cost(self, job: JobResult) -> float | None:
        if not self.options.agent.cost_field:
            return None
        log = self.journal.run_dir / job.key.split("#")[0] / f"attempt-{job.key.split('#')[1]}.log"
        try:
            text = log.read_text(errors="replace")[-1_000_000:]
        except OSError:
            text = job.tail
        cost = agents.read_cost(self.options.agent, text)
        if cost is not None:
            self.result.cost_usd += cost
        return cost

    def _retry(self, run: TaskRun, outcome: str) -> bool:
        """The attempt policies' word on a failed attempt: run the task again?"""
        return self.policies.retry(Attempt(run.id, run.attempt, run.attempt, ok=False,
                                           outcome=outcome))


def _tail(text: str) -> str:
    return last_lines(text, TAIL_LINES)
