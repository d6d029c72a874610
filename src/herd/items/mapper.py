"""`herd map`: one command over many items, as GNU parallel does, with a journal behind it.

Items are grouped into batches (one invocation each); a batch is one row of the
run journal (`run_tasks`, payload = its items) and every attempt is an
`attempts` row. The coordinator is one loop over one `LocalExecutor`:

- the journal is written in batches (new rows, finished rows and attempts in
  one transaction every 0.2 s or 500 results), never a transaction per item;
- a job's stdout is captured whole and written at once when the job ends, so
  two jobs' lines never interleave; with `keep_order` finished output waits
  (in a window of bounded size) until every earlier batch has been written;
- stderr keeps only its tail (last 40 lines / 4 KiB of each job): it goes to
  `.herd/runs/<run>/stderr.log`, each line prefixed with the batch's sequence
  number, and into the attempt's `tail` in the journal;
- concurrency is fixed (`workers=N`) or found by `AutoScaler`.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from herd.engine.events import (
    ItemFailed,
    MapResume,
    MapStart,
    Progress,
    Scale,
)
from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.journal import Journal, Outcome, RunState, TaskState
from herd.engine.policies import Attempt
from herd.engine.shutdown import Shutdown, handling_signals
from herd.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, BadInput, HerdError
from herd.items.map_plan import MapOptions as MapOptions
from herd.items.map_plan import MapOutcome as MapOutcome
from herd.items.map_plan import MapPlan as MapPlan
from herd.items.map_plan import auto_batch_size as auto_batch_size
from herd.items.map_plan import batches as batches
from herd.items.map_plan import plan as plan
from herd.items.map_plan import resolve_program as resolve_program
from herd.items.output import JobLog, Results, Sink, Tagger
from herd.items.sources import utf8_text as utf8_text  # moved there; the pipeline imports it here
from herd.items.template import command_for as command_for  # likewise
from herd.structs import struct

if TYPE_CHECKING:
    from herd.items.autoscale import AutoScaler
    from herd.items.map_plan import MapArgs
    from herd.store.journal import TaskUpdate

FLUSH_SECONDS, FLUSH_RESULTS = 0.2, 500
PROGRESS_SECONDS = 0.25
MAX_SHOWN_JOBS = 16
CANCEL_GRACE = 2.0


# -- the journal, written in batches ----------------------------------------------------


class Recorder:
    """Buffers finished batches and attempts; one transaction per flush."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.updates: list[TaskUpdate] = []
        self.attempts: list[tuple[Any, ...]] = []
        self.new: list[tuple[Any, ...]] = []
        self.last_flush = time.monotonic()

    def add_task(self, row: tuple[Any, ...]) -> None:
        self.new.append(row)

    def attempt(
        self, task_id: str, attempt: int, result: JobResult, outcome: Outcome, reason: str | None
    ) -> None:
        self.attempts.append(
            (
                self.journal.run_id,
                task_id,
                attempt,
                result.worker,
                result.started_at,
                result.ended_at,
                result.exit_code,
                result.signal,
                outcome,
                reason,
                result.tail or None,
                None,
            )
        )

    def task(self, task_id: str, state: TaskState, attempts: int, reason: str | None) -> None:
        self.updates.append(
            {"task_id": task_id, "state": state.value, "attempts": attempts, "reason": reason}
        )

    def maybe_flush(self, now: float) -> None:
        if (
            len(self.attempts) >= FLUSH_RESULTS
            or len(self.new) >= FLUSH_RESULTS
            or now - self.last_flush >= FLUSH_SECONDS
        ):
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.updates or self.attempts or self.new:
            self.journal.record_items(self.new, self.updates, self.attempts)
            self.new, self.updates, self.attempts = [], [], []
        self.last_flush = time.monotonic() if now is None else now


# -- the engine --------------------------------------------------------------------------


@struct
class Batch:
    task_id: str
    seq: int
    items: tuple[str, ...]
    attempts: int = 0
    """Attempts made so far (in earlier runs too, when resuming)."""
    earlier: int = 0
    """Attempts made before this run of the map (retries count from here)."""


def execute(
    journal: Journal, options: MapOptions, pending: Iterable[Batch], *, out: IO[bytes], resumed: bool = False
) -> MapOutcome:
    """Run `pending` batches to completion (or interruption); their journal rows exist."""
    t0 = time.monotonic()
    try:
        loop = _Loop(journal, options, out, resumed)
    except (HerdError, OSError) as exc:
        # Not started (no executor, no scheduler, an unwritable joblog): the map ends failed
        # with the reason, instead of staying "running" with everything queued.
        reason = str(exc) if isinstance(exc, HerdError) else f"{exc.strerror}: {exc.filename}"
        journal.finish(RunState.FAILED, EXIT_USAGE, {"error": reason})
        raise BadInput(f"map {journal.run_id} could not start: {reason}") from None
    try:
        with handling_signals() as shutdown:
            loop.shutdown = shutdown
            shutdown.on_hurry(loop.executor.hurry)
            try:
                interrupted = loop.run(iter(pending))
            except KeyboardInterrupt:  # outside handling_signals' reach (not the main thread)
                interrupted = True
            loop.close()  # inside: a signal during clean-up only makes it hurry
    finally:
        loop.close()
    counts = journal.counts()
    halted = loop.policies.stop()
    if interrupted:
        state, code = RunState.INTERRUPTED, EXIT_INTERRUPTED
    elif halted is not None:
        state, code = RunState.PARTIAL, halted.exit_code or EXIT_OK
    elif counts.get(TaskState.FAILED.value):
        state, code = RunState.PARTIAL, EXIT_PARTIAL
    else:
        state, code = RunState.DONE, EXIT_OK
    scaling = loop.scaler.decisions if loop.scaler else []
    outcome = MapOutcome(
        journal.run_id,
        code,
        state,
        counts,
        dict(list(loop.failed.items())[:50]),
        scaling,
        time.monotonic() - t0,
        str(loop.stderr_path),
        halted.reason if halted else None,
        options.retries,
    )
    # The summary closes the event stream (`herd map --json` is that stream, like `herd run`).
    journal.emit(outcome.end_event())
    journal.finish(state, code, {"counts": counts, "scaling": scaling, "elapsed": round(outcome.elapsed, 3)})
    return outcome


class _Loop:
    """The coordinator's state for one `execute`: what runs, what waits, where output goes."""

    def __init__(self, journal: Journal, options: MapOptions, out: IO[bytes], resumed: bool) -> None:
        self.journal = journal
        self.options = options
        self.scaler: AutoScaler | None = None
        if options.workers is None:  # -j auto: its module only then
            from herd.items.autoscale import AutoScaler

            self.scaler = AutoScaler()
        self.slots = self.scaler.cap if self.scaler else max(1, options.workers or 1)
        self.recorder = Recorder(journal)
        self.sink = Sink(out, options.keep_order)
        self.window = max(64, 16 * self.slots)
        self.joblog = JobLog(options.joblog, append=resumed) if options.joblog else None
        journal.run_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = journal.run_dir / "stderr.log"
        self.stderr_log = self.stderr_path.open("a", encoding="utf-8")
        # For the progress events (the live display, `--json`, `herd status --watch`).
        counts = journal.counts()
        self.total = sum(counts.values())
        self.done = counts.get(TaskState.SUCCEEDED.value, 0)
        self.failed_count = 0
        self.started_at: dict[str, float] = {}
        self.next_progress = 0.0
        self.retry: deque[Batch] = deque()
        self.inflight: dict[str, Batch] = {}
        self.failed: dict[str, str] = {}
        self.executor = options.make_executor(self.slots)
        # A remote executor wants more jobs in hand than it runs at once (it batches them).
        self.window = max(self.window, 2 * self.executor.backlog)
        # Replacement strings and sources are parsed here, once; per job only expanded.
        self.template = options.template(resolve_program(options.argv))
        self.shown = options.template() if self.joblog else None
        self.tagger = Tagger(self.template, options.tagstring) if (options.tag or options.tagstring) else None
        self.results = Results(options.results, self.template) if options.results else None
        self.free_slots = list(range(1, self.slots + 1))  # `{%}`: the lowest free slot
        self.slot_of: dict[str, int] = {}
        self.policies = options.policies(self.total)
        self.shutdown = Shutdown()
        self._closed = False

    def run(self, source: Iterator[Batch]) -> bool:
        """True when stopped by a signal; False when done or halted."""
        if self.scaler:
            self.journal.emit(Scale(workers=self.scaler.target, reason="starting small, measuring"))
        exhausted = False
        while not self.shutdown.requested:
            stop = self.policies.stop()
            if stop is None:
                exhausted = self._fill(source, exhausted)
            elif stop.kill:
                return False  # close() kills what runs and saves it as queued
            hold = self.policies.delay(time.monotonic()) if stop is None else 0.0
            if not self.inflight:
                if stop is not None or (exhausted and not self.retry):
                    return False
                time.sleep(min(hold, 0.2))  # a policy holds the next start back
                continue
            for result in self.executor.wait(min(hold, 0.2) if hold else 0.2):
                self._finish(result, self.inflight.pop(result.key))
            now = time.monotonic()
            self.recorder.maybe_flush(now)
            if now >= self.next_progress:
                self._progress()
                self.next_progress = now + PROGRESS_SECONDS
            if self.scaler and (decision := self.scaler.tick(now)) is not None:
                self.journal.emit(Scale(**decision))
        return True

    def _fill(self, source: Iterator[Batch], exhausted: bool) -> bool:
        limit = self.scaler.target if self.scaler else self.executor.backlog
        while len(self.inflight) < limit and not self.policies.delay(time.monotonic()):
            if self.retry:
                batch = self.retry.popleft()
            elif exhausted or self.sink.window_full(self.window):
                break
            else:
                next_batch = next(source, None)
                if next_batch is None:
                    return True
                batch = next_batch
                self.sink.started(batch.seq)
            self.inflight[batch.task_id] = batch
            self.started_at[batch.task_id] = time.time()
            self.policies.started(time.monotonic())
            slot = heapq.heappop(self.free_slots) if self.free_slots else len(self.inflight)
            self.slot_of[batch.task_id] = slot
            stderr = self.results.directory(batch.items) / "stderr" if self.results else None
            self.executor.submit(
                self.policies.prepare(
                    JobSpec(
                        batch.task_id,
                        self.template.expand(batch.items, batch.seq, slot),
                        cwd=self.options.cwd,
                        capture_stdout=True,
                        log_path=stderr,
                    )
                )
            )
        return exhausted

    def _progress(self) -> None:
        """Counts and what runs now, at most every PROGRESS_SECONDS: one event per job
        would cost a 100,000-item map more than its jobs do."""
        running = sorted(self.inflight.values(), key=lambda b: b.seq)[:MAX_SHOWN_JOBS]
        self.journal.emit(
            Progress(
                total=self.total,
                done=self.done,
                failed=self.failed_count,
                running=len(self.inflight),
                jobs=[
                    {
                        "seq": b.seq,
                        "items": [i.replace("\0", " ") for i in b.items[:3]],
                        "attempt": b.attempts + 1,
                        "started": round(self.started_at.get(b.task_id, 0), 3),
                    }
                    for b in running
                ],
            )
        )

    def _finish(self, result: JobResult, batch: Batch) -> None:
        batch.attempts += 1
        self.started_at.pop(batch.task_id, None)
        slot = self.slot_of.pop(batch.task_id, 1)
        heapq.heappush(self.free_slots, slot)
        if self.scaler:
            self.scaler.job_done(result.duration)
        if result.tail:
            self.stderr_log.write("".join(f"{batch.seq}\t{line}\n" for line in result.tail.splitlines()))
        attempt = Attempt.of(
            result,
            batch.task_id,
            batch.attempts,
            batch.attempts - batch.earlier,
            timeout=self.options.timeout,
        )
        reason = attempt.reason
        self.policies.ended(attempt)
        if attempt.ok:
            self.done += 1
            self.recorder.attempt(batch.task_id, batch.attempts, result, Outcome.OK, None)
            self.recorder.task(batch.task_id, TaskState.SUCCEEDED, batch.attempts, None)
            self.policies.finished(True, 0)
        else:
            self.recorder.attempt(batch.task_id, batch.attempts, result, attempt.outcome, reason)
            if self.policies.retry(attempt) and not self.policies.stop():
                self.retry.append(batch)
                return
            self.policies.finished(False, result.exit_code)
            self.recorder.task(batch.task_id, TaskState.FAILED, batch.attempts, reason)
            self.failed[str(batch.seq)] = reason
            self.failed_count += 1
            self.journal.emit(
                ItemFailed(
                    seq=batch.seq,
                    items=list(batch.items[:3]),
                    attempts=batch.attempts,
                    reason=reason,
                    tail=result.tail[-300:],
                    log=str(self.stderr_path),
                )
            )
        if self.joblog and self.shown:
            self.joblog.write(batch.seq, result, self.shown.expand(batch.items, batch.seq, slot))
        stdout = result.stdout
        if self.results:
            self.results.write(self.results.directory(batch.items), batch.seq, stdout)
            stdout = None  # GNU parallel: --results saves the output instead of printing it
        elif self.tagger and stdout:
            stdout = self.tagger.apply(self.tagger.tag(batch.items, batch.seq, slot), stdout)
        self.sink.finished(batch.seq, stdout)

    def close(self) -> None:
        """Stop what still runs (interrupted or halted: saved as queued for --resume), flush.
        Runs to the end whatever signal arrives meanwhile (a second one only hurries it)."""
        if self._closed:
            return
        self._closed = True
        try:
            for result in self.executor.cancel_all(self.shutdown.grace(CANCEL_GRACE)):
                batch = self.inflight.pop(result.key)
                self.recorder.attempt(
                    batch.task_id, batch.attempts + 1, result, Outcome.CANCELLED, "interrupted"
                )
                self.recorder.task(batch.task_id, TaskState.QUEUED, batch.attempts + 1, "interrupted")
        finally:
            self.executor.close()
            self.recorder.flush()
            self.stderr_log.close()
            if self.joblog:
                self.joblog.close()


# -- starting and resuming ---------------------------------------------------------------


def start(
    journal: Journal, items: Sequence[str], options: MapOptions, the_plan: MapPlan, *, out: IO[bytes]
) -> MapOutcome:
    """A new map: every batch's row in one transaction, then run them."""
    size = the_plan.batch_size
    journal.add_tasks(
        (str(seq), seq, 0, "", TaskState.QUEUED.value, json.dumps(batch))
        for seq, batch in enumerate(batches(items, size), 1)
    )
    journal.emit(
        MapStart(
            items=len(items),
            invocations=the_plan.invocations,
            batch_size=size,
            workers=the_plan.workers,
            batch_reason=the_plan.batch_reason,
        )
    )
    pending = (Batch(str(seq), seq, batch) for seq, batch in enumerate(batches(items, size), 1))
    return execute(journal, options, pending, out=out)


def resume(journal: Journal, *, out: IO[bytes]) -> MapOutcome:
    """Re-run the batches of a map that did not succeed, with its original command."""
    run = journal.run()
    if run["kind"] != "map":
        raise BadInput(f"run {journal.run_id} is a {run['kind']!r} run; `herd resume` continues it")
    options = MapOptions.from_args(cast("MapArgs", run["args"]))
    journal.take_over()  # exit 4 while another herd drives it
    todo = [t for t in journal.tasks() if t["state"] != TaskState.SUCCEEDED.value]
    journal.emit(
        MapResume(invocations=len(todo), items=sum(len(json.loads(t["payload"] or "[]")) for t in todo))
    )
    pending = [
        Batch(
            t["task_id"],
            int(t["seq"]),
            tuple(json.loads(t["payload"] or "[]")),
            int(t["attempts"]),
            int(t["attempts"]),
        )
        for t in todo
    ]
    return execute(journal, options, pending, out=out, resumed=True)
