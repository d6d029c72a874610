"""The Dask cluster a DaskExecutor talks to: connecting, the one scheduler setting herd
needs while it runs, what a lost worker means for its jobs, and closing without noise.

herd leaves what it does not own as it found it: a shared scheduler gets its
`allowed_failures` back when the executor closes, and no logger's level is changed
(a filter drops the one error herd has already reported, nothing else).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import distributed
from distributed.scheduler import KilledWorker

from herd.engine.executor.base import JobResult, JobSpec
from herd.errors import Interrupted
from herd.structs import replace

# distributed is only partly annotated (mypy --strict rejects its untyped calls), so herd
# talks to it through Any at this one edge.
_dask: Any = distributed

CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0

log = logging.getLogger("herd.dask")

# What distributed raises when the scheduler, a worker or their connection goes away:
# CommClosedError and friends are OSErrors; asyncio's and distributed's timeouts are
# TimeoutError; a client already closing says so with a RuntimeError.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (OSError, TimeoutError, RuntimeError)
_CLOSE_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, ValueError)


class SchedulerLost(Interrupted):
    """The Dask scheduler cannot be reached: the run stops with its state saved (exit 130)."""


def local_cluster(slots: int, resources: dict[str, float]) -> Any:
    """Worker processes on 127.0.0.1, every port (dashboards included) on loopback.
    (`silence_logs` quiets distributed's stream handlers for the cluster's lifetime only:
    distributed restores them when the cluster closes.)"""
    workers = slots
    if "CPU" in resources:
        workers = max(1, min(slots, int((os.cpu_count() or 1) // max(resources["CPU"], 1))))
    return _dask.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
        resources=resources or None,
        memory_limit=0,  # herd enforces --max-memory per job tree; Dask should not pause workers
        silence_logs=logging.ERROR,
    )


SEND_INTERVAL = 0.002
"""Seconds the client's stream to the scheduler holds messages back to batch them."""


def quicken(client: Any) -> None:
    """Let the client's messages to the scheduler leave after 2 ms instead of distributed's
    10 ms. The stream sends at once when idle, but within that interval of its last send
    (a finished task's key released, another submitted) it holds them: a coordinator
    that refills a slot per finished job (the hypervisor) waited up to 10 ms per job. The
    scheduler's own streams use 2 ms. Only this client's stream; left alone when a
    distributed version no longer has it (slower, not wrong)."""
    stream: Any = getattr(client, "scheduler_comm", None)
    if isinstance(getattr(stream, "interval", None), float):
        stream.interval = SEND_INTERVAL


def subscribe(client: Any, handler: Callable[[tuple[float, object]], None]) -> str:
    """Call `handler` with each event of the client's own topic (its id: the scheduler
    also logs there, and drops the topic's events some time after the client leaves, so
    nothing herd sends there outlives the run for long). The topic's name."""
    topic = str(client.id)
    client.subscribe_topic(topic, handler)
    return topic


def unsubscribe(client: Any, topic: str) -> None:
    """Before closing: the scheduler logs the client's removal to its topic, and a
    subscriber already gone makes it log a CRITICAL traceback."""
    try:
        client.unsubscribe_topic(topic)
    except _CLOSE_ERRORS as exc:  # ValueError: it was never subscribed
        log.debug("unsubscribing from %s failed: %r", topic, exc)


def no_dask_retries(client: Any) -> int:
    """herd retries failed attempts itself (once, with the evidence): Dask must not also
    re-run a task whose worker died, or one attempt would run twice. Returns the
    scheduler's own setting, which `restore_retries` puts back."""
    return int(client.run_on_scheduler(_set_allowed_failures, 0))


def restore_retries(client: Any, allowed_failures: int) -> None:
    try:
        client.run_on_scheduler(_set_allowed_failures, allowed_failures)
    except CONNECTION_ERRORS as exc:  # the scheduler is gone: nothing left to restore
        log.debug("could not restore allowed_failures=%s on the scheduler: %r", allowed_failures, exc)


def _set_allowed_failures(value: int, dask_scheduler: Any) -> int:
    """Runs on the scheduler: set `allowed_failures`, return the previous value."""
    old = int(dask_scheduler.allowed_failures)
    dask_scheduler.allowed_failures = value
    return old


class _ReportedLoss(logging.Filter):
    """Drops distributed.client's errors while herd closes a client whose scheduler it has
    already reported lost (SchedulerLost): closing cancels the reconnect loop, which
    distributed logs as an error with a traceback. Other records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def close_quietly(client: Any, cluster: Any, *, lost: bool) -> None:
    """Close the client, then the local cluster herd started (if any); what fails while
    closing is logged, not raised: the run's outcome is already decided."""
    client_log = logging.getLogger("distributed.client")
    quiet = _ReportedLoss() if lost else None
    if quiet is not None:
        client_log.addFilter(quiet)
    try:
        for name, thing in (("client", client), ("cluster", cluster)):
            if thing is None:
                continue
            try:
                thing.close(timeout=CLOSE_TIMEOUT)
            except _CLOSE_ERRORS as exc:
                log.debug("closing the Dask %s failed: %r", name, exc)
    finally:
        if quiet is not None:
            client_log.removeFilter(quiet)


# -- what a lost worker or task means for its jobs ----------------------------


def exception_of(future: Any) -> BaseException:
    """The exception a failed task raised; a connection error instead when it cannot be
    fetched (the job then fails with that)."""
    try:
        exc: BaseException = future.exception()
        return exc
    except CONNECTION_ERRORS as lost:
        log.debug("fetching the exception of Dask task %s failed: %r", future.key, lost)
        return lost


def died(job: JobSpec, exc: BaseException, started_at: float) -> JobResult:
    if isinstance(exc, KilledWorker):
        last = getattr(exc, "last_worker", None)
        address = getattr(last, "address", None)
        result = failed(
            job,
            f"worker died: {address or 'a Dask worker'} was lost while it ran this job",
            started_at=started_at,
        )
        return replace(result, worker=f"dask/{address}" if address else "")
    if isinstance(exc, OSError):  # CommClosedError and friends: the worker's connection broke
        return failed(job, f"worker died: {type(exc).__name__}: {exc}", started_at=started_at)
    return failed(job, f"the Dask task failed: {type(exc).__name__}: {exc}", started_at=started_at)


def failed(job: JobSpec, why: str, *, now: float | None = None, started_at: float | None = None) -> JobResult:
    return JobResult.unrun(job.key, why, started_at=started_at, ended_at=now)
