"""Starting one job's process: its output descriptors, then the spawn itself.

The spawn is `subprocess.Popen(start_new_session=True)`: CPython forks it with
vfork (no preexec_fn, so nothing runs in Python in the child), the child gets its
own session (its own process group, which the executor signals), stdin from
/dev/null, SIGPIPE and SIGXFSZ back at their defaults, and every descriptor but
0-2 closed. `os.posix_spawnp` was measured against it here (issue 16 suggested
it; a driver like bench/bench_exec.py's, 4 x 1,000 x true alternating): the parent spends
~30 us less per job, the child ~60 us more (glibc's spawn child maps a stack and
walks every signal), and closing inherited descriptors needs a /proc listing that
Popen does in C. No gain, so no second way to start a job.

The executor reaps by pid with `os.wait4`; nothing here keeps a `Popen` that
could reap the child behind its back.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from herd.engine.executor.base import (
    EXIT_CANNOT_EXECUTE,
    EXIT_COMMAND_NOT_FOUND,
    JobResult,
    JobSpec,
)
from herd.engine.executor.output import CappedLog, PipeReader


def start_process(
    argv: tuple[str, ...],
    *,
    stdin: int,
    stdout: int,
    stderr: int,
    cwd: Path | None,
    env: Mapping[str, str] | None,
) -> int:
    """Start `argv` in a session of its own; its pid. `env` is merged over ours. OSError
    (FileNotFoundError: no such program or directory) when it cannot be started."""
    proc = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        start_new_session=True,
    )
    # The executor reaps it with wait4; a returncode keeps subprocess' own clean-up
    # (which polls forgotten Popen objects) from ever waiting on this pid.
    proc.returncode = 0
    return proc.pid


def output_fds(
    job: JobSpec, parent_ends: list[PipeReader], child_ends: list[int]
) -> tuple[int, int, PipeReader | None, PipeReader | None]:
    """Where the child's stdout and stderr go: (stdout fd, stderr fd, the reader of whole
    stdout, the reader of the output tail). Logged output is a plain file descriptor
    (nothing to pump); only captured or unlogged output is piped. The parent's ends are
    appended to `parent_ends`, the descriptors to close after the spawn to `child_ends`."""

    def pipe(whole: bool, log: CappedLog | None = None) -> tuple[PipeReader, int]:
        r, w = os.pipe2(os.O_CLOEXEC)
        reader = PipeReader(r, whole=whole, log=log)
        parent_ends.append(reader)
        child_ends.append(w)
        return reader, w

    stdout: PipeReader | None = None
    output: PipeReader | None = None
    if job.log_path is not None and job.log_limit is not None:
        # A capped log: output passes through here so only its end is kept.
        log = CappedLog(job.log_path, job.log_limit)
        if job.capture_stdout:
            stdout, stdout_fd = pipe(whole=True)
            output, stderr_fd = pipe(whole=False, log=log)
            return stdout_fd, stderr_fd, stdout, output
        output, both_fd = pipe(whole=False, log=log)
        return both_fd, both_fd, None, output
    log_fd = None
    if job.log_path is not None:
        log_fd = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        child_ends.append(log_fd)
    if job.capture_stdout:
        stdout, stdout_fd = pipe(whole=True)
        if log_fd is not None:
            return stdout_fd, log_fd, stdout, None
        output, stderr_fd = pipe(whole=False)
        return stdout_fd, stderr_fd, stdout, output
    if log_fd is not None:
        return log_fd, log_fd, None, None
    output, both_fd = pipe(whole=False)
    return both_fd, both_fd, None, output


def spawn_failed(job: JobSpec, exc: OSError, started_at: float, worker: str) -> JobResult:
    if exc.errno == errno.ENOENT:
        code = EXIT_COMMAND_NOT_FOUND
        missing = exc.filename if exc.filename is not None else job.argv[0]
        what = (
            "working directory not found"
            if job.cwd is not None and str(missing) == str(job.cwd)
            else "command not found"
        )
        text = f"{what}: {missing}"
    else:
        code = EXIT_CANNOT_EXECUTE
        text = f"cannot execute {job.argv[0]}: {exc.strerror or exc}"
    return JobResult.unrun(
        job.key,
        text,
        worker=worker,
        started_at=started_at,
        exit_code=code,
        stdout=b"" if job.capture_stdout else None,
    )


def not_started(
    job: JobSpec, now: float, why: str, *, worker: str = "", cancelled: bool = False
) -> JobResult:
    return JobResult.unrun(job.key, why, worker=worker, started_at=now, ended_at=now, cancelled=cancelled)
