"""Jobs as Dask tasks: how submitted jobs are grouped into tasks, and how a task's outcomes
are fetched and landed as the jobs' results on the coordinator."""

from __future__ import annotations

import time
from typing import Any

from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.executor.dask_cluster import log
from herd.engine.executor.dask_git import bring_back
from herd.engine.executor.remote_job import RemoteJob, RemoteOutcome, RepoShipment
from herd.errors import HerdError
from herd.structs import field, replace, struct

MAX_CHUNK = 16
"""At most this many small jobs run in one Dask task."""


@struct(eq=False)
class Submitted:
    job: JobSpec
    repo: RepoShipment | None
    remote: RemoteJob
    base_bundle: bytes | None
    submitted_at: float = field(default_factory=time.time)
    """Stands in for the start time when a job's result is lost with its worker."""


def tasks(pending: list[Submitted], slots: int) -> list[list[Submitted]]:
    """The jobs of each Dask task. Many small jobs at once go in chunks (one Dask task runs
    several in a row): a Dask task costs the scheduler and worker about a millisecond of
    CPU, a chunk pays it once. A few jobs (the hypervisor's refills) and git jobs (each
    with its own base bundle) go one per task."""
    size = chunk_size(sum(1 for s in pending if s.repo is None), slots)
    groups: list[list[Submitted]] = []
    chunk: list[Submitted] = []
    for submitted in pending:
        if submitted.repo is not None:
            groups.append([submitted])
            continue
        chunk.append(submitted)
        if len(chunk) == size:
            groups.append(chunk)
            chunk = []
    if chunk:
        groups.append(chunk)
    return groups


def chunk_size(jobs: int, slots: int) -> int:
    """Jobs per Dask task: 1 unless there are many more jobs than slots; small enough that
    every slot still gets several chunks, so the last chunks do not leave slots idle."""
    return max(1, min(MAX_CHUNK, jobs // (slots * 8)))


def gather(client: Any, futures: list[Any]) -> list[list[RemoteOutcome] | BaseException]:
    """The outcomes of finished tasks, or for each one that cannot be fetched the exception."""
    if not futures:
        return []
    try:
        return list(client.gather(futures))
    except Exception as exc:  # whatever a task raised: each is reported below
        # One result could not be fetched (its worker died right after finishing):
        # fetch them one by one so the others still count.
        log.debug("gathering %d Dask results failed (%r); fetching one by one", len(futures), exc)
        outcomes: list[list[RemoteOutcome] | BaseException] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as failed:  # the task's own exception
                # Not swallowed: it becomes the job's failure (see died).
                outcomes.append(failed)
        return outcomes


def land(submitted: Submitted, outcome: RemoteOutcome) -> JobResult:
    """The job's result here: its log written, its commits brought back to its worktree."""
    result = outcome.result
    log_path = submitted.job.log_path
    if log_path is not None and outcome.log is not None:
        try:
            log_path.write_bytes(outcome.log)
        except OSError as exc:
            result = replace(result, error=f"cannot write log: {exc}")
    try:
        bring_back(submitted.repo, submitted.job.cwd, outcome)
    except HerdError as exc:
        result = replace(result, error=f"could not bring the worker's commits back: {exc}")
    return result
