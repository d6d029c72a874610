"""The in-process executor: a job's program is a registered Python callable run in a thread.

Modelled on dramatiq's StubBroker: the coordinator (hypervisor, `herd map`) runs unchanged
while its jobs cost a thread instead of a process, so tests drive it inside pytest. A job's
`argv[0]` names the program: `register("fake-agent", fn)` (or the `programs` given to one
executor) maps it to `fn(call) -> exit code`. The program gets its argv, cwd and environment
in the `Call`, never through the process's own (no os.chdir, no os.environ changes), and it
writes to `call.stdout` and `call.stderr`; what it does in the worktree is real (git runs as
a subprocess through `call.run`).

Threads cannot be killed. A timeout or `cancel_all()` sets `call.stopping`, which
`call.sleep()` and `call.check()` turn into `Stopped` inside the program (a program that
obeys SIGTERM); the result then says `signal=SIGTERM`. A program that ignores it for
`grace` seconds is abandoned (its thread is a daemon), reported with `signal=SIGKILL`.
`max_memory` is not enforced: a thread has no RSS of its own.
"""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herd.engine.executor.base import EXIT_COMMAND_NOT_FOUND, JobResult, JobSpec
from herd.engine.executor.output import TAIL_BYTES, CappedLog, tail_text
from herd.errors import BadInput

DEFAULT_GRACE = 5.0
_POLL = 0.1


class Stopped(Exception):
    """Raised inside a program by `Call.sleep` / `Call.check` once it is asked to stop."""


class _Output(io.TextIOBase):
    """A text stream whose bytes go to the job's buffers (and its log)."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink(text.encode("utf-8", "replace"))
        return len(text)


@dataclass
class Call:
    """What one run of a program gets instead of a process."""

    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    """The supervisor's environment with the job's variables over it, as a child would see."""
    stdout: io.TextIOBase
    stderr: io.TextIOBase
    stopping: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise `Stopped` if the job was asked to stop (timeout or cancel)."""
        if self.stopping.is_set():
            raise Stopped

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once (with `Stopped`) when asked to stop."""
        if self.stopping.wait(seconds):
            raise Stopped

    def run(
        self, argv: Sequence[str], *, check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """A real subprocess (git, usually) in the job's cwd and environment; its output
        goes to the job's output. Raises CalledProcessError when it fails and `check`."""
        self.check()
        proc = subprocess.run(
            list(argv),
            cwd=kwargs.pop("cwd", self.cwd),
            env=kwargs.pop("env", self.env),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
        self.stdout.write(proc.stdout)
        self.stderr.write(proc.stderr)
        if check:
            proc.check_returncode()
        return proc


Program = Callable[[Call], "int | None"]

_REGISTRY: dict[str, Program] = {}
_REGISTRY_LOCK = threading.Lock()


def register(name: str, program: Program) -> None:
    """Make `name` (a job's argv[0]) run `program` in every in-process executor."""
    with _REGISTRY_LOCK:
        _REGISTRY[name] = program


def unregister(name: str) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


@dataclass(eq=False)
class _Running:
    job: JobSpec
    slot: int
    worker: str
    started_at: float
    deadline: float | None
    call: Call = field(init=False)
    exit_code: int | None = None
    """What the program returned; None when it stopped on request."""
    kill_reason: str | None = None
    abandon_at: float | None = None
    stdout: bytearray = field(default_factory=bytearray)
    output: bytearray = field(default_factory=bytearray)
    log: CappedLog | io.BufferedWriter | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def out(self, data: bytes) -> None:
        with self.lock:
            if self.job.capture_stdout:
                self.stdout += data
            else:
                self._output(data)

    def err(self, data: bytes) -> None:
        with self.lock:
            self._output(data)

    def _output(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
            if isinstance(self.log, io.BufferedWriter):
                self.log.flush()  # `herd status` shows the log's last line while the job runs
        self.output += data
        if len(self.output) > 2 * TAIL_BYTES:
            del self.output[:-TAIL_BYTES]


class InProcessExecutor:
    """Runs up to `slots` jobs at once, each a registered program in its own thread."""

    def __init__(
        self,
        slots: int,
        *,
        programs: Mapping[str, Program] | None = None,
        grace: float = DEFAULT_GRACE,
        name: str = "inprocess",
    ) -> None:
        if slots < 1:
            raise BadInput(f"executor needs at least 1 slot, got {slots}")
        self._slots = slots
        self._programs = dict(programs or {})
        self._grace = grace
        self._name = name
        self._free = list(range(slots, 0, -1))  # pop() gives the lowest slot
        self._pending: deque[JobSpec] = deque()
        self._running: dict[str, _Running] = {}
        self._finished: queue.Queue[_Running] = queue.Queue()
        self._done: list[JobResult] = []
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

    def submit(self, job: JobSpec) -> None:
        if self._closed:
            raise BadInput(f"job {job.key}: executor is closed")
        self._pending.append(job)
        self._start_pending()

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._collect(0)
            self._start_pending()
            if self._done:
                done, self._done = self._done, []
                return done
            if not self._running:
                return []
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            wakeups = [t for t in (end, *self._deadlines()) if t is not None]
            self._collect(max(0.0, min(wakeups) - now) if wakeups else None)

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
            self._done.append(
                JobResult.unrun(
                    job.key, "cancelled before it started", started_at=now, ended_at=now, cancelled=True
                )
            )
        abandon_at = time.monotonic() + grace
        for run in self._running.values():
            self._stop(run, "cancel", abandon_at)
        while self._running:
            self._collect(max(0.0, min(self._deadlines(), default=0.0) - time.monotonic()))
        done, self._done = self._done, []
        return done

    def hurry(self) -> None:
        """A second stop request: give up on every running job now instead of after its
        grace period (called from a signal handler: it only sets flags)."""
        now = time.monotonic()
        for run in list(self._running.values()):
            run.call.stopping.set()
            run.abandon_at = now

    def close(self) -> None:
        if self._closed:
            return
        if self._running or self._pending:
            self.cancel_all()
        self._closed = True

    def __enter__(self) -> InProcessExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- running -----------------------------------------------------------------

    def _program(self, name: str) -> Program | None:
        with _REGISTRY_LOCK:
            return self._programs.get(name) or _REGISTRY.get(name)

    def _start_pending(self) -> None:
        while self._pending and self._free:
            job = self._pending.popleft()
            slot = self._free.pop()
            worker = f"{self._name}/w{slot}"
            program = self._program(job.argv[0])
            if program is None:
                self._free.append(slot)
                self._free.sort(reverse=True)
                self._done.append(
                    JobResult.unrun(
                        job.key,
                        f"command not found: {job.argv[0]}",
                        worker=worker,
                        exit_code=EXIT_COMMAND_NOT_FOUND,
                        stdout=b"" if job.capture_stdout else None,
                    )
                )
                continue
            self._spawn(job, program, slot, worker)

    def _spawn(self, job: JobSpec, program: Program, slot: int, worker: str) -> None:
        run = _Running(
            job=job,
            slot=slot,
            worker=worker,
            started_at=time.time(),
            deadline=None if job.timeout is None else time.monotonic() + job.timeout,
        )
        try:
            if job.log_path is not None:
                run.log = (
                    CappedLog(job.log_path, job.log_limit)
                    if job.log_limit is not None
                    else open(job.log_path, "wb")  # noqa: SIM115 (closed when it ends)
                )
        except OSError as exc:
            self._free.append(slot)
            self._done.append(
                JobResult.unrun(job.key, f"cannot open log: {exc}", worker=worker, started_at=run.started_at)
            )
            return
        run.call = Call(
            argv=job.argv,
            cwd=Path(job.cwd) if job.cwd else Path.cwd(),
            env={**os.environ, **(job.env or {})},
            stdout=_Output(run.out),
            stderr=_Output(run.err),
        )
        self._running[job.key] = run
        threading.Thread(
            target=self._body, args=(run, program), name=f"herd-{worker}-{job.key}", daemon=True
        ).start()

    def _body(self, run: _Running, program: Program) -> None:
        try:
            code = program(run.call)
            run.exit_code = 0 if code is None else int(code)
        except Stopped:
            run.exit_code = None
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                run.exit_code = exc.code or 0
            else:
                run.call.stderr.write(f"{exc.code}\n")
                run.exit_code = 1
        except BaseException:
            run.call.stderr.write(traceback.format_exc())
            run.exit_code = 1
        self._finished.put(run)

    def _deadlines(self) -> list[float]:
        times = []
        for run in self._running.values():
            if run.abandon_at is not None:
                times.append(run.abandon_at)
            elif run.deadline is not None:
                times.append(run.deadline)
        return times

    def _stop(self, run: _Running, reason: str, abandon_at: float) -> None:
        if run.kill_reason is None:
            run.kill_reason = reason
            run.call.stopping.set()
        if run.abandon_at is None or abandon_at < run.abandon_at:
            run.abandon_at = abandon_at

    def _collect(self, timeout: float | None) -> None:
        """Results of the programs that returned (waiting up to `timeout` for one), then the
        limits: a timed-out job is asked to stop, one that ignored that too long is given up."""
        if timeout is not None or self._running:
            # Wake at least every _POLL: `hurry` (a signal handler) only sets flags.
            timeout = _POLL if timeout is None else min(timeout, _POLL)
        try:
            finished = self._finished.get(timeout=timeout) if timeout else self._finished.get_nowait()
            self._finish(finished, abandoned=False)
            while True:
                self._finish(self._finished.get_nowait(), abandoned=False)
        except queue.Empty:
            pass
        now = time.monotonic()
        for run in list(self._running.values()):
            if run.abandon_at is not None and now >= run.abandon_at:
                self._finish(run, abandoned=True)
            elif run.kill_reason is None and run.deadline is not None and now >= run.deadline:
                self._stop(run, "timeout", now + self._grace)

    def _finish(self, run: _Running, *, abandoned: bool) -> None:
        if self._running.get(run.job.key) is not run:
            return  # given up on earlier; its late return changes nothing
        del self._running[run.job.key]
        self._free.append(run.slot)
        self._free.sort(reverse=True)
        code = None if abandoned else run.exit_code
        sig: int | None = None
        if code is None:
            sig = signal.SIGKILL if abandoned else signal.SIGTERM
        with run.lock:
            if run.log is not None:
                run.log.close()
                run.log = None
            tail = tail_text(bytes(run.output))
            stdout = bytes(run.stdout) if run.job.capture_stdout else None
        self._done.append(
            JobResult(
                key=run.job.key,
                exit_code=code,
                signal=sig,
                timed_out=run.kill_reason == "timeout",
                out_of_memory=False,
                started_at=run.started_at,
                ended_at=time.time(),
                tail=tail,
                stdout=stdout,
                worker=run.worker,
                cancelled=run.kill_reason == "cancel",
            )
        )
