"""The Dask executor: jobs run as Dask tasks on whichever worker picks them.

The coordinator (hypervisor, `herd map`) drives it exactly like the local pool:
`submit`, `wait`, `cancel_all`, `close`. Each Dask task runs its job through a
1-slot local executor on the worker (`remote_job.run_jobs`), so supervision is
the local one. Git tasks are shipped transparently: a job whose `cwd` is a linked
git worktree gets the worktree's HEAD sent as a bundle (once per base commit,
sent with each of its tasks), runs in a clone on the node, and its commits come back
as a bundle that is fetched into the worktree before the result is returned; the
hypervisor then squashes and judges the worktree as if the job had run here.

Per job the coordinator pays Dask's round trips, so it keeps them few: a task's small
outcomes come back as an event on the client's topic, ahead of its completion, and the
task counts as done when they arrive (no fetch from the worker; bigger outcomes and git
results are fetched); finished tasks are released after the next submits, and the
client's stream to the scheduler batches for 2 ms instead of 10 (dask_cluster.quicken).

Faults: a worker that dies mid-task fails that attempt ("worker died: ...") and
herd's own retry policy applies; Dask's silent re-run of the task elsewhere is
switched off on the scheduler. A scheduler that goes away raises `SchedulerLost`,
an `Interrupted`: the run stops with its state saved, `herd resume` continues.

Only this module and its helpers (`dask_cluster`: connecting, faults, closing;
`dask_git`: worktrees as bundles) import `distributed`; the local path never loads them.
"""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import distributed

from herd.engine.executor.base import Executor, JobResult, JobSpec
from herd.engine.executor.dask_cluster import (
    CONNECT_TIMEOUT,
    CONNECTION_ERRORS,
    SchedulerLost,
    close_quietly,
    died,
    exception_of,
    failed,
    local_cluster,
    log,
    no_dask_retries,
    quicken,
    restore_retries,
    subscribe,
    unsubscribe,
)
from herd.engine.executor.dask_git import WorktreeShipper
from herd.engine.executor.dask_tasks import MAX_CHUNK, Submitted, gather, land, tasks
from herd.engine.executor.remote_job import CANCEL_POLL, RemoteJob, RemoteOutcome, pushed_outcomes, run_jobs
from herd.errors import BadInput, HerdError
from herd.structs import replace

if TYPE_CHECKING:
    from herd.run.attempts import RunOptions

# distributed is only partly annotated (mypy --strict rejects its untyped calls), so herd
# talks to it through Any at this one edge; `Future` below is a distributed.Future.
_dask: Any = distributed
Future = Any

__all__ = ["CONNECT_TIMEOUT", "DaskExecutor", "SchedulerLost", "dask_executor_factory"]

_STOP_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, SchedulerLost)


class DaskExecutor:
    """Runs jobs on a Dask cluster: the one at `scheduler`, or a `LocalCluster` of
    `slots` single-threaded worker processes on 127.0.0.1 when `scheduler` is None.

    `cpus_per_job` / `memory_per_job` (bytes) become Dask resources asked of each task
    (`CPU`, `MEMORY`); workers offer them with `dask worker --resources "CPU=8 MEMORY=32e9"`.
    """

    def __init__(
        self,
        slots: int,
        *,
        scheduler: str | None = None,
        cpus_per_job: float | None = None,
        memory_per_job: int | None = None,
        grace: float = 5.0,
    ) -> None:
        if slots < 1:
            raise BadInput(f"executor needs at least 1 slot, got {slots}")
        self._slots = slots
        self._grace = grace
        self._resources: dict[str, float] = {}
        if cpus_per_job is not None:
            self._resources["CPU"] = cpus_per_job
        if memory_per_job is not None:
            self._resources["MEMORY"] = float(memory_per_job)
        self._cluster: Any = None
        self._client: Any = None
        self._lost = False
        self._allowed_failures: int | None = None  # the scheduler's own, restored on close
        self._topic: str | None = None  # where tasks send their outcomes ahead (_on_event)
        self._address = scheduler or "a local cluster"
        try:
            if scheduler is None:
                self._cluster = local_cluster(slots, self._resources)
                scheduler = str(self._cluster.scheduler_address)
            self._client = _dask.Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
            quicken(self._client)
            self._allowed_failures = no_dask_retries(self._client)
        except (OSError, TimeoutError) as exc:
            self._close_quietly()
            raise SchedulerLost(
                f"could not reach the Dask scheduler at {self._address}: "
                f"{exc}; start it or pass another --scheduler"
            ) from None
        self._check_resources()
        self._cancel_flag = f"herd-cancel-{uuid.uuid4().hex}"
        self._pending: list[Submitted] = []  # submitted, not yet handed to Dask (see _flush)
        self._futures: dict[str, tuple[Future, list[Submitted]]] = {}
        self._in_dask = 0  # jobs inside self._futures
        self._finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
        self._spent: list[Future] = []  # collected, not yet dropped (which releases them in Dask)
        # Outcomes tasks sent ahead of their completion (remote_job.push_message), by task key.
        self._pushed: dict[str, list[RemoteOutcome]] = {}
        self._topic = subscribe(self._client, self._on_event)
        self._done: list[JobResult] = []
        self._shipper = WorktreeShipper()
        self._closed = False

    # -- the Executor interface ------------------------------------------------

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def backlog(self) -> int:
        # Enough waiting jobs that they travel MAX_CHUNK to a Dask task (see _chunk_size).
        return self._slots * 8 * MAX_CHUNK

    @property
    def outstanding(self) -> int:
        return len(self._pending) + self._in_dask + len(self._done)

    @property
    def scheduler_address(self) -> str:
        return str(self._client.scheduler.address)

    def submit(self, job: JobSpec) -> None:
        if self._closed:
            raise BadInput(f"job {job.key}: executor is closed")
        if self._lost:
            raise self._lost_error()
        try:
            inputs = tuple((str(path), path.read_bytes()) for path in job.inputs)
            repo, base_bundle = self._shipper.ship(job.cwd)
        except (OSError, HerdError) as exc:
            self._done.append(failed(job, f"could not prepare the job for Dask: {exc}"))
            return
        remote = RemoteJob(
            job=job, inputs=inputs, repo=repo, grace=self._grace, cancel_flag=self._cancel_flag
        )
        self._pending.append(Submitted(job, repo, remote, base_bundle))

    def _flush(self) -> None:
        """Hand the submitted jobs to Dask, grouped into tasks (see dask_tasks.tasks)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        groups = tasks(pending, self._slots)
        for group in groups:
            key = f"herd-{group[0].job.key}" + (f"+{len(group) - 1}" if len(group) > 1 else "")
            key += f"-{uuid.uuid4().hex[:12]}"
            future = self._client.submit(
                run_jobs,
                tuple(s.remote for s in group),
                group[0].base_bundle,
                (str(self._topic), key),
                key=key,
                pure=False,
                retries=0,
                resources=self._resources or None,
            )
            self._futures[key] = (future, group)
            self._in_dask += len(group)
            future.add_done_callback(self._on_done)

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._done:
                done, self._done = self._done, []
                return done
            self._flush()
            # Released only now, after the submits: a release sent first would hold the
            # next submit back for the client's send interval.
            self._spent.clear()
            if not self._futures:
                return []
            remaining = None if end is None else max(0.0, end - time.monotonic())
            try:
                first = self._finished.get(timeout=remaining)
            except queue.Empty:
                return []
            batch = [first]
            while not self._finished.empty():
                batch.append(self._finished.get_nowait())
            self._collect(batch)

    def results(self, timeout: float | None = None) -> Iterator[JobResult]:
        while self.outstanding:
            batch = self.wait(timeout)
            if not batch:
                return
            yield from batch

    def hurry(self) -> None:
        """Nothing to do from a signal handler: cancelling goes through the scheduler, and
        `cancel_all` is already waiting on it."""

    def cancel_all(self, grace: float | None = None) -> list[JobResult]:
        """Queued tasks are cancelled in Dask; running ones are asked (through a Dask
        Event their task polls) to stop their job the local way, SIGTERM then SIGKILL
        after `grace`, and are waited for so their results say what happened."""
        grace = self._grace if grace is None else grace
        now = time.time()
        for submitted in self._pending:
            self._done.append(
                replace(failed(submitted.job, "cancelled before it started", now=now), cancelled=True)
            )
        self._pending.clear()
        if self._futures and not self._lost:
            try:
                self._stop_running(grace)
            except _STOP_ERRORS as exc:
                # The cluster went away while stopping: what is still out is reported
                # below as not finished.
                log.warning("stopping the Dask tasks at %s failed: %r", self._address, exc)
        while not self._finished.empty():
            with contextlib.suppress(SchedulerLost):
                self._collect([self._finished.get_nowait()], cancelling=True)
        now = time.time()
        why = "the Dask scheduler went away" if self._lost else "cancelled before it finished"
        for future, group in self._futures.values():
            self._done.extend(replace(failed(s.job, why, now=now), cancelled=True) for s in group)
            if not self._lost:
                try:
                    future.cancel()
                except CONNECTION_ERRORS as exc:
                    log.warning("cancelling Dask task %s failed: %r", future.key, exc)
        self._futures.clear()
        self._pushed.clear()
        self._spent.clear()
        self._in_dask = 0
        done, self._done = self._done, []
        return done

    def _stop_running(self, grace: float) -> None:
        """Cancel the queued tasks, ask the running ones to stop, wait for their results."""
        _dask.Event(self._cancel_flag, client=self._client).set()
        running = {key for keys in self._client.processing().values() for key in keys}
        queued = [f for k, (f, _) in self._futures.items() if k not in running]
        self._client.cancel(queued)
        deadline = time.monotonic() + grace + CANCEL_POLL + 2.0
        while any(f.status == "pending" for f, _ in self._futures.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(queue.Empty):
                self._collect([self._finished.get(timeout=left)], cancelling=True)

    def close(self) -> None:
        if self._closed:
            return
        if self._futures or self._pending:
            self.cancel_all()
        self._closed = True
        self._close_quietly()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- collecting --------------------------------------------------------------

    def _on_event(self, event: tuple[float, object]) -> None:
        """A task's outcomes, sent ahead of its completion: the task is done (its job ended,
        whatever happens to the worker now). Runs on the client's event loop thread."""
        pushed = pushed_outcomes(event[1])
        entry = None if pushed is None else self._futures.get(pushed[0])
        if pushed is not None and entry is not None:
            self._pushed[pushed[0]] = pushed[1]
            self._finished.put(entry[0])

    def _on_done(self, future: Future) -> None:
        """Dask's completion (runs on a callback thread); a task collected through its
        event already needs no second wake-up."""
        if future.key in self._futures:
            self._finished.put(future)

    def _collect(self, batch: list[Future], *, cancelling: bool = False) -> None:
        entries = [(f, self._futures.pop(f.key)[1]) for f in batch if f.key in self._futures]
        self._spent.extend(f for f, _ in entries)
        self._in_dask -= sum(len(group) for _, group in entries)
        rest: list[tuple[Future, list[Submitted]]] = []
        for future, group in entries:
            pushed = self._pushed.pop(future.key, None)
            if pushed is None:
                rest.append((future, group))
            else:
                self._done.extend(land(s, o) for s, o in zip(group, pushed, strict=True))
        entries = rest
        finished = [(f, group) for f, group in entries if f.status == "finished"]
        outcomes = gather(self._client, [f for f, _ in finished])
        for (_, group), outcome in zip(finished, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._done.extend(died(s.job, outcome, s.submitted_at) for s in group)
            else:
                self._done.extend(land(s, o) for s, o in zip(group, outcome, strict=True))
        lost = False
        for future, group in entries:
            if future.status == "error":
                error = exception_of(future)
                self._done.extend(died(s.job, error, s.submitted_at) for s in group)
            elif future.status == "cancelled":
                if cancelling or self._client.status == "running":
                    self._done.extend(
                        replace(failed(s.job, "cancelled before it finished"), cancelled=True) for s in group
                    )
                else:
                    self._futures[future.key] = (future, group)  # cancel_all reports it
                    self._in_dask += len(group)
                    lost = True
        if lost:
            self._lost = True
            raise self._lost_error()

    def _lost_error(self) -> SchedulerLost:
        return SchedulerLost(
            f"lost the Dask scheduler at {self._address} (a resumed run uses "
            "the local executor unless given --executor dask --scheduler ADDR)"
        )

    def _check_resources(self) -> None:
        if not self._resources:
            return
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        if workers and not any(
            all(w.get("resources", {}).get(name, 0) >= amount for name, amount in self._resources.items())
            for w in workers.values()
        ):
            self._close_quietly()
            wanted = " ".join(f"{k}={v:g}" for k, v in self._resources.items())
            raise BadInput(
                f'no Dask worker offers {wanted}; start workers with `dask worker ... --resources "{wanted}"`'
            )

    def _close_quietly(self) -> None:
        if self._topic is not None and not self._lost:
            unsubscribe(self._client, self._topic)
        shared = self._cluster is None  # a scheduler someone else started, and keeps
        if shared and self._client is not None and self._allowed_failures is not None and not self._lost:
            restore_retries(self._client, self._allowed_failures)
        close_quietly(self._client, self._cluster, lost=self._lost)
        self._cluster = None


def dask_executor_factory(
    scheduler: str | None,
    *,
    cpus_per_job: float | None = None,
    memory_per_job: int | None = None,
) -> Callable[[RunOptions], Executor]:
    """What `herd run --executor dask` hands the hypervisor: a DaskExecutor per phase."""

    def make(options: RunOptions) -> Executor:
        return DaskExecutor(
            options.workers,
            scheduler=scheduler,
            cpus_per_job=cpus_per_job,
            memory_per_job=memory_per_job,
            grace=options.grace,
        )

    return make
