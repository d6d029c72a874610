"""A whole `herd run`: plan, work, land; and `herd resume` after a crash or Ctrl-C."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from herd.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, BadInput, Interrupted, Refused
from herd.executor import Executor, LocalExecutor
from herd.executor.local import kill_by_env
from herd.git import Git, no_identity_message, user_identity
from herd.hypervisor import Hypervisor, RunOptions, WorkResult
from herd.journal import Journal, Listener, RunState, TaskState
from herd.plan import Plan, make_plan, select_tasks
from herd.queue import Queue
from herd.scope import scope_for
from herd.store import Store


@dataclass
class LandingOptions:
    integrate: bool = True
    test_cmd: str | None = None
    format_cmd: str | None = None
    push: bool = False
    remote: str = "origin"
    branch: str | None = None
    parent: str | None = None  # close the epic when all its children are closed

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunOutcome:
    run_id: str
    exit_code: int
    work: WorkResult
    landing: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run_id, "exit_code": self.exit_code,
                "succeeded": self.work.succeeded, "failed": self.work.failed,
                "deferred": self.work.deferred, "cost_usd": self.work.cost_usd,
                "landing": self.landing}


ExecutorFactory = Callable[[RunOptions], Executor]


def local_executor(options: RunOptions) -> Executor:
    return LocalExecutor(options.workers, rate_per_min=options.rate_per_min, grace=options.grace)


def start(store: Store, *, ids: Sequence[str] = (), ready: bool = False, parent: str | None = None,
          include_blockers: bool = False, jobs: int | None, options: RunOptions,
          landing: LandingOptions, listeners: Sequence[Listener] = (),
          executor_factory: ExecutorFactory = local_executor) -> RunOutcome:
    git = Git(store.root)
    if user_identity(store.root) is None:
        raise BadInput(no_identity_message(store.root))
    base = git.head()
    task_ids = select_tasks(store, ids, ready=ready, parent=parent)
    plan = make_plan(store, task_ids, git.ls_files(), jobs=jobs, include_blockers=include_blockers)
    options.workers = plan.workers
    journal = Journal.create(store, "run", {
        "options": options.to_json(), "landing": landing.to_json(),
        "waves": plan.waves, "after": plan.after, "branch": landing.branch or git.current_branch(),
    }, base)
    journal.listeners.extend(listeners)
    journal.add_tasks([(t["id"], seq, plan.wave_of(t["id"]), "", TaskState.QUEUED.value, None)
                       for seq, t in enumerate(plan.tasks)])
    journal.event("run_start", tasks=len(plan.tasks), waves=len(plan.waves),
                  workers=plan.workers, base=base)
    for warning in plan.warnings:
        journal.event("message", text=f"warning: {warning}")
    return _execute(store, git, journal, plan, options, landing, base, executor_factory, {})


def resume(store: Store, run_id: str | None, *, listeners: Sequence[Listener] = (),
           executor_factory: ExecutorFactory = local_executor) -> RunOutcome:
    journal = Journal.open(store, run_id, kind="run")
    journal.listeners.extend(listeners)
    run = journal.run()
    if run["state"] == RunState.RUNNING and run["pid"] and _alive(run["pid"]):
        raise Refused(f"run {journal.run_id} is still running (pid {run['pid']}); "
                      "`herd status` shows it")
    if run["state"] in (RunState.DONE,):
        raise Refused(f"run {journal.run_id} already finished ({run['state']}); nothing to resume")
    killed = kill_by_env("HERD_RUN_ID", journal.run_id)
    args = run["args"]
    options = RunOptions.from_json(args["options"])
    landing = LandingOptions(**args["landing"])
    journal.set_run(state=RunState.RUNNING.value, pid=os.getpid(), ended_at=None)
    lost = _close_lost_attempts(journal)
    journal.event("run_resume", killed_workers=killed, lost_attempts=lost)
    rows = {row["task_id"]: row for row in journal.tasks()}
    queue = Queue(store)
    records = {r["id"]: r for r in queue.show(list(rows))}
    waves: list[list[str]] = args["waves"]
    plan = Plan(tasks=[records[t] for wave in waves for t in wave], waves=waves, conflicts=[],
                warnings=[], workers=options.workers,
                scopes={t: scope_for(records[t]) for t in records}, after=args.get("after", {}))
    # A task a crash left claimed by this run is claimed again by the same actor (CAS allows it).
    git = Git(store.root)
    return _execute(store, git, journal, plan, options, landing, run["base"], executor_factory,
                    rows)


def _execute(store: Store, git: Git, journal: Journal, plan: Plan, options: RunOptions,
             landing: LandingOptions, base: str, executor_factory: ExecutorFactory,
             already: dict[str, dict[str, Any]]) -> RunOutcome:
    queue = Queue(store)
    hypervisor = Hypervisor(queue, git, journal, options, executor_factory, base)
    try:
        work = hypervisor.work(plan, already=already)
        outcome = RunOutcome(journal.run_id, work.exit_code, work)
        if not landing.integrate:
            _hold_unlanded(queue, journal, work)
        if landing.integrate and work.succeeded:
            from herd.integrate import Integrator

            integrator = Integrator(queue, git, journal, hypervisor, plan, landing, base)
            outcome.landing = integrator.land(work)
            outcome.exit_code = int(outcome.landing.get("exit_code", outcome.exit_code))
    except (Interrupted, KeyboardInterrupt):
        # A Ctrl-C outside the worker pool (between waves, while stacking a wave's base)
        # interrupts the run too: it is resumable, not failed.
        journal.finish(RunState.INTERRUPTED, EXIT_INTERRUPTED)
        journal.close()
        raise
    except BaseException:
        journal.finish(RunState.FAILED, 1)
        journal.close()
        raise
    state = {EXIT_OK: RunState.DONE, EXIT_PARTIAL: RunState.PARTIAL}.get(outcome.exit_code,
                                                                         RunState.FAILED)
    journal.finish(state, outcome.exit_code, outcome.to_json())
    journal.close()
    return outcome


def _close_lost_attempts(journal: Journal) -> list[str]:
    """Attempts the dead herd started and never judged: mark them lost (or `herd status`
    shows their workers forever) and give the attempt back, as an interrupt does; the task
    was not at fault. Its next attempt reuses the number."""
    lost = []
    for attempt in journal.attempts():
        if attempt["ended_at"] is not None:
            continue
        task_id, number = attempt["task_id"], int(attempt["attempt"])
        journal.end_attempt(task_id, number, {"attempts": number - 1}, ended_at=time.time(),
                            outcome="lost", reason="herd died while it ran; resumed")
        lost.append(f"{task_id}#{number}")
    return lost


def _hold_unlanded(queue: Queue, journal: Journal, work: WorkResult) -> None:
    """--no-integrate: each succeeded task stays claimed by the run, with no lease to expire
    (so no other run redoes it), and a comment naming the branch that holds its commit."""
    actors = {row["task_id"]: row.get("actor") for row in journal.tasks()}
    for task_id, sha in work.succeeded.items():
        actor = actors.get(task_id)
        if actor:
            queue.hold(task_id, actor, f"herd run {journal.run_id}: committed {sha[:12]} on "
                                       f"branch herd/{journal.run_id}/{task_id}; not landed "
                                       "(--no-integrate). `herd update ID --status open` gives "
                                       "it back.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()
