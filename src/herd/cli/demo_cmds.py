"""`herd demo`: build the sample project and run the whole job on it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from herd.cli.app import cli, common, make_context


@cli.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--with-failures", is_flag=True, help="Add a task that breaks the tests "
              "(watch herd bisect and eject it).")
@click.option("-j", "--jobs", type=int, default=4, show_default=True)
@common
def demo(directory: Path | None, with_failures: bool, jobs: int, db: str | None,
         as_json: bool) -> None:
    """Run the built-in example end to end: 12 tasks, a bare remote, one push."""
    from herd import batch
    from herd import demo as demo_mod
    from herd.agents import from_command
    from herd.cli.run_cmds import _render_outcome, close_listeners, listeners
    from herd.hypervisor import RunOptions
    from herd.store import Store
    from herd.units import plural

    ctx = make_context(db, as_json)
    root = directory or Path(tempfile.mkdtemp(prefix="herd-demo-"))
    repo, ids = demo_mod.build(root, with_failures=with_failures)
    click.echo(f"herd demo: sample repository {repo} with {plural(len(ids), 'task')} "
               f"(remote {root / 'remote.git'})", err=True)
    os.chdir(repo)
    store = Store(repo / ".herd" / "herd.db")
    options = RunOptions(agent=from_command(demo_mod.worker_command()), workers=jobs)
    landing = batch.LandingOptions(test_cmd=f"{sys.executable} check.py", push=True)
    shown = listeners(ctx.as_json)
    try:
        outcome = batch.start(store, ids=ids, jobs=jobs, options=options, landing=landing,
                              listeners=shown)
    finally:
        close_listeners(shown)
    from herd import report

    html = root / "report.html"
    html.write_text(report.render(report.build(store, outcome.run_id), "html"), encoding="utf-8")
    if not ctx.as_json:
        _render_outcome(outcome)
        click.echo(f"\nHTML report: {html}")
        click.echo(f"look around: cd {repo} && herd runs && herd report && herd list --all "
                   "&& git log --oneline")
    sys.exit(outcome.exit_code)
