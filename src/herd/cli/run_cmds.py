"""`herd run`, `herd resume`, `herd runs`, `herd status`."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from herd.cli.app import cli, common, make_context
from herd.cli.plan_cmds import task_selection
from herd.cli.shown import close_listeners, listeners
from herd.errors import BadInput

if TYPE_CHECKING:
    from herd.run.batch import RunOutcome
    from herd.views.status import Snapshot


def _render_outcome(outcome: RunOutcome) -> None:
    work = outcome.work
    landing = outcome.landing
    landed = landing.landed if landing else {}
    ejected = landing.ejected if landing else {}
    failed = {**work.failed, **(landing.failed if landing else {})}
    head = f"run {outcome.run_id}: {len(work.succeeded)} succeeded"
    if landing:
        head += f", {len(landed)} landed, {len(ejected)} ejected"
    click.echo(
        head
        + f", {len(failed)} failed"
        + (f", {len(work.deferred)} deferred" if work.deferred else "")
        + (f", cost ${work.cost_usd:.2f}" if work.cost_usd else "")
    )
    for task_id, sha in work.succeeded.items():
        if task_id in ejected or task_id in failed:
            continue
        state = "landed " if task_id in landed else "ok     "
        click.echo(f"  {state} {task_id}  {(landed.get(task_id) or sha)[:12]}")
    for task_id, reason in ejected.items():
        click.echo(f"  ejected {task_id}  {reason}")
    for task_id, reason in failed.items():
        click.echo(f"  failed  {task_id}  {reason}")
    for task_id, reason in {**work.deferred, **work.skipped}.items():
        click.echo(f"  skipped {task_id}  {reason}")
    for line in landing.lines if landing else []:
        click.echo(line)


@cli.command()
@task_selection
@click.option("--agent", metavar="NAME", help="Agent preset (claude, codex, aider, or config).")
@click.option(
    "--cmd", "command", metavar="CMD", help="Any command; {id} {context} {worktree} {prompt} are filled in."
)
@click.option("-j", "--jobs", type=int, help="Workers (default: min(8, cores, largest wave)).")
@click.option(
    "--retries",
    type=int,
    default=1,
    show_default=True,
    help="Attempts after the first for a task that fails.",
)
@click.option("--timeout", metavar="DUR", help="Per attempt, e.g. 30m, 3s.")
@click.option("--max-memory", metavar="SIZE", help="Per worker process tree, e.g. 2G.")
@click.option("--rate", metavar="N/min", help="Space worker starts (API rate limits).")
@click.option("--budget-usd", type=float, help="Stop starting tasks when the run's cost reaches it.")
@click.option(
    "--halt",
    metavar="WHEN,WHY=N",
    help="Stop early, as GNU parallel: "
    "now|soon,fail|success|done=N|P%; now stops running workers (their tasks are "
    "deferred), soon lets them finish. E.g. now,fail=1.",
)
@click.option("--no-integrate", is_flag=True, help="Stop after the workers: one branch per task.")
@click.option("--test-cmd", metavar="CMD", help="Test command run once on the combined stack.")
@click.option("--format-cmd", metavar="CMD", help="Formatter run once on the stack.")
@click.option(
    "--test-timeout",
    metavar="DUR",
    help="Kill a test or format run after DUR, e.g. 10m (default: no limit); landing then fails with exit 5.",
)
@click.option("--push/--no-push", default=False, help="Push the landed stack (once).")
@click.option("--remote", default="origin", show_default=True, help="Remote to fetch and push.")
@click.option("--branch", metavar="B", help="Branch to land on (default: the current one).")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where workers run: here, or as Dask tasks.",
)
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler to join (tcp://HOST:8786).")
@click.option(
    "--cpus-per-job",
    type=float,
    metavar="N",
    help="Dask: CPU resource each job needs (workers offer --resources CPU=...).",
)
@click.option(
    "--memory-per-job",
    metavar="SIZE",
    help="Dask: MEMORY resource each job needs, e.g. 4G (workers offer MEMORY=...).",
)
@common
def run(
    ids: tuple[str, ...],
    use_ready: bool,
    parent: str | None,
    include_blockers: bool,
    agent: str | None,
    command: str | None,
    jobs: int | None,
    retries: int,
    timeout: str | None,
    max_memory: str | None,
    rate: str | None,
    budget_usd: float | None,
    halt: str | None,
    no_integrate: bool,
    test_cmd: str | None,
    format_cmd: str | None,
    test_timeout: str | None,
    push: bool,
    remote: str,
    branch: str | None,
    executor: str,
    scheduler: str | None,
    cpus_per_job: float | None,
    memory_per_job: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Run tasks side by side, one worker and worktree each, then land them."""
    from herd import settings, units
    from herd.engine.policies import Halt
    from herd.run import agents, batch
    from herd.run.attempts import RunOptions

    ctx = make_context(db, as_json)
    if bool(agent) == bool(command):
        raise BadInput("say what runs each task: --agent NAME or --cmd CMD (one of them)")
    if retries < 0:
        raise BadInput("--retries must be 0 or more")
    store = ctx.store()
    chosen = (
        agents.from_command(command)
        if command
        else agents.load(str(agent), store.herd_dir / "config.toml", team=settings.load().agents)
    )
    options = RunOptions(
        agent=chosen,
        workers=jobs or 1,
        retries=retries,
        timeout=units.duration(timeout) if timeout else None,
        max_memory=units.size(max_memory) if max_memory else None,
        rate_per_min=units.rate(rate) if rate else None,
        budget_usd=budget_usd,
        halt=halt,
    )
    Halt.parse(halt)  # refused before anything is claimed
    landing = batch.LandingOptions(
        integrate=not no_integrate,
        test_cmd=test_cmd,
        format_cmd=format_cmd,
        push=push,
        remote=remote,
        test_timeout=units.duration(test_timeout) if test_timeout else None,
        branch=branch,
        parent=parent,
    )
    factory = _executor_factory(
        executor,
        scheduler,
        cpus_per_job=cpus_per_job,
        memory_per_job=units.size(memory_per_job) if memory_per_job else None,
    )
    shown = listeners(ctx.as_json)
    try:
        outcome = batch.start(
            store,
            ids=ids,
            ready=use_ready,
            parent=parent,
            include_blockers=include_blockers,
            jobs=jobs,
            options=options,
            landing=landing,
            listeners=shown,
            executor_factory=factory,
        )
    finally:
        close_listeners(shown)
    if not ctx.as_json:
        _render_outcome(outcome)
    sys.exit(outcome.exit_code)


def _executor_factory(
    name: str, scheduler: str | None, *, cpus_per_job: float | None = None, memory_per_job: int | None = None
) -> Any:
    from herd.run import batch

    if name == "local":
        if scheduler or cpus_per_job is not None or memory_per_job is not None:
            raise BadInput("--scheduler, --cpus-per-job and --memory-per-job need --executor dask")
        return batch.local_executor
    from herd.engine.executor import load_dask

    return load_dask().dask_executor_factory(
        scheduler, cpus_per_job=cpus_per_job, memory_per_job=memory_per_job
    )


@cli.command()
@click.argument("run_id", required=False)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where the remaining workers run.",
)
@click.option("--scheduler", metavar="ADDR", help="Dask scheduler to join (tcp://HOST:8786).")
@common
def resume(run_id: str | None, executor: str, scheduler: str | None, db: str | None, as_json: bool) -> None:
    """Continue a run after a crash or Ctrl-C (default: the latest run)."""
    from herd.run import batch

    ctx = make_context(db, as_json)
    shown = listeners(ctx.as_json)
    try:
        outcome = batch.resume(
            ctx.store(), run_id, listeners=shown, executor_factory=_executor_factory(executor, scheduler)
        )
    finally:
        close_listeners(shown)
    if not ctx.as_json:
        _render_outcome(outcome)
    sys.exit(outcome.exit_code)


@cli.command()
@click.argument("run_id")
@click.option("--test-cmd", metavar="CMD", help="Test command run once on the combined stack.")
@click.option("--format-cmd", metavar="CMD", help="Formatter run once on the stack.")
@click.option("--push", is_flag=True, help="Push the landed stack (once).")
@click.option("--remote", default="origin", show_default=True, help="Remote to push to.")
@click.option(
    "--test-timeout",
    metavar="DUR",
    help="Kill a test or format run after DUR, e.g. 10m (default: no limit); landing then fails with exit 5.",
)
@click.option("--branch", metavar="B", help="Branch to land on (default: the run's branch).")
@common
def land(
    run_id: str,
    test_cmd: str | None,
    format_cmd: str | None,
    push: bool,
    remote: str,
    test_timeout: str | None,
    branch: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Land the succeeded tasks of a run that stopped before landing (--no-integrate):
    stack, format, test once, eject what breaks, push, close; as `herd run` would have."""
    from herd import units
    from herd.run import batch

    ctx = make_context(db, as_json)
    landing = batch.LandingOptions(
        test_cmd=test_cmd,
        format_cmd=format_cmd,
        push=push,
        remote=remote,
        branch=branch,
        test_timeout=units.duration(test_timeout) if test_timeout else None,
    )
    shown = listeners(ctx.as_json)
    try:
        outcome = batch.land(ctx.store(), run_id, landing, listeners=shown)
    finally:
        close_listeners(shown)
    if not ctx.as_json:
        _render_outcome(outcome)
    sys.exit(outcome.exit_code)


@cli.command()
@click.option("-n", "--limit", type=int, default=20, show_default=True, help="0 = all.")
@common
def runs(limit: int, db: str | None, as_json: bool) -> None:
    """Past runs and maps, newest first."""
    from herd.engine.journal import list_runs

    ctx = make_context(db, as_json)
    found = list_runs(ctx.store(runs=True), limit)

    def text() -> None:
        if not found:
            click.echo("no runs yet")
        for r in found:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(r["counts"].items()))
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
            click.echo(
                f"{r['id']}  {r['kind']:<8} {r['state']:<11} {started}  {counts}"
                + (f"  ({r['resume']} continues)" if r.get("resume") else "")
            )

    ctx.emit(found, text)


@cli.command()
@click.argument("run_id", required=False)
@click.option("--watch", is_flag=True, help="Refresh until the run ends.")
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between refreshes with --watch."
)
@common
def status(run_id: str | None, watch: bool, interval: float, db: str | None, as_json: bool) -> None:
    """A run's workers, their tasks and the counts, read from the journal."""
    from herd.views.status import snapshot

    ctx = make_context(db, as_json)
    store = ctx.store(runs=True)
    if watch and not ctx.as_json and sys.stdout.isatty():
        _watch_live(store, run_id, interval)
        return
    while True:
        snap = snapshot(store, run_id)
        if ctx.as_json:
            ctx.emit(snap)
        else:
            if watch:
                click.clear()
            _render_status(snap)
        if not watch or snap["state"] != "running":
            return
        time.sleep(interval)


def _watch_live(store: Any, run_id: str | None, interval: float) -> None:
    """The same live display as `herd run` shows, fed from the run's events.jsonl."""
    from rich.console import Console

    from herd.engine.journal import Journal, honest_run
    from herd.views.live import EventTail, LiveDisplay, follow
    from herd.views.status import snapshot

    journal = Journal.open(store, run_id)
    tail = EventTail(journal.run_dir / "events.jsonl")
    with LiveDisplay(Console()) as display:
        for event in tail.read_new():  # history: totals, the phase
            display.apply(event)
        # The journal has the last word on counts and on which workers are busy.
        display.seed(snapshot(store, journal.run_id), {t["task_id"]: t["state"] for t in journal.tasks()})
        if display.ended is not None:
            display.console.print(display.render())
            return
        follow(
            tail,
            display,
            interval=min(interval, 0.5),
            still_running=lambda: bool(honest_run(journal)["state"] == "running"),
        )


def _render_status(snap: Snapshot) -> None:
    counts = snap["counts"]
    click.echo(
        f"run {snap['run']} ({snap['kind']}) {snap['state']}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    if snap.get("error"):
        click.echo(f"  could not start: {snap['error']}")
    if snap.get("owner_gone"):
        click.echo(
            "  its herd process is gone (killed or crashed); "
            + (f"`{snap['resume']}` continues it" if snap.get("resume") else "it cannot be resumed")
        )
    elif snap.get("resume"):
        click.echo(f"  `{snap['resume']}` continues it")
    for worker in snap["workers"]:
        click.echo(
            f"  {worker['worker']:<6} {worker['task']:<20} attempt {worker['attempt']} "
            f"{worker['elapsed']:>6.1f}s  {worker['last_line'][:60]}"
        )
    if not snap["workers"]:
        click.echo("  no worker running")
