"""A whole `herd run`: plan, work, land; and `herd resume` after a crash or Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from herd.engine.events import LandStart, Message, RunResume, RunStart
from herd.engine.executor import Executor, LocalExecutor
from herd.engine.executor.local import kill_by_env
from herd.engine.journal import Journal, Listener, Outcome, RunState, TaskState
from herd.engine.shutdown import handling_signals
from herd.errors import (
    EXIT_INTERRUPTED,
    EXIT_LANDING,
    EXIT_OK,
    EXIT_PARTIAL,
    BadInput,
    Interrupted,
    LandingFailed,
    Refused,
)
from herd.git.repo import Git, GitError, no_identity_message, user_identity
from herd.queue.core import Queue
from herd.queue.model import Record
from herd.run import preflight
from herd.run.attempts import RunOptions, WorkResult
from herd.run.hypervisor import Hypervisor
from herd.run.plan import Plan, make_plan, select_tasks
from herd.run.scope import scope_for
from herd.store import Store

if TYPE_CHECKING:
    from herd.run.landing_types import LandingJson, LandingResult
    from herd.store.journal import RunRow, TaskRow


@dataclass
class LandingOptions:
    integrate: bool = True
    test_cmd: str | None = None
    format_cmd: str | None = None
    test_timeout: float | None = None  # seconds for each test or format run; None: no limit
    push: bool = False
    remote: str = "origin"
    branch: str | None = None
    parent: str | None = None  # close the epic when all its children are closed

    def to_json(self) -> LandingOptionsJson:
        return {
            "integrate": self.integrate,
            "test_cmd": self.test_cmd,
            "format_cmd": self.format_cmd,
            "test_timeout": self.test_timeout,
            "push": self.push,
            "remote": self.remote,
            "branch": self.branch,
            "parent": self.parent,
        }


class LandingOptionsJson(TypedDict):
    integrate: bool
    test_cmd: str | None
    format_cmd: str | None
    test_timeout: float | None
    push: bool
    remote: str
    branch: str | None
    parent: str | None


class RunSummaryJson(TypedDict):
    """A run's summary, as the journal keeps it."""

    run: str
    exit_code: int
    succeeded: dict[str, str]
    failed: dict[str, str]
    deferred: dict[str, str]
    cost_usd: float
    landing: LandingJson | dict[str, str]
    """{} when the run did not land."""


@dataclass
class RunOutcome:
    run_id: str
    exit_code: int
    work: WorkResult
    landing: LandingResult | None = None
    """None when the run did not land (--no-integrate, nothing succeeded, stopped)."""

    def to_json(self) -> RunSummaryJson:
        return {
            "run": self.run_id,
            "exit_code": self.exit_code,
            "succeeded": self.work.succeeded,
            "failed": self.work.failed,
            "deferred": self.work.deferred,
            "cost_usd": self.work.cost_usd,
            "landing": self.landing.to_json() if self.landing else {},
        }


ExecutorFactory = Callable[[RunOptions], Executor]


def local_executor(options: RunOptions) -> Executor:
    return LocalExecutor(options.workers, rate_per_min=options.rate_per_min, grace=options.grace)


def start(
    store: Store,
    *,
    ids: Sequence[str] = (),
    ready: bool = False,
    parent: str | None = None,
    include_blockers: bool = False,
    jobs: int | None,
    options: RunOptions,
    landing: LandingOptions,
    listeners: Sequence[Listener] = (),
    executor_factory: ExecutorFactory = local_executor,
) -> RunOutcome:
    git = Git(store.root)
    base = preflight.repository(git)
    if user_identity(store.root) is None:
        raise BadInput(no_identity_message(store.root))
    task_ids = select_tasks(store, ids, ready=ready, parent=parent)
    plan = make_plan(
        store, task_ids, git.ls_files(), jobs=jobs, include_blockers=include_blockers, skip_taken=ready
    )
    options.skip_taken = ready
    options.workers = plan.workers
    # Everything that can be known to fail is checked before anything is claimed.
    options.agent = preflight.agent(git, options.agent, base)
    branch = landing.branch or git.current_branch()
    preflight.landing(git, landing, base, branch)
    journal = Journal.create(
        store,
        "run",
        {
            "options": options.to_json(),
            "landing": landing.to_json(),
            "waves": plan.waves,
            "after": plan.after,
            "branch": branch,
        },
        base,
    )
    journal.listeners.extend(listeners)
    wave = plan.wave_numbers()
    journal.add_tasks(
        [(t["id"], seq, wave[t["id"]], "", TaskState.QUEUED.value, None) for seq, t in enumerate(plan.tasks)]
    )
    journal.emit(RunStart(tasks=len(plan.tasks), waves=len(plan.waves), workers=plan.workers, base=base))
    for warning in plan.warnings:
        journal.emit(Message(text=f"warning: {warning}"))
    return _execute(store, git, journal, plan, options, landing, base, executor_factory, {})


def resume(
    store: Store,
    run_id: str | None,
    *,
    listeners: Sequence[Listener] = (),
    executor_factory: ExecutorFactory = local_executor,
) -> RunOutcome:
    journal = Journal.open(store, run_id, kind="run")
    journal.listeners.extend(listeners)
    run = journal.run()
    if run["kind"] != "run":
        raise BadInput(
            f"run {journal.run_id} is a {run['kind']}; "
            + (
                f"`herd map --resume {journal.run_id}` continues it"
                if run["kind"] == "map"
                else "it cannot be resumed"
            )
        )
    if run["state"] in (RunState.DONE,):
        raise Refused(f"run {journal.run_id} already finished ({run['state']}); nothing to resume")
    # Owner first: only the one resume that gets the run may kill the dead run's workers
    # (a loser doing it would kill the winner's).
    journal.take_over()
    killed = kill_by_env("HERD_RUN_ID", journal.run_id)
    args = run["args"]
    options = RunOptions.from_json(args["options"])
    landing = LandingOptions(**args["landing"])
    lost = _close_lost_attempts(journal)
    journal.emit(RunResume(killed_workers=killed, lost_attempts=lost))
    rows = {row["task_id"]: row for row in journal.tasks()}
    queue = Queue(store)
    records = {r["id"]: r for r in queue.show(list(rows))}
    waves: list[list[str]] = args["waves"]
    plan = _saved_plan(records, waves, options.workers, args.get("after", {}))
    # A task a crash left claimed by this run is claimed again by the same actor (CAS allows it).
    git = Git(store.root)
    return _execute(store, git, journal, plan, options, landing, _base(run), executor_factory, rows)


def land(
    store: Store,
    run_id: str,
    landing: LandingOptions,
    *,
    listeners: Sequence[Listener] = (),
    executor_factory: ExecutorFactory = local_executor,
) -> RunOutcome:
    """Land the succeeded tasks of a run that stopped before landing (`--no-integrate`):
    the same landing as `herd run` (the Integrator), on the commits the run left."""
    journal = Journal.open(store, run_id, kind="run")
    journal.listeners.extend(listeners)
    run = journal.run()
    git = Git(store.root)
    # The same checks as `herd run` makes before it claims anything.
    preflight.landing(git, landing, _base(run), landing.branch or run["args"].get("branch"))
    journal.take_over()  # exit 4 while another herd drives the run
    run = journal.run()
    rows = {row["task_id"]: row for row in journal.tasks()}
    waiting = [t for t, row in rows.items() if row["state"] == TaskState.SUCCEEDED and row.get("commit_sha")]
    if not waiting:
        landed = sum(row["state"] == TaskState.LANDED for row in rows.values())
        raise Refused(
            f"run {journal.run_id} has no succeeded task waiting to land"
            + (f" ({landed} landed already)" if landed else "")
            + "; `herd report "
            + journal.run_id
            + "` shows what it did"
        )
    args = run["args"]
    options = RunOptions.from_json(args["options"])
    landing.parent = landing.parent or args["landing"].get("parent")
    # Saved first, so a crash while landing is continued by `herd resume` with these flags.
    journal.set_run(args={**args, "landing": landing.to_json()}, state=RunState.RUNNING.value, ended_at=None)
    journal.emit(LandStart(tasks=len(waiting)))
    records = {r["id"]: r for r in Queue(store).show(waiting)}
    waves = [[t for t in wave if t in records] for wave in args["waves"]]
    plan = _saved_plan(records, waves, options.workers, {})
    return _execute(
        store,
        git,
        journal,
        plan,
        options,
        landing,
        _base(run),
        executor_factory,
        {t: rows[t] for t in waiting},
    )


def _execute(
    store: Store,
    git: Git,
    journal: Journal,
    plan: Plan,
    options: RunOptions,
    landing: LandingOptions,
    base: str,
    executor_factory: ExecutorFactory,
    already: dict[str, TaskRow],
) -> RunOutcome:
    queue = Queue(store)
    # One stop design for the whole run (engine/shutdown.py): a signal stops the workers or
    # the landing step at a safe point, and a second one only drops the grace period.
    with (
        handling_signals() as shutdown,
        Hypervisor(
            queue, git, journal, options, executor_factory, base, shutdown=shutdown, units=len(plan.tasks)
        ) as hypervisor,
    ):
        try:
            work = hypervisor.work(plan, already=already)
            outcome = RunOutcome(journal.run_id, work.exit_code, work)
            if not landing.integrate:
                _hold_unlanded(queue, journal, work)
            if landing.integrate and work.succeeded:
                from herd.run.landing import Integrator

                integrator = Integrator(
                    queue,
                    git,
                    journal,
                    hypervisor,
                    plan,
                    landing,
                    base,
                    worktrees=hypervisor.worktrees,
                    grace=options.grace,
                    shutdown=shutdown,
                )
                outcome.landing = integrator.land(work)
                outcome.exit_code = outcome.landing.exit_code
        except (Interrupted, KeyboardInterrupt):
            # A Ctrl-C outside the worker pool (between waves, while stacking a wave's base)
            # interrupts the run too: it is resumable, not failed.
            journal.finish(RunState.INTERRUPTED, EXIT_INTERRUPTED)
            journal.close()
            raise
        except GitError as exc:
            # git failing mid-run is not bad input (GitError's own exit 2): nothing landed
            # after it, and the journal lets `herd resume` continue once git works again.
            journal.finish(RunState.FAILED, EXIT_LANDING)
            journal.close()
            raise LandingFailed(
                f"git failed mid-run, the run stopped: {exc}. Once git works, "
                f"`herd resume {journal.run_id}` continues the run"
            ) from exc
        except BaseException:
            journal.finish(RunState.FAILED, 1)
            journal.close()
            raise
    _count_earlier(outcome, already)
    state = {EXIT_OK: RunState.DONE, EXIT_PARTIAL: RunState.PARTIAL}.get(outcome.exit_code, RunState.FAILED)
    journal.finish(state, outcome.exit_code, outcome.to_json())
    journal.close()
    return outcome


def _base(run: RunRow) -> str:
    """The commit a run's tasks started from (maps and pipelines have none)."""
    if run["base"] is None:
        raise Refused(f"run {run['id']} is a {run['kind']}, not a `herd run`: it has no commits to land")
    return run["base"]


def _count_earlier(outcome: RunOutcome, already: dict[str, TaskRow]) -> None:
    """A resumed run's summary and exit code count what it did before the crash as well:
    tasks landed or ejected then are not worked on again, but they are part of the run."""
    earlier = {
        state: {t: row for t, row in already.items() if row.get("state") == state}
        for state in (TaskState.LANDED, TaskState.EJECTED)
    }
    if not any(earlier.values()):
        return
    from herd.run.landing_types import LandingResult

    if outcome.landing is None:
        outcome.landing = LandingResult(outcome.exit_code)
    landing = outcome.landing
    for task_id, row in earlier[TaskState.LANDED].items():
        landing.landed.setdefault(task_id, row["landed_sha"] or row["commit_sha"] or "")
    for task_id, row in earlier[TaskState.EJECTED].items():
        landing.ejected.setdefault(task_id, row["reason"] or "ejected")
    for task_id, row in [*earlier[TaskState.LANDED].items(), *earlier[TaskState.EJECTED].items()]:
        outcome.work.succeeded.setdefault(task_id, row["commit_sha"] or "")
    if earlier[TaskState.EJECTED] and outcome.exit_code == EXIT_OK:
        outcome.exit_code = EXIT_PARTIAL


def _saved_plan(
    records: dict[str, Record], waves: list[list[str]], workers: int, after: dict[str, list[str]]
) -> Plan:
    """The plan a run journaled (its waves), rebuilt over the tasks' current records:
    what `herd resume` and `herd land` run, checked once already by `herd run`."""
    return Plan(
        tasks=[records[t] for wave in waves for t in wave],
        waves=waves,
        conflicts=[],
        warnings=[],
        workers=workers,
        scopes={t: scope_for(records[t]) for t in records},
        after=after,
    )


def _close_lost_attempts(journal: Journal) -> list[str]:
    """Attempts the dead herd started and never judged: mark them lost (or `herd status`
    shows their workers forever) and give the attempt back, as an interrupt does; the task
    was not at fault. Its next attempt reuses the number."""
    lost = []
    for attempt in journal.attempts():
        if attempt["ended_at"] is not None:
            continue
        task_id, number = attempt["task_id"], int(attempt["attempt"])
        journal.end_attempt(
            task_id,
            number,
            {"attempts": number - 1},
            ended_at=time.time(),
            outcome=Outcome.LOST,
            reason="herd died while it ran; resumed",
        )
        lost.append(f"{task_id}#{number}")
    return lost


def _hold_unlanded(queue: Queue, journal: Journal, work: WorkResult) -> None:
    """--no-integrate: each succeeded task stays claimed by the run, with no lease to expire
    (so no other run redoes it), and a comment naming the branch that holds its commit."""
    actors = {row["task_id"]: row.get("actor") for row in journal.tasks()}
    for task_id, sha in work.succeeded.items():
        actor = actors.get(task_id)
        if actor:
            queue.hold(
                task_id,
                actor,
                f"herd run {journal.run_id}: committed {sha[:12]} on "
                f"branch herd/{journal.run_id}/{task_id}; not landed "
                f"(--no-integrate). `herd land {journal.run_id}` lands it; "
                "`herd update ID --status open` gives it back.",
            )
