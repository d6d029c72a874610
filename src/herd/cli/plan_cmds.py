"""`herd plan`: is this batch safe to run side by side?"""

from __future__ import annotations

from typing import Any

import click

from herd.cli.app import cli, common, make_context, warn


def task_selection(func: Any) -> Any:
    """The task-set options `plan` and `run` share."""
    func = click.option(
        "--include-blockers", is_flag=True, help="Add open blockers of the named tasks to the batch."
    )(func)
    func = click.option("--parent", metavar="EPIC", help="The epic's open children.")(func)
    func = click.option("--ready", "use_ready", is_flag=True, help="Every ready issue.")(func)
    func = click.argument("ids", nargs=-1)(func)
    return func


def build_plan(
    ctx: Any,
    ids: tuple[str, ...],
    use_ready: bool,
    parent: str | None,
    jobs: int | None,
    include_blockers: bool,
) -> Any:
    from herd.git.repo import Git
    from herd.run.plan import make_plan, select_tasks

    store = ctx.store()
    task_ids = select_tasks(store, ids, ready=use_ready, parent=parent)
    files = Git(store.root).ls_files() if (store.root / ".git").exists() else []
    return store, make_plan(store, task_ids, files, jobs=jobs, include_blockers=include_blockers)


def render_plan(plan: Any) -> None:
    from herd.units import plural

    click.echo(
        f"plan: {plural(len(plan.tasks), 'task')} in {plural(len(plan.waves), 'wave')}, "
        f"{plural(plan.workers, 'worker')}"
    )
    titles = {t["id"]: t.get("title", "") for t in plan.tasks}
    for n, wave in enumerate(plan.waves, start=1):
        click.echo(f"  wave {n}:")
        for task_id in wave:
            click.echo(f"    {task_id}  {titles[task_id]}")
    if plan.conflicts:
        click.echo("conflicts (kept in different waves):")
        for c in plan.conflicts:
            click.echo(f"  {c.a} <-> {c.b}: {c.reason}")
            for path in c.paths[:3]:
                click.echo(f"      {path}")
    for message in plan.warnings:
        warn(message)


@cli.command()
@task_selection
@click.option("-j", "--jobs", type=int, help="Workers (default: min(8, cores, largest wave)).")
@common
def plan(
    ids: tuple[str, ...],
    use_ready: bool,
    parent: str | None,
    include_blockers: bool,
    jobs: int | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Check that tasks can run side by side: waves, scope conflicts, workers (exit 4 if not)."""
    ctx = make_context(db, as_json)
    _, result = build_plan(ctx, ids, use_ready, parent, jobs, include_blockers)
    ctx.emit(result.to_json(), lambda: render_plan(result))
