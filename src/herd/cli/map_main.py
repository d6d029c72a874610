"""`herd map` and `herd pipeline` once their arguments are read: click's command
(map_cmds) and the click-free path (map_fast) both hand a `MapRequest` to `run_map`.

Job stdout owns our stdout (each job's output written whole when it ends); herd's
own lines go to stderr, prefixed `herd:` (or the live display on a terminal). With
`--json`, stdout carries the event stream as `herd run --json` does (JSONL, ending with
`map_end` and `run_end`) and the jobs' stdout goes to `.herd/runs/<run>/stdout.log`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from herd.cli import map_forms as forms
from herd.errors import BadInput, NotFound
from herd.structs import replace, struct
from herd.units import plural

if TYPE_CHECKING:
    from herd.engine.journal import Listener


@struct(frozen=True)
class MapRequest:
    """`herd map`'s arguments, as the user gave them (click's defaults included)."""

    words: list[str]
    """The command and its sources (`CMD ARGS ::: a b`): after `--`, or GNU grammar's rest."""
    gnu_grammar: bool
    """No `--`: options first, then the command; no items before it."""
    items: tuple[str, ...] = ()
    from_file: str | None = None
    pattern: str | None = None
    arg_files: tuple[str, ...] = ()
    link: bool = False
    jobs: str | None = None
    batch_size: str = "1"
    retries: int = 0
    timeout: str | None = None
    halt: str | None = None
    joblog: str | None = None
    resume_run: str | None = None
    keep_order: bool = False
    null: bool = False
    colsep: str | None = None
    tag: bool = False
    tagstring: str | None = None
    results: str | None = None
    delay: str | None = None
    memfree: str | None = None
    load: str | None = None
    progress: bool = False
    dry_run: bool = False
    executor: str = "local"
    scheduler: str | None = None
    cpus_per_job: float | None = None
    memory_per_job: str | None = None
    db: str | None = None
    as_json: bool = False


def say(line: str) -> None:
    """One of herd's own lines, on stderr."""
    print(line, file=sys.stderr, flush=True)


def item_store(db: str | None) -> Any:
    from herd.store import Store, find_db, user_store_path

    try:
        path = find_db(db)
    except NotFound:
        path = user_store_path()
    return Store(path, create=True)


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


def run_map(r: MapRequest) -> None:
    """Run (or resume, or plan with --dry-run) a map; exits with its code."""
    from herd import units
    from herd.engine.journal import Journal
    from herd.engine.policies import Halt
    from herd.items import mapper, sources

    items = () if r.gnu_grammar else r.items
    command, found_sources = sources.split_command(r.words)
    found_sources = [sources.Source("file", (name,)) for name in r.arg_files] + found_sources
    if r.retries < 0:
        raise BadInput("--retries must be 0 or more")
    if r.resume_run:
        if command or items or r.from_file or r.pattern or found_sources:
            raise BadInput("--resume RUN re-runs RUN's own items and command; give no others")
        journal = Journal.open(item_store(r.db), r.resume_run)
        try:
            with shown(r.as_json, journal, progress=r.progress) as out:
                outcome = mapper.resume(journal, out=out)
        finally:
            _close(journal)
        finish(r.as_json, outcome, "map")
    if not command:
        raise BadInput(
            "say what to run: herd map [OPTIONS] -- CMD [ARGS with {}] ::: ITEMS (or items on stdin)"
        )
    workers = forms.workers_for(r.jobs, os.cpu_count() or 1)
    relative = r.timeout is not None and r.timeout.strip().endswith("%")
    joblog = Path(r.joblog).resolve() if r.joblog else None
    options = mapper.MapOptions(
        argv=command,
        workers=workers,
        batch_size=_count(r.batch_size, "--batch-size"),
        retries=r.retries,
        timeout=units.duration(r.timeout) if r.timeout and not relative else None,
        timeout_percent=forms.percent(r.timeout) if relative and r.timeout else None,
        keep_order=r.keep_order,
        joblog=joblog,
        cwd=Path.cwd(),
        colsep=r.colsep,
        multi=sources.is_multi(found_sources),
        tag=r.tag,
        tagstring=r.tagstring,
        results=Path(r.results).resolve() if r.results else None,
        delay=units.duration(r.delay) if r.delay else None,
        memfree=units.size(r.memfree) if r.memfree else None,
        load=forms.load(r.load),
        executor=r.executor,
        scheduler=r.scheduler,
        cpus_per_job=r.cpus_per_job,
        memory_per_job=units.size(r.memory_per_job) if r.memory_per_job else None,
        halt=r.halt,
    )
    Halt.parse(r.halt)  # refused before anything runs
    template = options.template()  # unknown {word}, bad --colsep: refused before anything runs
    if r.tagstring:
        from herd.items.template import TextTemplate

        TextTemplate(r.tagstring, template, "--tagstring")
    if joblog and not joblog.parent.is_dir():
        raise BadInput(
            f"--joblog {r.joblog}: directory {joblog.parent} does not "
            "exist; create it or write the joblog elsewhere"
        )
    if r.executor == "local" and (r.scheduler or r.cpus_per_job or r.memory_per_job):
        raise BadInput("--scheduler, --cpus-per-job and --memory-per-job need --executor dask")
    found = forms.items_from(items, r.from_file, r.pattern, found_sources, r.null, r.link)
    if workers == -1:
        options = replace(options, workers=max(1, min(len(found), forms.MAX_UNBOUNDED_WORKERS)))
    the_plan = mapper.plan(len(found), options)
    if r.dry_run:
        groups = list(mapper.batches(found, the_plan.batch_size))
        if r.as_json:
            batches = [list(template.expand(g, seq)) for seq, g in enumerate(groups, 1)]
            plan = {**the_plan.to_dict(), "command": list(command), "batches": batches}
            print(json.dumps(plan, ensure_ascii=False, indent=2))
        else:
            _render_plan(the_plan, groups)
        return
    dashless_stdin = r.gnu_grammar and not found_sources
    if not found and not (items or r.from_file or r.pattern) and not dashless_stdin:
        # GNU parallel's sources (stdin, :::: FILE) may be empty: nothing to do, as it does.
        say("herd: no items in the input; nothing to run")
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
    journal = Journal.create(item_store(r.db), "map", {**options.to_args(), "items": len(found)})
    try:
        with shown(r.as_json, journal, progress=r.progress) as out:
            outcome = mapper.start(journal, found, options, the_plan, out=out)
    finally:
        _close(journal)
    finish(r.as_json, outcome, "map")


def _close(journal: Any) -> None:
    """The events file and the store closed now, not whenever the interpreter gets to them
    (the click-free path ends the process without its clean-up)."""
    journal.close()
    journal.store.close()


def _render_plan(the_plan: Any, groups: list[tuple[str, ...]]) -> None:
    print(
        f"{plural(the_plan.items, 'item')} -> "
        f"{plural(the_plan.invocations, 'invocation')} of "
        f"{the_plan.batch_size} ({the_plan.batch_reason})"
    )
    print(f"workers: {the_plan.workers} ({the_plan.worker_reason})")
    for seq, group in enumerate(groups[:20], 1):
        print(f"  {seq:>5}: {' '.join(group).replace(chr(0), ' ')}")
    if len(groups) > 20:
        print(f"  ... {len(groups) - 20} more")


def _listeners(as_json: bool, live: bool, progress: bool = False) -> list[Listener]:
    """As `herd run` chooses, for items: JSONL events with --json, the live display on a
    terminal (not for a pipeline, which sends no progress events), `herd:` lines without a
    clock otherwise. `--eta`/`--progress`/`--bar` ask for the live display on a terminal even
    with HERD_PROGRESS=plain, and add a progress line every few seconds elsewhere."""
    from herd.cli.shown import listeners

    if progress and not as_json and sys.stderr.isatty():
        from herd.views.live import LiveDisplay

        return [LiveDisplay()]
    chosen = listeners(as_json, items=True, live=live)
    if progress and not as_json and not any(type(one).__name__ == "LiveDisplay" for one in chosen):
        chosen.append(forms.ProgressLines())
    return chosen


@contextmanager
def shown(as_json: bool, journal: Any, *, live: bool = True, progress: bool = False) -> Iterator[IO[bytes]]:
    """Attach how events are shown for the map's whole life; yield where job stdout goes:
    ours; the run's stdout.log when ours carries the JSONL events; above the live rows
    when the live display draws on the same terminal."""
    from herd.cli.shown import close_listeners

    chosen = _listeners(as_json, live, progress)
    journal.listeners.extend(chosen)
    try:
        if as_json:
            journal.run_dir.mkdir(parents=True, exist_ok=True)
            with (journal.run_dir / "stdout.log").open("ab") as log:
                yield log
            return
        console = next((getattr(s, "console", None) for s in chosen), None)
        if console is not None and sys.stdout.isatty():
            above = _AboveLive(console)
            try:
                yield cast(IO[bytes], above)
            finally:
                above.close()
            return
        yield sys.stdout.buffer
    finally:
        close_listeners(chosen)


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


def finish(as_json: bool, outcome: Any, what: str) -> None:
    if not as_json:  # with --json the events (map_end, run_end) were the output
        _summary(outcome, what)
    sys.stdout.flush()
    sys.exit(outcome.exit_code)


def _summary(outcome: Any, what: str) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
    retries = f" (retries: {outcome.retries})" if what == "map" else ""
    say(f"herd: {what} {outcome.run_id} {outcome.state.value}: {counts} in {outcome.elapsed:.1f}s{retries}")
    for decision in outcome.scaling[-1:]:
        say(
            f"herd: -j auto chose {plural(decision['workers'], 'worker')}: "
            f"{decision['reason']} [{decision['jobs']}]"
        )
    if outcome.halted:
        say(f"herd: halted ({outcome.halted}); `herd map --resume {outcome.run_id}` runs the rest")
    if outcome.exit_code == 130:
        hint = f"herd map --resume {outcome.run_id}" if what == "map" else f"herd runs (run {outcome.run_id})"
        say(f"herd: interrupted; state saved: {hint} continues")
    elif outcome.failed and what == "map":
        say(
            f"herd: {len(outcome.failed)} failed; their stderr is in {_stderr_log(outcome)}"
            f"; `herd map --resume {outcome.run_id}` re-runs them"
        )


def _stderr_log(outcome: Any) -> str:
    """The log's path, relative to here when it is below (shorter to read and to paste)."""
    path = Path(outcome.stderr_log)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
