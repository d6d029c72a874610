"""`herd map` and `herd pipeline` as click commands: their options and help. What they
do once parsed is in map_main (shared with the click-free path, map_fast)."""

from __future__ import annotations

from pathlib import Path

import click

from herd.cli.app import cli, common, make_context
from herd.cli.map_main import MapRequest, finish, item_store, run_map, shown

STORE_HELP = (
    "Store: .herd/herd.db found upwards from the working directory (or --db / HERD_DB), "
    "else the per-user store $XDG_STATE_HOME/herd/herd.db (default "
    "~/.local/state/herd/herd.db), so it works outside a herd repo too."
)


class _CommandAfterDashes(click.Command):
    """Everything after the first `--` is the command, kept verbatim (click would
    otherwise mix it into the items). Without `--`, GNU parallel's grammar: options
    first, then the command and its arguments, sources (`:::`) last."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["herd_command"] = args[cut + 1 :]
            args = args[:cut]
        else:
            ctx.allow_interspersed_args = False
            ctx.meta["herd_gnu_grammar"] = True
        return super().parse_args(ctx, args)


@cli.command("map", cls=_CommandAfterDashes, epilog=STORE_HELP)
@click.argument("items", nargs=-1)
@click.option("--from", "from_file", metavar="FILE|-", help="Items, one per line (- = stdin).")
@click.option("--glob", "pattern", metavar="PATTERN", help="Items: matching paths (** recurses).")
@click.option(
    "-a", "--arg-file", "arg_files", multiple=True, metavar="FILE", help="Items: lines of FILE, as :::: FILE."
)
@click.option(
    "-j",
    "--jobs",
    metavar="N|N%|+N|-N|0|auto",
    help="Workers (default: min(8, cores)); N% / +N / -N of the cores; auto measures and scales.",
)
@click.option(
    "-n",
    "--batch-size",
    "--max-args",
    "batch_size",
    metavar="N|auto",
    default="1",
    show_default=True,
    help="Items per invocation; auto picks 1 for few items, 10-20 for many.",
)
@click.option(
    "--retries",
    type=int,
    default=0,
    show_default=True,
    help="Attempts after the first for a job that fails (0: as GNU parallel, a failed job is not repeated).",
)
@click.option(
    "--timeout",
    metavar="DUR|N%",
    help="Per invocation, e.g. 30s, 5m; N%: of the median time of the jobs that succeeded.",
)
@click.option(
    "--halt",
    metavar="WHEN,WHY=N",
    help="Stop early, as GNU parallel: "
    "now|soon,fail|success|done=N|P%; e.g. now,fail=1 (exit: the failed job's code).",
)
@click.option("--joblog", type=click.Path(dir_okay=False), help="GNU parallel joblog file.")
@click.option(
    "--resume",
    "resume_run",
    metavar="RUN",
    help="Re-run what did not succeed in RUN, with its original command.",
)
@click.option(
    "--link", "--xapply", "link", is_flag=True, help="Pair the sources (as :::+) instead of combining them."
)
@click.option("-k", "--keep-order", is_flag=True, help="Output in input order.")
@click.option("-0", "--null", is_flag=True, help="Items from stdin / :::: are NUL-separated.")
@click.option("--colsep", "-C", metavar="REGEX", help="Split items into columns {1} {2}...")
@click.option("--tag", is_flag=True, help="Prefix output lines with the item and a tab.")
@click.option("--tagstring", metavar="STR", help="Prefix output lines with STR and a tab.")
@click.option(
    "--results",
    metavar="DIR",
    help="Save each job's stdout, stderr and seq in "
    "DIR/1/<item>/ (GNU parallel's layout) instead of printing its stdout.",
)
@click.option("--delay", metavar="DUR", help="At least DUR between two job starts.")
@click.option("--memfree", metavar="SIZE", help="Start no job while free memory < SIZE.")
@click.option("--load", metavar="N|N%", help="Start no job while the load average > N.")
@click.option(
    "--eta",
    "--progress",
    "--bar",
    "progress",
    is_flag=True,
    help="Show progress and ETA (the live display on a terminal, lines otherwise).",
)
@click.option("--dry-run", is_flag=True, help="Print the batches and workers, run nothing.")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Where jobs run: here, or as Dask tasks.",
)
@click.option(
    "--scheduler",
    metavar="ADDR",
    help="Dask scheduler to join (tcp://HOST:8786); without it --executor dask starts a local cluster.",
)
@click.option("--cpus-per-job", type=float, help="Dask: CPU resource each job needs.")
@click.option("--memory-per-job", metavar="SIZE", help="Dask: MEMORY resource each job needs.")
@common
def map_command(
    items: tuple[str, ...],
    from_file: str | None,
    pattern: str | None,
    arg_files: tuple[str, ...],
    link: bool,
    jobs: str | None,
    batch_size: str,
    retries: int,
    timeout: str | None,
    halt: str | None,
    joblog: str | None,
    resume_run: str | None,
    keep_order: bool,
    null: bool,
    colsep: str | None,
    tag: bool,
    tagstring: str | None,
    results: str | None,
    delay: str | None,
    memfree: str | None,
    load: str | None,
    progress: bool,
    dry_run: bool,
    executor: str,
    scheduler: str | None,
    cpus_per_job: float | None,
    memory_per_job: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Run CMD once per item, as GNU parallel does: herd map [OPTIONS] -- CMD [ARGS] ::: ITEMS.

    \b
    Items: ::: a b c, :::: FILE, several sources -> every combination (:::+ pairs them),
    else standard input (one per line; -0: NUL-separated); or herd's forms: ITEM... before
    --, --from FILE|-, --glob PATTERN. Replacement strings anywhere in an argument:
    {} {.} {/} {//} {/.} {#} {%} {1} {2} {1.} {1/} ...; without any, the items are appended.
    Nothing goes through a shell, except a command given as one string with spaces
    ('gzip -9 {}'), which runs under /bin/sh with the values quoted, as GNU parallel does.
    Without --, options must come before CMD (GNU parallel's rule).

    Each job's stdout is written whole when it ends (never interleaved); the tail of its
    stderr goes to .herd/runs/RUN/stderr.log, prefixed with the batch number.
    Exit 0: all succeeded; 1: some failed; 130: interrupted (--resume RUN continues).
    """
    ctx = make_context(db, as_json)
    meta = click.get_current_context().meta
    gnu = bool(meta.get("herd_gnu_grammar"))
    request = MapRequest(
        words=list(items) if gnu else list(meta.get("herd_command") or []),
        gnu_grammar=gnu,
        items=() if gnu else items,
        from_file=from_file,
        pattern=pattern,
        arg_files=arg_files,
        link=link,
        jobs=jobs,
        batch_size=batch_size,
        retries=retries,
        timeout=timeout,
        halt=halt,
        joblog=joblog,
        resume_run=resume_run,
        keep_order=keep_order,
        null=null,
        colsep=colsep,
        tag=tag,
        tagstring=tagstring,
        results=results,
        delay=delay,
        memfree=memfree,
        load=load,
        progress=progress,
        dry_run=dry_run,
        executor=executor,
        scheduler=scheduler,
        cpus_per_job=cpus_per_job,
        memory_per_job=memory_per_job,
        db=ctx.db,
        as_json=ctx.as_json,
    )
    run_map(request)


@cli.command("pipeline", epilog=STORE_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--retries", type=int, default=1, show_default=True, help="Attempts after the first for a job that fails."
)
@click.option(
    "--halt", metavar="WHEN,WHY=N", help="Stop early, as GNU parallel: now|soon,fail|success|done=N|P%."
)
@common
def pipeline_command(file: str, retries: int, halt: str | None, db: str | None, as_json: bool) -> None:
    """Run a multi-stage pipeline from FILE.toml: items stream from stage to stage.

    [[stage]] tables: name, cmd (string split like a shell would, or an argv list),
    workers, optional batch_size, optional items_from = "stdout" (this stage's items are
    the previous stage's output lines). Top level: items = [...] or items_from_file.
    Exit codes as herd map.
    """
    from herd.engine.journal import Journal
    from herd.items import pipeline

    ctx = make_context(db, as_json)
    spec = pipeline.load(Path(file), retries=retries, halt=halt)
    store = item_store(ctx.db)
    journal = Journal.create(store, "pipeline", spec.to_args())
    with shown(ctx.as_json, journal, live=False) as out:
        outcome = pipeline.run(journal, spec, out=out)
    finish(ctx.as_json, outcome, "pipeline")
