"""Starting one job's process: its output descriptors, then the spawn itself.

The spawn is `os.posix_spawn` (glibc: clone(CLONE_VM|CLONE_VFORK) + exec, no
Python in the child) whenever it can do everything asked: the job runs in the
supervisor's own directory and takes the program from the supervisor's PATH.
Otherwise `subprocess.Popen` (vfork, then chdir in the child). Either way the
child gets its own session (its own process group, which the executor signals),
stdin from /dev/null, SIGPIPE and SIGXFSZ back at their defaults (Python ignores
them; an ignored signal stays ignored across exec), and no preexec_fn.

The executor reaps by pid with `os.wait4`; nothing here keeps a `Popen` that
could reap the child behind its back.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from herd.engine.executor.base import (
    EXIT_CANNOT_EXECUTE,
    EXIT_COMMAND_NOT_FOUND,
    JobResult,
    JobSpec,
)
from herd.engine.executor.output import CappedLog, PipeReader

_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_CAN_POSIX_SPAWN = hasattr(os, "posix_spawnp") and hasattr(os, "POSIX_SPAWN_DUP2")


def start_process(argv: tuple[str, ...], *, stdin: int, stdout: int, stderr: int,
                  cwd: Path | None, env: Mapping[str, str] | None,
                  inherited: Sequence[int] | None) -> int:
    """Start `argv` in a session of its own; its pid. `env` is merged over ours;
    `inherited` is what `inheritable_fds` found (None: use Popen). OSError
    (FileNotFoundError: no such program or directory) when it cannot be started."""
    if inherited is not None and _same_dir(cwd) and (env is None or "PATH" not in env):
        # dup2 onto 0/1/2 clears close-on-exec on the copies; the originals stay
        # close-on-exec, so the child holds no other end of its pipes. What the embedding
        # process left inheritable is closed, as Popen's close_fds does.
        actions: list[tuple[int, ...]] = [
            (os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_DUP2, stderr, 2), *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited)]
        return os.posix_spawnp(argv[0], argv, _environment(env),
                               file_actions=actions, setsid=True, setsigdef=_DEFAULT_SIGNALS)
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
                            env=None if env is None else {**os.environ, **env},
                            start_new_session=True)
    # The executor reaps it with wait4; a returncode keeps subprocess' own clean-up
    # (which polls forgotten Popen objects) from ever waiting on this pid.
    proc.returncode = 0
    return proc.pid


def _environment(extra: Mapping[str, str] | None) -> Mapping[str, str] | Mapping[bytes, bytes]:
    """Our environment for posix_spawn, live. `os.environ` itself would do, but handing it
    over walks it in Python (about 50 us a spawn); its encoded dict, which it keeps in step
    with every change, is walked in C."""
    data = getattr(os.environ, "_data", None)
    if extra is None and isinstance(data, dict):
        return data
    return {**os.environ, **(extra or {})}


def inheritable_fds() -> list[int] | None:
    """Our descriptors above 2 that an exec would pass on: none of herd's (Python opens
    everything close-on-exec), but the embedding program's may be. The executor asks once
    when it starts (asking per spawn cost a third of a cheap job's overhead, measured);
    None when they cannot be listed (no /proc, no posix_spawn): Popen closes them all."""
    if not _CAN_POSIX_SPAWN:
        return None
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:
                continue  # the listing's own descriptor, closed by now
    return found


def _same_dir(cwd: Path | None) -> bool:
    if cwd is None:
        return True
    try:
        return os.fspath(cwd) == os.getcwd() or os.path.samefile(cwd, ".")
    except OSError:
        return False  # a missing directory: Popen reports it as such


def output_fds(job: JobSpec, parent_ends: list[PipeReader],
               child_ends: list[int]) -> tuple[int, int, PipeReader | None, PipeReader | None]:
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
        log_fd = os.open(
            job.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
        )
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
    return JobResult.unrun(job.key, text, worker=worker, started_at=started_at, exit_code=code,
                           stdout=b"" if job.capture_stdout else None)


def not_started(job: JobSpec, now: float, why: str, *, worker: str = "",
                cancelled: bool = False) -> JobResult:
    return JobResult.unrun(job.key, why, worker=worker, started_at=now, ended_at=now,
                           cancelled=cancelled)
