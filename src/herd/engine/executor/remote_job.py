"""One job on a remote node: what travels there, what comes back, and the code that runs it.

This module runs inside a Dask worker (it must not import `distributed` at module
level: the coordinator imports it on the local path too). The job itself runs
through a 1-slot `LocalExecutor`, so it gets exactly the local supervision: its
own process group, the timeout and memory ceiling enforced by killing the group,
output tail, spawn errors.

A git task travels as: the base commit's bundle, the job's input files (the
context file), and the job; the node needs git and the agent, never a checkout of
the repository or the `.herd` store. The job runs in a fresh clone in a temporary
directory; whatever it committed (and anything it left uncommitted, committed for
it) comes back as a bundle of `base..HEAD`, with the output log's tail.

A job that needs nothing on disk (no input files, no clone, no log) runs without a
temporary directory. A task whose outcomes are small and hold no git bundle also sends
them ahead of its completion as a Dask event (`push_message`): the coordinator takes
their arrival as the task's end, without waiting for Dask to say so or fetching the result
from the worker. The task's return value stays: whatever was not pushed is fetched.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.executor.local import LocalExecutor
from herd.engine.executor.output import read_file_tail
from herd.errors import HerdError
from herd.git.repo import Git
from herd.structs import fields, replace

LOG_BYTES_BACK = 1 << 20
"""How much of a job's output log travels back to the coordinator's attempt log."""
CANCEL_POLL = 1.0
"""Seconds between looks at the executor's cancel flag while a job runs."""
PUSH_LIMIT = 8 << 10
"""Outcomes of one task up to about this many bytes travel with its completion (see
`push_message`); the scheduler keeps its last 1,000 events per topic, so they stay small."""
_PUSH_KEY = "herd-task"
_BASE_REF = "refs/herd/base"
_RESULT_REF = "refs/herd/result"


@dataclass(frozen=True)
class RepoShipment:
    """A git worktree's starting point, as sent to the node."""

    worktree: str
    """The worktree's path on the coordinator (rewritten in argv/env to the clone's path)."""
    base: str
    """The commit the worktree is at; the bundle's one ref points at it."""
    identity: tuple[str, str] | None
    """user.name and user.email of the coordinator's repository, for the agent's commits."""


@dataclass(frozen=True)
class RemoteJob:
    job: JobSpec
    inputs: tuple[tuple[str, bytes], ...]
    """(path on the coordinator, contents) of each of the job's input files."""
    repo: RepoShipment | None
    grace: float
    cancel_flag: str | None
    """Name of the Dask Event that asks running jobs to stop."""


@dataclass(frozen=True)
class RemoteOutcome:
    result: JobResult
    head: str | None
    """The clone's HEAD after the job (None: not a git job, or the clone was unusable)."""
    bundle: bytes | None
    """`base..head` when the job made commits the coordinator does not have."""
    log: bytes | None
    """The last LOG_BYTES_BACK bytes of the output log, for `job.log_path`."""


def run_jobs(
    remotes: tuple[RemoteJob, ...], base_bundle: bytes | None, push: tuple[str, str] | None = None
) -> list[RemoteOutcome]:
    """The Dask task: run its jobs one after the other (a chunk of small jobs shares one
    task's scheduling cost; a git job always travels alone, with its base bundle).
    `push` is (event topic, this task's key): small outcomes are sent there too."""
    outcomes = _run_all(remotes, base_bundle)
    message = None if push is None else push_message(push[1], outcomes)
    if push is not None and message is not None:
        import distributed

        dask: Any = distributed  # partly annotated; see executor/dask.py
        # Queued on the worker's stream to the scheduler before the task's completion, so
        # the coordinator's event handler sees it first (it fetches the result otherwise).
        dask.get_worker().log_event(push[0], message)
    return outcomes


def _run_all(remotes: tuple[RemoteJob, ...], base_bundle: bytes | None) -> list[RemoteOutcome]:
    outcomes: list[RemoteOutcome] = []
    checked = time.monotonic()
    for index, remote in enumerate(remotes):
        if index and time.monotonic() - checked >= CANCEL_POLL:
            checked = time.monotonic()
            if _cancel_requested(remote.cancel_flag):
                outcomes.extend(
                    RemoteOutcome(
                        replace(_failed(r.job, "", "cancelled before it started"), cancelled=True),
                        None,
                        None,
                        None,
                    )
                    for r in remotes[index:]
                )
                break
        outcomes.append(run_remote(remote, base_bundle))
    return outcomes


def run_remote(remote: RemoteJob, base_bundle: bytes | None) -> RemoteOutcome:
    """One job: set up its files and clone, run it, pack up the result."""
    import distributed

    dask: Any = distributed
    worker = f"dask/{dask.get_worker().address}"
    job = remote.job
    if not remote.inputs and remote.repo is None and job.log_path is None:
        # Nothing to put on disk: no temporary directory to make and remove.
        result = _supervise(job, remote)
        return RemoteOutcome(replace(result, worker=worker), None, None, None)
    tmp = Path(tempfile.mkdtemp(prefix="herd-job-"))
    try:
        paths: dict[str, str] = {}
        input_dir = tmp / "inputs"
        input_dir.mkdir()
        for index, (original, data) in enumerate(remote.inputs):
            local = input_dir / f"{index}-{Path(original).name}"
            local.write_bytes(data)
            paths[original] = str(local)
        clone: Path | None = None
        git: Git | None = None
        if remote.repo is not None and base_bundle is not None:
            clone = tmp / "repo"
            try:
                git = _clone(clone, tmp / "base.bundle", base_bundle, remote.repo)
            except HerdError as exc:
                return RemoteOutcome(
                    _failed(job, worker, f"could not set up the clone: {exc}"), None, None, None
                )
            paths[remote.repo.worktree] = str(clone)
        log_path = tmp / "output.log" if job.log_path is not None else None
        local_job = replace(
            job,
            argv=tuple(_rewrite(arg, paths) for arg in job.argv),
            env=None if job.env is None else {k: _rewrite(v, paths) for k, v in job.env.items()},
            cwd=clone if clone is not None else job.cwd,
            log_path=log_path,
            inputs=(),
        )
        result = _supervise(local_job, remote)
        result = replace(result, worker=worker)
        log = _log_tail(log_path) if log_path is not None else None
        if git is None or clone is None or remote.repo is None:
            return RemoteOutcome(result, None, None, log)
        try:
            head, bundle = _pack_result(git, clone, remote.repo.base, tmp / "result.bundle", job.key)
        except HerdError as exc:
            return RemoteOutcome(
                replace(result, error=f"could not pack the worker's commits: {exc}"),
                None,
                None,
                log,
            )
        return RemoteOutcome(result, head, bundle, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clone(clone: Path, bundle_path: Path, bundle: bytes, repo: RepoShipment) -> Git:
    bundle_path.write_bytes(bundle)
    git = Git.init(clone)
    if repo.identity is not None:
        git.config_set("user.name", repo.identity[0])
        git.config_set("user.email", repo.identity[1])
    git.fetch_bundle(bundle_path, repo.base, _BASE_REF)
    git.update_ref("refs/heads/main", repo.base)
    git.reset_hard(clone, repo.base)
    bundle_path.unlink()
    return git


def _pack_result(git: Git, clone: Path, base: str, bundle_path: Path, key: str) -> tuple[str, bytes | None]:
    """Commit what the job left uncommitted (the coordinator's squash would include it
    too), then bundle what the coordinator lacks."""
    git.commit_all(clone, f"herd: changes left uncommitted by {key}")
    head = git.head(clone)
    if head == base or git.is_ancestor(head, base):
        return head, None  # the coordinator already has every commit up to `head`
    git.update_ref(_RESULT_REF, head)
    git.bundle_create(bundle_path, [_RESULT_REF, f"^{base}"])
    return head, bundle_path.read_bytes()


def _supervise(job: JobSpec, remote: RemoteJob) -> JobResult:
    """Run the job under a 1-slot local executor; stop it when the coordinator cancels."""
    # The flag is only looked at after CANCEL_POLL seconds: it costs a round trip to the
    # scheduler, which short jobs should not pay. Queued jobs are cancelled by Dask itself.
    with LocalExecutor(1, grace=remote.grace) as executor:
        executor.submit(job)
        while True:
            done = executor.wait(CANCEL_POLL)
            if done:
                return done[0]
            if _cancel_requested(remote.cancel_flag):
                return executor.cancel_all()[0]


def _cancel_requested(flag: str | None) -> bool:
    if flag is None:
        return False
    import distributed

    dask: Any = distributed  # partly annotated; see executor/dask.py
    return bool(dask.Event(flag).is_set())


def _rewrite(value: str, paths: Mapping[str, str]) -> str:
    # Longest first, so a path never gets rewritten through a shorter prefix of itself.
    for original in sorted(paths, key=len, reverse=True):
        value = value.replace(original, paths[original])
    return value


def _log_tail(path: Path) -> bytes:
    return read_file_tail(path, LOG_BYTES_BACK)


def _failed(job: JobSpec, worker: str, why: str) -> JobResult:
    return JobResult.unrun(job.key, why, worker=worker)


def push_message(key: str, outcomes: list[RemoteOutcome]) -> dict[str, Any] | None:
    """`outcomes` as a Dask event (plain values only: events travel as msgpack, nothing
    is unpickled on the way), or None when they are too big or carry a git result."""
    size = 0
    plain: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.head is not None or outcome.bundle is not None:
            return None
        result = outcome.result
        size += 256 + len(result.tail) + len(result.error or "") + len(result.key) + len(result.worker)
        size += len(result.stdout or b"") + len(outcome.log or b"")
        if size > PUSH_LIMIT:
            return None
        plain.append({**{f.name: getattr(result, f.name) for f in _RESULT_FIELDS}, "log": outcome.log})
    return {_PUSH_KEY: key, "outcomes": plain}


def pushed_outcomes(message: object) -> tuple[str, list[RemoteOutcome]] | None:
    """(task key, outcomes) from an event `push_message` made; None for any other event."""
    if not isinstance(message, dict) or not isinstance(message.get(_PUSH_KEY), str):
        return None
    outcomes: list[RemoteOutcome] = []
    try:
        for plain in message["outcomes"]:
            fields = {name: value for name, value in plain.items() if name != "log"}
            outcomes.append(RemoteOutcome(JobResult(**fields), None, None, plain["log"]))
    except (KeyError, TypeError, AttributeError):
        return None  # not ours after all: the coordinator fetches the task's result
    return message[_PUSH_KEY], outcomes


_RESULT_FIELDS = fields(JobResult)
