"""`herd report`: the checkpoint of a run or map, as md, json or html."""

from __future__ import annotations

from pathlib import Path

import click

from herd.cli.app import cli, common, make_context
from herd.errors import BadInput


@cli.command()
@click.argument("run_id", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "html"]),
    default=None,
    help="Default: md (json with --json; html when -o ends in .html).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Write the report here instead of stdout.",
)
@click.option(
    "--verify-cmd",
    metavar="CMD",
    help="Spot-check processed tasks/items: {} is the item or task id (no shell).",
)
@click.option("--sample", type=int, help="How many to spot-check (with --verify-cmd).")
@click.option("--seed", type=int, help="Sample seed (printed, so a sample can be re-checked).")
@click.option(
    "--file-followups", is_flag=True, help="File one issue per failure group (once per run and group)."
)
@common
def report(
    run_id: str | None,
    fmt: str | None,
    output: Path | None,
    verify_cmd: str | None,
    sample: int | None,
    seed: int | None,
    file_followups: bool,
    db: str | None,
    as_json: bool,
) -> None:
    """Checkpoint: expected / processed / failed / deferred / ejected, failure causes,
    verification sample, timeline (default: the latest run)."""
    from herd.views import report as report_mod

    ctx = make_context(db, as_json)
    if (verify_cmd is None) != (sample is None):
        raise BadInput("--verify-cmd and --sample go together: --verify-cmd CMD --sample K")
    if seed is not None and verify_cmd is None:
        raise BadInput("--seed picks the verification sample: add --verify-cmd CMD --sample K")
    fmt = fmt or (
        "json" if ctx.as_json else "html" if output is not None and output.suffix == ".html" else "md"
    )
    store = ctx.store(runs=True)
    data = report_mod.build(store, run_id)
    if verify_cmd is not None and sample is not None:
        check = report_mod.verify(data, verify_cmd, sample, seed, cwd=store.herd_dir.parent)
        click.echo(
            f"herd: verification: {check['passed']}/{check['sample']} passed (seed {check['seed']})", err=True
        )
    if file_followups:
        for filed in report_mod.file_followups(store, data):
            click.echo(
                f"herd: follow-up {filed['issue']} "
                f"{'filed' if filed['created'] else 'already filed'} for group "
                f"{filed['group']}",
                err=True,
            )
    text = report_mod.render(data, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"herd: wrote {output}", err=True)
