"""What a map is before it runs: its options (as journaled, so `--resume` runs the same
map), its plan (batch size and workers, what `--dry-run` prints) and its outcome; how items
are cut into batches. `mapper.py` runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from herd.engine.events import MapEnd, PipelineEnd
from herd.engine.executor.base import Executor
from herd.engine.executor.local import LocalExecutor
from herd.engine.journal import RunState
from herd.engine.policies import Halt, Policies, Policy, Retries, TimeLimit
from herd.items.template import Template
from herd.structs import field, struct
from herd.units import plural

AUTO_BATCH_MIN, AUTO_BATCH_MAX = 10, 20


# -- items and batches -----------------------------------------------------------------


def auto_batch_size(count: int, workers: int) -> tuple[int, str]:
    """Items per invocation when the user did not say: 1 while there are too few items to
    keep every worker busy with batches of 10 (parallelism first), else 10-20 (start-up
    cost per item first), always leaving at least 4 batches per worker."""
    if count < AUTO_BATCH_MIN * 4 * workers:
        return 1, (
            f"{plural(count, 'item')} for {plural(workers, 'worker')}: one item per "
            "invocation keeps them busy"
        )
    size = max(AUTO_BATCH_MIN, min(AUTO_BATCH_MAX, count // (4 * workers)))
    return size, (
        f"{plural(count, 'item')} for {plural(workers, 'worker')}: {size} per invocation amortises start-up"
    )


def batches(items: Sequence[str], size: int) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


def resolve_program(argv: Sequence[str]) -> tuple[str, ...]:
    """argv with its program looked up on PATH once, up front: otherwise every spawn
    repeats the search, one failed execve per PATH entry before the right one (measured:
    most of the per-job cost of a cheap job beyond the fork itself). Paths are left alone.
    The search is execvp's (an executable regular file in a PATH directory; an empty entry
    is the current directory), done here rather than with `shutil.which`, whose import
    (bz2, lzma, fnmatch) costs a map's start ~3 ms."""
    program = argv[0]
    if os.sep in program:
        return tuple(argv)
    for directory in os.get_exec_path():
        candidate = os.path.join(directory or os.curdir, program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return (candidate, *argv[1:])
    return tuple(argv)  # the executor reports "command not found" per job, exit 127


# -- options, plan, outcome ------------------------------------------------------------


if TYPE_CHECKING:  # plain dicts at run time (a TypedDict class costs start-up)
    from typing import Required, TypedDict

    from herd.engine.events import ScaleDecision, StageCounts

    class MapArgs(TypedDict, total=False):
        """MapOptions as the journal keeps them (a map's `args`), for `herd map --resume`; the
        GNU-style options are written only when set, and an older journal lacks later keys."""

        argv: Required[list[str]]
        workers: int | None
        batch_size: int | None
        retries: int
        timeout: float | None
        keep_order: bool
        joblog: str | None
        cwd: str | None
        executor: str
        scheduler: str | None
        cpus_per_job: float | None
        memory_per_job: int | None
        halt: str | None
        timeout_percent: float
        colsep: str
        multi: bool
        tag: bool
        tagstring: str
        results: str
        delay: float
        memfree: int
        load: float


@struct(frozen=True)
class MapOptions:
    argv: tuple[str, ...]
    workers: int | None = None
    """None: `-j auto`."""
    batch_size: int | None = None
    """None: `--batch-size auto`."""
    retries: int = 0
    """Like GNU parallel: a failed job is not run again unless asked (a retry repeats its
    side effects)."""
    timeout: float | None = None
    timeout_percent: float | None = None
    """`--timeout 200%`: relative to the median duration of the jobs that succeeded."""
    keep_order: bool = False
    colsep: str | None = None
    multi: bool = False
    """Items carry one value per input source (`::: a b ::: 1 2`)."""
    tag: bool = False
    tagstring: str | None = None
    results: Path | None = None
    delay: float | None = None
    memfree: int | None = None
    load: float | None = None
    joblog: Path | None = None
    cwd: Path | None = None
    executor: str = "local"
    """`local`, or `dask` (jobs run as Dask tasks; `scheduler` joins a running cluster)."""
    scheduler: str | None = None
    cpus_per_job: float | None = None
    memory_per_job: int | None = None
    halt: str | None = None
    """GNU parallel's --halt (now|soon,fail|success|done=N|P%)."""

    def policies(self, units: int) -> Policies:
        """The attempt policies of a map: the same classes `herd run` and `herd pipeline` use."""
        return Policies(
            [
                Retries(self.retries),
                TimeLimit(self.timeout),
                Halt.parse(self.halt, units),
                *self._admission(),
            ]
        )

    def _admission(self) -> list[Policy]:
        """--delay, --memfree, --load, --timeout N%: imported only when one is given."""
        if self.delay is None and self.memfree is None and self.load is None and self.timeout_percent is None:
            return []
        from herd.items.admission import admission

        return admission(self.delay, self.memfree, self.load, self.timeout_percent)

    def template(self, argv: tuple[str, ...] | None = None) -> Template:
        return Template(self.argv if argv is None else argv, colsep=self.colsep, multi=self.multi)

    def to_args(self) -> MapArgs:
        args: MapArgs = {
            "argv": list(self.argv),
            "workers": self.workers,
            "batch_size": self.batch_size,
            "retries": self.retries,
            "timeout": self.timeout,
            "keep_order": self.keep_order,
            "joblog": str(self.joblog) if self.joblog else None,
            "cwd": str(self.cwd) if self.cwd else None,
            "executor": self.executor,
            "scheduler": self.scheduler,
            "cpus_per_job": self.cpus_per_job,
            "memory_per_job": self.memory_per_job,
            "halt": self.halt,
        }
        # The GNU-style options only when set (the journal's args stay as short as before).
        if self.timeout_percent:
            args["timeout_percent"] = self.timeout_percent
        if self.colsep:
            args["colsep"] = self.colsep
        if self.multi:
            args["multi"] = self.multi
        if self.tag:
            args["tag"] = self.tag
        if self.tagstring:
            args["tagstring"] = self.tagstring
        if self.results:
            args["results"] = str(self.results)
        if self.delay:
            args["delay"] = self.delay
        if self.memfree:
            args["memfree"] = self.memfree
        if self.load:
            args["load"] = self.load
        return args

    def make_executor(self, slots: int) -> Executor:
        """The pool the jobs run on; `distributed` is imported only for `dask`."""
        if self.executor == "local":
            return LocalExecutor(slots)
        from herd.engine.executor import load_dask

        executor: Executor = load_dask().DaskExecutor(
            slots,
            scheduler=self.scheduler,
            cpus_per_job=self.cpus_per_job,
            memory_per_job=self.memory_per_job,
        )
        return executor

    @classmethod
    def from_args(cls, args: MapArgs) -> MapOptions:
        return cls(
            argv=tuple(args["argv"]),
            workers=args.get("workers"),
            batch_size=args.get("batch_size"),
            retries=int(args.get("retries", 1)),
            timeout=args.get("timeout"),
            timeout_percent=args.get("timeout_percent"),
            keep_order=bool(args.get("keep_order")),
            colsep=args.get("colsep"),
            multi=bool(args.get("multi")),
            tag=bool(args.get("tag")),
            tagstring=args.get("tagstring"),
            results=Path(results) if (results := args.get("results")) else None,
            delay=args.get("delay"),
            memfree=args.get("memfree"),
            load=args.get("load"),
            joblog=Path(joblog) if (joblog := args.get("joblog")) else None,
            cwd=Path(cwd) if (cwd := args.get("cwd")) else None,
            executor=args.get("executor") or "local",
            scheduler=args.get("scheduler"),
            cpus_per_job=args.get("cpus_per_job"),
            memory_per_job=args.get("memory_per_job"),
            halt=args.get("halt"),
        )


@struct(frozen=True)
class MapPlan:
    """What a map would do: `--dry-run` prints it, `start` runs it."""

    items: int
    batch_size: int
    batch_reason: str
    invocations: int
    workers: str
    """"4", or "auto (2..8)"."""
    worker_reason: str

    def to_dict(self) -> dict[str, int | str]:
        return {
            "items": self.items,
            "batch_size": self.batch_size,
            "batch_reason": self.batch_reason,
            "invocations": self.invocations,
            "workers": self.workers,
            "worker_reason": self.worker_reason,
        }


def plan(count: int, options: MapOptions, cores: int | None = None) -> MapPlan:
    cores = cores or os.cpu_count() or 1
    if options.workers is None:
        from herd.items.autoscale import MAX_AUTO_WORKERS

        sizing_workers = MAX_AUTO_WORKERS
        workers = f"auto ({min(2, MAX_AUTO_WORKERS)}..{MAX_AUTO_WORKERS})"
        why = (
            f"starts with 2 and adds workers while throughput rises and the machine has "
            f"headroom: up to {cores} (the cores) for CPU-bound jobs, up to "
            f"{MAX_AUTO_WORKERS} for jobs that mostly wait"
        )
    else:
        sizing_workers = options.workers
        workers, why = str(options.workers), "-j"
    if options.batch_size is None:
        size, batch_why = auto_batch_size(count, sizing_workers)
    else:
        size, batch_why = options.batch_size, "--batch-size"
    return MapPlan(count, size, batch_why, -(-count // size) if count else 0, workers, why)


@struct
class MapOutcome:
    run_id: str
    exit_code: int
    state: RunState
    counts: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)
    """seq -> reason, for batches that ended failed (first 50)."""
    scaling: list[ScaleDecision] = field(default_factory=list)
    elapsed: float = 0.0
    stderr_log: str = ""
    """Where the jobs' stderr tails are (prefixed with the batch number)."""
    halted: str | None = None
    """Why `--halt` stopped the map early."""
    retries: int = 0
    stdout: bytes | None = None
    """The jobs' stdout, when `herd.map` collected it (the CLI streams it instead)."""

    def end_event(self, stages: dict[str, StageCounts] | None = None) -> MapEnd:
        """The summary event that closes a map's stream (a pipeline's, with `stages`)."""
        if stages is not None:
            return PipelineEnd(
                exit_code=self.exit_code,
                state=self.state,
                counts=self.counts,
                failed=self.failed,
                elapsed=round(self.elapsed, 3),
                halted=self.halted,
                retries=self.retries,
                stages=stages,
            )
        return MapEnd(
            exit_code=self.exit_code,
            state=self.state,
            counts=self.counts,
            failed=self.failed,
            scaling=self.scaling,
            elapsed=round(self.elapsed, 3),
            stderr_log=self.stderr_log,
            halted=self.halted,
            retries=self.retries,
        )
