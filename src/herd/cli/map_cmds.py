"""`herd map` and `herd pipeline`: item batches, rendered for people or as JSON.

Job stdout owns our stdout (each job's output written whole when it ends); herd's
own lines go to stderr, prefixed `herd:` (or the live display on a terminal). With
`--json`, stdout carries the event stream as `herd run --json` does (JSONL, ending with
`map_end` and `run_end`) and the jobs' stdout goes to `.herd/runs/<run>/stdout.log`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from herd.cli import map_forms as forms
from herd.cli.app import cli, common, make_context
from herd.errors import BadInput, NotFound
from herd.units import plural

if TYPE_CHECKING:
    from herd.engine.journal import Listener

STORE_HELP = (
    "Store: .herd/herd.db found upwards from the working directory (or --db / HERD_DB), "
    "else the per-user store $XDG_STATE_HOME/herd/herd.db (default "
    "~/.local/state/herd/herd.db), so it works outside a herd repo too."
)


def item_store(db: str | None) -> Any:
    from herd.store import Store, find_db, user_store_path

    try:
        path = find_db(db)
    except NotFound:
        path = user_store_path()
    return Store(path, create=True)


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


def _count(value: str | None, what: str) -> int | None:
    """`N` or `auto` (None)."""
    if value is None or value == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadInput(f"{what} {value!r}: use a positive number or auto") from None
    if number < 1:
        raise BadInput(f"{what} must be at least 1, got {number}")
    return number


def _listeners(as_json: bool, live: bool, progress: bool = False) -> list[Listener]:
    """As `herd run` chooses, for items: JSONL events with --json, the live display on a
    terminal (not for a pipeline, which sends no progress events), `herd:` lines without a
    clock otherwise. `--eta`/`--progress`/`--bar` ask for the live display on a terminal even
    with HERD_PROGRESS=plain, and add a progress line every few seconds elsewhere."""
    from herd.cli.run_cmds import listeners

    if progress and not as_json and sys.stderr.isatty():
        from herd.views.live import LiveDisplay

        return [LiveDisplay()]
    shown = listeners(as_json, items=True, live=live)
    if progress and not as_json and not any(type(one).__name__ == "LiveDisplay" for one in shown):
        shown.append(forms.ProgressLines())
    return shown


def _summary(outcome: Any, what: str) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
    retries = f" (retries: {outcome.retries})" if what == "map" else ""
    click.echo(
        f"herd: {what} {outcome.run_id} {outcome.state.value}: {counts} in {outcome.elapsed:.1f}s{retries}",
        err=True,
    )
    for decision in outcome.scaling[-1:]:
        click.echo(
            f"herd: -j auto chose {plural(decision['workers'], 'worker')}: "
            f"{decision['reason']} "
            f"[{decision['jobs']}]",
            err=True,
        )
    if outcome.halted:
        click.echo(
            f"herd: halted ({outcome.halted}); `herd map --resume {outcome.run_id}` runs the rest", err=True
        )
    if outcome.exit_code == 130:
        hint = f"herd map --resume {outcome.run_id}" if what == "map" else f"herd runs (run {outcome.run_id})"
        click.echo(f"herd: interrupted; state saved: {hint} continues", err=True)
    elif outcome.failed and what == "map":
        click.echo(
            f"herd: {len(outcome.failed)} failed; their stderr is in {_stderr_log(outcome)}"
            f"; `herd map --resume {outcome.run_id}` re-runs them",
            err=True,
        )


def _stderr_log(outcome: Any) -> str:
    """The log's path, relative to here when it is below (shorter to read and to paste)."""
    path = Path(outcome.stderr_log)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _render_plan(the_plan: Any, groups: list[tuple[str, ...]]) -> None:
    click.echo(
        f"{plural(the_plan.items, 'item')} -> "
        f"{plural(the_plan.invocations, 'invocation')} of "
        f"{the_plan.batch_size} ({the_plan.batch_reason})"
    )
    click.echo(f"workers: {the_plan.workers} ({the_plan.worker_reason})")
    for seq, group in enumerate(groups[:20], 1):
        click.echo(f"  {seq:>5}: {' '.join(group).replace(chr(0), ' ')}")
    if len(groups) > 20:
        click.echo(f"  ... {len(groups) - 20} more")


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
    from herd import units
    from herd.engine.journal import Journal
    from herd.engine.policies import Halt
    from herd.items import mapper, sources

    ctx = make_context(db, as_json)
    meta = click.get_current_context().meta
    words = list(meta.get("herd_command") or [])
    if meta.get("herd_gnu_grammar"):
        words, items = list(items), ()
    command, found_sources = sources.split_command(words)
    found_sources = [sources.Source("file", (name,)) for name in arg_files] + found_sources
    if retries < 0:
        raise BadInput("--retries must be 0 or more")
    if resume_run:
        if command or items or from_file or pattern or found_sources:
            raise BadInput("--resume RUN re-runs RUN's own items and command; give no others")
        store = item_store(ctx.db)
        journal = Journal.open(store, resume_run)
        with _shown(ctx.as_json, journal, progress=progress) as out:
            outcome = mapper.resume(journal, out=out)
        _finish(ctx, outcome, "map")
    if not command:
        raise BadInput(
            "say what to run: herd map [OPTIONS] -- CMD [ARGS with {}] ::: ITEMS (or items on stdin)"
        )
    cores = os.cpu_count() or 1
    workers = forms.workers_for(jobs, cores)
    relative = timeout is not None and timeout.strip().endswith("%")
    options = mapper.MapOptions(
        argv=command,
        workers=workers,
        batch_size=_count(batch_size, "--batch-size"),
        retries=retries,
        timeout=units.duration(timeout) if timeout and not relative else None,
        timeout_percent=forms.percent(timeout) if relative and timeout else None,
        keep_order=keep_order,
        joblog=Path(joblog).resolve() if joblog else None,
        cwd=Path.cwd(),
        colsep=colsep,
        multi=sources.is_multi(found_sources),
        tag=tag,
        tagstring=tagstring,
        results=Path(results).resolve() if results else None,
        delay=units.duration(delay) if delay else None,
        memfree=units.size(memfree) if memfree else None,
        load=forms.load(load),
        executor=executor,
        scheduler=scheduler,
        cpus_per_job=cpus_per_job,
        memory_per_job=units.size(memory_per_job) if memory_per_job else None,
        halt=halt,
    )
    Halt.parse(halt)  # refused before anything runs
    template = options.template()  # unknown {word}, bad --colsep: refused before anything runs
    if tagstring:
        from herd.items.template import TextTemplate

        TextTemplate(tagstring, template, "--tagstring")
    if joblog and not Path(joblog).resolve().parent.is_dir():
        raise BadInput(
            f"--joblog {joblog}: directory {Path(joblog).resolve().parent} does not "
            "exist; create it or write the joblog elsewhere"
        )
    if executor == "local" and (scheduler or cpus_per_job or memory_per_job):
        raise BadInput("--scheduler, --cpus-per-job and --memory-per-job need --executor dask")
    found = forms.items_from(items, from_file, pattern, found_sources, null, link)
    if workers == -1:
        options = dataclasses.replace(options, workers=max(1, min(len(found), forms.MAX_UNBOUNDED_WORKERS)))
    the_plan = mapper.plan(len(found), options)
    if dry_run:
        groups = list(mapper.batches(found, the_plan.batch_size))
        ctx.emit(
            {
                **the_plan.to_dict(),
                "command": list(command),
                "batches": [list(template.expand(g, seq)) for seq, g in enumerate(groups, 1)],
            },
            lambda: _render_plan(the_plan, groups),
        )
        return
    dashless_stdin = bool(meta.get("herd_gnu_grammar")) and not found_sources
    if not found and not (items or from_file or pattern) and not dashless_stdin:
        # GNU parallel's sources (stdin, :::: FILE) may be empty: nothing to do, as it does.
        click.echo("herd: no items in the input; nothing to run", err=True)
        return
    if not found and dashless_stdin:
        raise BadInput(
            f"no items on standard input for {' '.join(command)!r}; herd's own "
            "form puts items before --: herd map ITEM... -- CMD"
        )
    if not found:
        raise BadInput(
            "no items: give them after the command (::: a b, :::: FILE), on "
            "standard input, as arguments before --, --from FILE|-, or --glob PATTERN"
        )
    store = item_store(ctx.db)
    journal = Journal.create(store, "map", {**options.to_args(), "items": len(found)})
    with _shown(ctx.as_json, journal, progress=progress) as out:
        outcome = mapper.start(journal, found, options, the_plan, out=out)
    _finish(ctx, outcome, "map")


@contextmanager
def _shown(as_json: bool, journal: Any, *, live: bool = True, progress: bool = False) -> Iterator[IO[bytes]]:
    """Attach how events are shown for the map's whole life; yield where job stdout goes:
    ours; the run's stdout.log when ours carries the JSONL events; above the live rows
    when the live display draws on the same terminal."""
    from herd.cli.run_cmds import close_listeners

    shown = _listeners(as_json, live, progress)
    journal.listeners.extend(shown)
    try:
        if as_json:
            journal.run_dir.mkdir(parents=True, exist_ok=True)
            with (journal.run_dir / "stdout.log").open("ab") as log:
                yield log
            return
        console = next((getattr(s, "console", None) for s in shown), None)
        if console is not None and sys.stdout.isatty():
            above = _AboveLive(console)
            try:
                yield cast(IO[bytes], above)
            finally:
                above.close()
            return
        yield sys.stdout.buffer
    finally:
        close_listeners(shown)


class _AboveLive:
    """Job output printed through the live display's console, so it scrolls above the live
    rows instead of being drawn over by them. Only complete lines; the rest waits."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.partial = b""

    def write(self, data: bytes) -> int:
        complete, newline, self.partial = (self.partial + data).rpartition(b"\n")
        if newline:
            self.console.out(complete.decode(errors="replace"), highlight=False)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.partial:
            self.console.out(self.partial.decode(errors="replace"), highlight=False)
            self.partial = b""


def _finish(ctx: Any, outcome: Any, what: str) -> None:
    if not ctx.as_json:  # with --json the events (map_end, run_end) were the output
        _summary(outcome, what)
    sys.stdout.flush()
    sys.exit(outcome.exit_code)


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
    with _shown(ctx.as_json, journal, live=False) as out:
        outcome = pipeline.run(journal, spec, out=out)
    _finish(ctx, outcome, "pipeline")
