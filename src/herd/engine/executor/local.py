"""The local pool: jobs as child processes of the supervisor, one process group each.

Design, chosen by measurement (bench/bench_exec.py): one thread, no asyncio.
Children are started with `subprocess.Popen` (CPython uses vfork for it, as
fast as `os.posix_spawn` here and it also handles `cwd` and exec errors), and
each child's exit is watched through a pidfd in an epoll selector together
with its output pipes. Reaping is per pid, never `waitpid(-1)`, so children
the coordinator starts elsewhere (git, tests) are never stolen.

Supervision happens inside `wait()`: the selector timeout is the nearest of
the caller's timeout, job deadlines, kill deadlines, memory polls and the
next rate-limited start. The executor is not thread-safe; one coordinator
thread owns it.

When a job's leader exits, whatever is left in its process group (a
backgrounded grandchild) is SIGKILLed before the leader is reaped: while the
leader is a zombie its pid cannot be reused, so the kill cannot hit an
unrelated group even when pids wrap. A process that leaves the group with
its own setsid() escapes this, as it would escape any group-based kill.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from herd.engine.executor.base import (
    EXIT_CANNOT_EXECUTE,
    EXIT_COMMAND_NOT_FOUND,
    JobResult,
    JobSpec,
)
from herd.engine.executor.output import CappedLog, PipeReader, read_file_tail, tail_text
from herd.engine.executor.tree import tree_rss
from herd.errors import BadInput

DEFAULT_GRACE = 5.0
DEFAULT_MEMORY_POLL = 0.25
# Without pidfds (kernel < 5.3) exits are found by polling at this interval.
_EXIT_POLL = 0.01


@dataclass(eq=False)
class _Running:
    job: JobSpec
    proc: subprocess.Popen[bytes]
    slot: int
    worker: str
    started_at: float
    deadline: float | None
    pidfd: int | None
    stdout: PipeReader | None
    output: PipeReader | None
    """stderr (or stdout+stderr) when it is not going to `log_path`; only the tail is kept."""
    next_memory_check: float | None
    kill_reason: str | None = None
    kill_at: float | None = None
    pipes: list[PipeReader] = field(default_factory=list)


class LocalExecutor:
    """Runs up to `slots` jobs at once as local child processes."""

    def __init__(
        self,
        slots: int,
        *,
        rate_per_min: float | None = None,
        grace: float = DEFAULT_GRACE,
        memory_poll_interval: float = DEFAULT_MEMORY_POLL,
        name: str = "local",
    ) -> None:
        if slots < 1:
            raise BadInput(f"executor needs at least 1 slot, got {slots}")
        if rate_per_min is not None and rate_per_min <= 0:
            raise BadInput(f"rate limit must be positive, got {rate_per_min}/min")
        self._slots = slots
        self._start_interval = 0.0 if rate_per_min is None else 60.0 / rate_per_min
        self._next_start = 0.0
        self._grace = grace
        self._memory_poll = memory_poll_interval
        self._name = name
        self._free_slots = list(range(1, slots + 1))  # a heap: the lowest free slot goes first
        self._pending: deque[JobSpec] = deque()
        self._running: dict[int, _Running] = {}
        self._done: list[JobResult] = []
        self._selector = selectors.DefaultSelector()
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._use_pidfd = hasattr(os, "pidfd_open")
        self._closed = False

    # -- the Executor interface ------------------------------------------------

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def backlog(self) -> int:
        return self._slots

    @property
    def outstanding(self) -> int:
        return len(self._pending) + len(self._running) + len(self._done)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, job: JobSpec) -> None:
        if self._closed:
            raise BadInput(f"job {job.key}: executor is closed")
        self._pending.append(job)
        self._start_pending(time.monotonic())

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        polled = False  # wait(0) still looks once, without blocking
        while True:
            now = time.monotonic()
            self._start_pending(now)
            if self._done:
                done, self._done = self._done, []
                return done
            if not self._running and not self._pending:
                return []
            if polled and end is not None and now >= end:
                return []
            self._poll(self._next_wakeup(now, end))
            polled = True

    def results(self, timeout: float | None = None) -> Iterator[JobResult]:
        while self.outstanding:
            batch = self.wait(timeout)
            if not batch:
                return
            yield from batch

    def cancel_all(self, grace: float | None = None) -> list[JobResult]:
        grace = self._grace if grace is None else grace
        now = time.time()
        while self._pending:
            job = self._pending.popleft()
            self._done.append(_not_started(job, now, "cancelled before it started", cancelled=True))
        kill_at = time.monotonic() + grace
        for run in self._running.values():
            self._terminate(run, "cancel", kill_at)
        try:
            self._reap_all()
        except BaseException:
            # A second Ctrl-C while waiting out the grace period: kill now, still reap.
            for run in self._running.values():
                run.kill_at = time.monotonic()
            self._reap_all()
            raise
        done, self._done = self._done, []
        return done

    def hurry(self) -> None:
        """A second stop request: kill every running job's group now, without its grace
        period (called from a signal handler: it only sends signals; reaping stays with
        the loop that is waiting in `cancel_all` or `wait`)."""
        for run in list(self._running.values()):
            run.kill_at = None
            _signal_group(run.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        if self._closed:
            return
        if self._running or self._pending:
            self.cancel_all()
        self._closed = True
        self._selector.close()
        os.close(self._devnull)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- starting --------------------------------------------------------------

    def _start_pending(self, now: float) -> None:
        while self._pending and self._free_slots and now >= self._next_start:
            job = self._pending.popleft()
            if self._start_interval:
                self._next_start = now + self._start_interval
            self._spawn(job, heapq.heappop(self._free_slots), now)

    def _spawn(self, job: JobSpec, slot: int, now: float) -> None:
        worker = f"{self._name}/w{slot}"
        started_at = time.time()
        parent_ends: list[PipeReader] = []
        child_ends: list[int] = []
        try:
            stdout_target, stderr_target, stdout, output = self._output_fds(
                job, parent_ends, child_ends
            )
        except OSError as exc:
            heapq.heappush(self._free_slots, slot)
            self._done.append(
                _not_started(job, started_at, f"cannot open log: {exc}", worker=worker)
            )
            return
        env = None if job.env is None else {**os.environ, **job.env}
        try:
            proc = subprocess.Popen(
                job.argv,
                stdin=self._devnull,
                stdout=stdout_target,
                stderr=stderr_target,
                cwd=job.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            for reader in parent_ends:
                reader.close()
            heapq.heappush(self._free_slots, slot)
            self._done.append(_spawn_failed(job, exc, started_at, worker))
            return
        finally:
            for fd in child_ends:
                os.close(fd)
        pidfd = os.pidfd_open(proc.pid) if self._use_pidfd else None
        run = _Running(
            job=job,
            proc=proc,
            slot=slot,
            worker=worker,
            started_at=started_at,
            deadline=None if job.timeout is None else now + job.timeout,
            pidfd=pidfd,
            stdout=stdout,
            output=output,
            next_memory_check=None if job.max_memory is None else now,
            pipes=parent_ends,
        )
        self._running[proc.pid] = run
        if pidfd is not None:
            self._selector.register(pidfd, selectors.EVENT_READ, run)
        for reader in parent_ends:
            self._selector.register(reader.fd, selectors.EVENT_READ, reader)

    def _output_fds(
        self, job: JobSpec, parent_ends: list[PipeReader], child_ends: list[int]
    ) -> tuple[int, int, PipeReader | None, PipeReader | None]:
        """Where the child's stdout and stderr go. Logged output is a plain file
        descriptor (nothing to pump); only captured or unlogged output is piped."""

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

    # -- supervising -------------------------------------------------------------

    def _next_wakeup(self, now: float, end: float | None) -> float | None:
        times: list[float] = [] if end is None else [end]
        for run in self._running.values():
            if run.kill_at is not None:
                times.append(run.kill_at)
            elif run.kill_reason is None and run.deadline is not None:
                times.append(run.deadline)
            if run.next_memory_check is not None and run.kill_reason is None:
                times.append(run.next_memory_check)
        if self._pending and self._free_slots:
            times.append(self._next_start)
        timeout = None if not times else max(0.0, min(times) - now)
        if not self._use_pidfd and self._running:
            timeout = _EXIT_POLL if timeout is None else min(timeout, _EXIT_POLL)
        return timeout

    def _poll(self, timeout: float | None) -> None:
        for key, _ in self._selector.select(timeout):
            data = key.data
            if isinstance(data, PipeReader):
                # An earlier event in this batch may have reaped its job and closed it.
                if not data.closed and data.read_available():
                    self._selector.unregister(data.fd)
                    data.close()
            elif isinstance(data, _Running) and data.proc.pid in self._running:
                self._reap(data)
        if not self._use_pidfd:
            for run in list(self._running.values()):
                if os.waitid(os.P_PID, run.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    self._reap(run)
        self._enforce_limits(time.monotonic())

    def _enforce_limits(self, now: float) -> None:
        for run in list(self._running.values()):
            if run.kill_at is not None:
                if now >= run.kill_at:
                    _signal_group(run.proc.pid, signal.SIGKILL)
                    run.kill_at = None  # the exit event reaps it; SIGKILL is not retried
                continue
            if run.kill_reason is not None:
                continue
            if run.deadline is not None and now >= run.deadline:
                self._terminate(run, "timeout", now + self._grace)
            elif run.next_memory_check is not None and now >= run.next_memory_check:
                run.next_memory_check = now + self._memory_poll
                limit = run.job.max_memory
                if limit is not None and tree_rss(run.proc.pid) > limit:
                    self._terminate(run, "memory", now + self._grace)

    def _terminate(self, run: _Running, reason: str, kill_at: float) -> None:
        if run.kill_reason is None:
            run.kill_reason = reason
            _signal_group(run.proc.pid, signal.SIGTERM)
        if run.kill_at is None or kill_at < run.kill_at:
            run.kill_at = kill_at

    def _reap_all(self) -> None:
        while self._running:
            now = time.monotonic()
            self._poll(self._next_wakeup(now, None))

    def _reap(self, run: _Running) -> None:
        """The group leader has exited (still a zombie, so its pid and process
        group id cannot be reused yet): kill any stragglers, then reap."""
        pid = run.proc.pid
        _signal_group(pid, signal.SIGKILL)
        if run.pidfd is not None:
            self._selector.unregister(run.pidfd)
            os.close(run.pidfd)
        _, status, _ = os.wait4(pid, 0)
        ended_at = time.time()
        code = os.waitstatus_to_exitcode(status)
        run.proc.returncode = code  # keeps subprocess' own cleanup from waiting on the pid again
        for reader in run.pipes:
            if not reader.closed:
                reader.read_available()
                self._selector.unregister(reader.fd)
                reader.close()
        if run.job.log_path is not None and run.output is None:
            tail = tail_text(read_file_tail(run.job.log_path))
        else:
            tail = tail_text(bytes(run.output.buf)) if run.output is not None else ""
        del self._running[pid]
        heapq.heappush(self._free_slots, run.slot)
        self._done.append(
            JobResult(
                key=run.job.key,
                exit_code=code if code >= 0 else None,
                signal=-code if code < 0 else None,
                timed_out=run.kill_reason == "timeout",
                out_of_memory=run.kill_reason == "memory",
                started_at=run.started_at,
                ended_at=ended_at,
                tail=tail,
                stdout=bytes(run.stdout.buf) if run.stdout is not None else None,
                worker=run.worker,
                cancelled=run.kill_reason == "cancel",
            )
        )


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _spawn_failed(job: JobSpec, exc: OSError, started_at: float, worker: str) -> JobResult:
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


def _not_started(
    job: JobSpec, now: float, why: str, *, worker: str = "", cancelled: bool = False
) -> JobResult:
    return JobResult.unrun(job.key, why, worker=worker, started_at=now, ended_at=now,
                           cancelled=cancelled)


def kill_by_env(name: str, value: str, **also: str) -> int:
    """Kill the process group of every process whose environment has name=value (and each
    of `also`): after a crash, the jobs of a dead supervisor live on in their own sessions;
    a job's daemon (its own setsid) outlives the job. Returns how many."""
    killed = 0
    me = os.getpid()
    for pid in _pids_with_env({name: value, **also}):
        if pid == me:
            continue
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            continue
    return killed


def _pids_with_env(wanted: dict[str, str]) -> list[int]:
    """Pids whose environment holds every name=value of `wanted`. Reads /proc directly
    where there is one (a few ms; psutil takes ~20x longer, too slow once per attempt)."""
    needles = {f"{k}={v}".encode() for k, v in wanted.items()}
    if not os.path.isdir("/proc/self"):
        import psutil

        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                env = proc.environ()
            except psutil.Error:
                continue
            if all(env.get(k) == v for k, v in wanted.items()):
                found.append(proc.pid)
        return found
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                entries = set(f.read().split(b"\0"))
        except OSError:
            continue
        if needles <= entries:
            found.append(int(entry.name))
    return found
