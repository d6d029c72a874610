"""The local pool: jobs as child processes of the supervisor, one process group each.

Design, chosen by measurement (bench/bench_exec.py): one thread, no asyncio.
Children are started by spawn.py (`subprocess.Popen`, vfork, own session, no
shell, no preexec_fn; posix_spawn measured no faster), and each child's exit is
watched through a pidfd in an epoll selector together with its output
pipes. Reaping is per pid, never `waitpid(-1)`, so children
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
import heapq
import os
import select
import selectors
import signal
import time
from collections import deque
from collections.abc import Iterator

from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.executor.output import PipeReader, read_file_tail, tail_text
from herd.engine.executor.spawn import not_started, output_fds, spawn_failed, start_process
from herd.engine.executor.sweep import kill_by_env
from herd.engine.executor.tree import tree_rss
from herd.errors import BadInput
from herd.structs import field, struct

__all__ = ["DEFAULT_GRACE", "LocalExecutor", "kill_by_env"]

DEFAULT_GRACE = 5.0
DEFAULT_MEMORY_POLL = 0.25
# Without pidfds (kernel < 5.3) exits are found by polling at this interval.
_EXIT_POLL = 0.01


@struct(eq=False)
class _Running:
    job: JobSpec
    pid: int
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


class _Watch:
    """The descriptors the loop waits on, each with what it belongs to. Raw epoll where
    there is one (Linux): `selectors`' wrappers cost ~12 us per job (3 registrations, 3
    removals, a wait), measured on 1,000 x true; elsewhere `selectors`."""

    def __init__(self, *, epoll: bool = hasattr(select, "epoll")) -> None:
        self._what: dict[int, object] = {}
        self._epoll = select.epoll() if epoll else None
        self._selector = None if self._epoll is not None else selectors.DefaultSelector()

    def add(self, fd: int, what: object) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        elif self._selector is not None:
            self._selector.register(fd, selectors.EVENT_READ)
        self._what[fd] = what

    def remove(self, fd: int) -> None:
        del self._what[fd]
        if self._epoll is not None:
            self._epoll.unregister(fd)
        elif self._selector is not None:
            self._selector.unregister(fd)

    def wait(self, timeout: float | None) -> list[object]:
        """What became readable (or hung up) within `timeout` seconds (None: no limit)."""
        if self._epoll is not None:
            ready = [fd for fd, _ in self._epoll.poll(-1 if timeout is None else timeout)]
        elif self._selector is not None:
            ready = [key.fd for key, _ in self._selector.select(timeout)]
        else:
            ready = []
        return [self._what[fd] for fd in ready if fd in self._what]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        elif self._selector is not None:
            self._selector.close()


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
        self._watch = _Watch()
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
            self._done.append(not_started(job, now, "cancelled before it started", cancelled=True))
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
            _signal_group(run.pid, signal.SIGKILL)

    def close(self) -> None:
        if self._closed:
            return
        if self._running or self._pending:
            self.cancel_all()
        self._closed = True
        self._watch.close()
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
            stdout_target, stderr_target, stdout, output = output_fds(job, parent_ends, child_ends)
        except OSError as exc:
            heapq.heappush(self._free_slots, slot)
            self._done.append(not_started(job, started_at, f"cannot open log: {exc}", worker=worker))
            return
        try:
            pid = start_process(
                job.argv,
                stdin=self._devnull,
                stdout=stdout_target,
                stderr=stderr_target,
                cwd=job.cwd,
                env=job.env,
            )
        except OSError as exc:
            for reader in parent_ends:
                reader.close()
            heapq.heappush(self._free_slots, slot)
            self._done.append(spawn_failed(job, exc, started_at, worker))
            return
        finally:
            for fd in child_ends:
                os.close(fd)
        pidfd = os.pidfd_open(pid) if self._use_pidfd else None
        run = _Running(
            job=job,
            pid=pid,
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
        self._running[pid] = run
        if pidfd is not None:
            self._watch.add(pidfd, run)
        for reader in parent_ends:
            self._watch.add(reader.fd, reader)

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
        for data in self._watch.wait(timeout):
            if isinstance(data, PipeReader):
                # An earlier event in this batch may have reaped its job and closed it.
                if not data.closed and data.read_available():
                    self._watch.remove(data.fd)
                    data.close()
            elif isinstance(data, _Running) and data.pid in self._running:
                self._reap(data)
        if not self._use_pidfd:
            for run in list(self._running.values()):
                if os.waitid(os.P_PID, run.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    self._reap(run)
        self._enforce_limits(time.monotonic())

    def _enforce_limits(self, now: float) -> None:
        for run in list(self._running.values()):
            if run.kill_at is not None:
                if now >= run.kill_at:
                    _signal_group(run.pid, signal.SIGKILL)
                    run.kill_at = None  # the exit event reaps it; SIGKILL is not retried
                continue
            if run.kill_reason is not None:
                continue
            if run.deadline is not None and now >= run.deadline:
                self._terminate(run, "timeout", now + self._grace)
            elif run.next_memory_check is not None and now >= run.next_memory_check:
                run.next_memory_check = now + self._memory_poll
                limit = run.job.max_memory
                if limit is not None and tree_rss(run.pid) > limit:
                    self._terminate(run, "memory", now + self._grace)

    def _terminate(self, run: _Running, reason: str, kill_at: float) -> None:
        if run.kill_reason is None:
            run.kill_reason = reason
            _signal_group(run.pid, signal.SIGTERM)
        if run.kill_at is None or kill_at < run.kill_at:
            run.kill_at = kill_at

    def _reap_all(self) -> None:
        while self._running:
            now = time.monotonic()
            self._poll(self._next_wakeup(now, None))

    def _reap(self, run: _Running) -> None:
        """The group leader has exited (still a zombie, so its pid and process
        group id cannot be reused yet): kill any stragglers, then reap."""
        pid = run.pid
        _signal_group(pid, signal.SIGKILL)
        if run.pidfd is not None:
            self._watch.remove(run.pidfd)
            os.close(run.pidfd)
        _, status, _ = os.wait4(pid, 0)
        ended_at = time.time()
        code = os.waitstatus_to_exitcode(status)
        for reader in run.pipes:
            if not reader.closed:
                reader.read_available()
                self._watch.remove(reader.fd)
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
