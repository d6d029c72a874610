"""`herd demo`: build the sample project and run the whole job on it."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import click

from herd.cli.app import cli, common, make_context


@cli.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option(
    "--with-failures", is_flag=True, help="Add a task that breaks the tests (watch herd bisect and eject it)."
)
@click.option("-j", "--jobs", type=int, default=4, show_default=True, help="Workers running side by side.")
@common
def demo(directory: Path | None, with_failures: bool, jobs: int, db: str | None, as_json: bool) -> None:
    """Run the built-in example end to end: 12 tasks, a bare remote, one push.

    The sample repository is built in DIRECTORY and kept there to look around; without
    DIRECTORY it is built in a temporary directory that is removed at the end."""
    from herd.errors import Refused
    from herd.git.repo import enclosing_repository

    ctx = make_context(db, as_json)
    if directory is not None:
        inside = enclosing_repository(directory)
        if inside is not None:
            raise Refused(
                f"{directory} is inside the git repository {inside}; the demo builds "
                "its own repository and remote: pass a directory outside any "
                "repository (e.g. ~/herd-demo), or none for a temporary one"
            )
        sys.exit(_demo(directory.absolute(), with_failures, jobs, ctx.as_json, keep=True))
    root = Path(tempfile.mkdtemp(prefix="herd-demo-"))
    cwd = Path.cwd()
    try:
        code = _demo(root, with_failures, jobs, ctx.as_json, keep=False)
    finally:
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)
    if not ctx.as_json:
        click.echo(
            f"herd demo: removed {root}; `herd demo DIR` keeps the sample repository, "
            "its remote and the HTML report to look around",
            err=True,
        )
    sys.exit(code)


def _demo(root: Path, with_failures: bool, jobs: int, as_json: bool, *, keep: bool) -> int:
    from herd.cli.run_cmds import _render_outcome
    from herd.cli.shown import close_listeners, listeners
    from herd.demo import example as demo_mod
    from herd.git.repo import Git
    from herd.run import batch
    from herd.run.agents import from_command
    from herd.run.attempts import RunOptions
    from herd.store import Store
    from herd.units import plural

    repo, ids = demo_mod.build(root, with_failures=with_failures)
    click.echo(
        f"herd demo: sample repository {repo} with {plural(len(ids), 'task')} (remote {root / 'remote.git'})",
        err=True,
    )
    if Git(repo).config_get("user.email") == demo_mod.FALLBACK_EMAIL:
        click.echo(
            f"herd demo: git has no user identity here; the sample repository commits as "
            f"{demo_mod.FALLBACK_NAME} <{demo_mod.FALLBACK_EMAIL}>",
            err=True,
        )
    os.chdir(repo)
    store = Store(repo / ".herd" / "herd.db")
    options = RunOptions(agent=from_command(demo_mod.worker_command()), workers=jobs)
    landing = batch.LandingOptions(test_cmd=f"{sys.executable} check.py", push=True)
    shown = listeners(as_json)
    try:
        outcome = batch.start(store, ids=ids, jobs=jobs, options=options, landing=landing, listeners=shown)
    finally:
        close_listeners(shown)
    from herd.views import report

    html = root / "report.html"
    if keep:
        html.write_text(report.render(report.build(store, outcome.run_id), "html"), encoding="utf-8")
    store.close()
    if not as_json:
        _render_outcome(outcome)
        if keep:
            click.echo(f"\nHTML report: {html}")
            click.echo(
                f"look around: cd {repo} && herd runs && herd report && herd list --all && git log --oneline"
            )
    return int(outcome.exit_code)
