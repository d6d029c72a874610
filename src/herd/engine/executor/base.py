"""What a job is, what running it produced, and the interface every executor offers.

The coordinator (hypervisor, `herd map`) only ever talks to `Executor`: it never
learns which executor or machine ran a job, except through `JobResult.worker`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from herd.errors import BadInput
from herd.structs import struct

EXIT_COMMAND_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126


@struct(frozen=True)
class JobSpec:
    """One command to run, and the limits it runs under."""

    key: str
    """The caller's id for the job: task id + attempt, or item batch id."""
    argv: tuple[str, ...]
    """Program and arguments; never a shell string."""
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    """Extra variables, merged over the supervisor's environment."""
    timeout: float | None = None
    """Seconds of wall time before the supervisor kills the job's process group."""
    max_memory: int | None = None
    """Bytes of RSS, summed over the job's whole process tree."""
    log_path: Path | None = None
    """Where stdout and stderr of the attempt are saved (None: only a tail is kept in memory)."""
    log_limit: int | None = None
    """Keep only about the last this many bytes in `log_path` (the log then says so).
    Output then passes through the supervisor; None: the job writes the file itself."""
    capture_stdout: bool = False
    """Return stdout whole in `JobResult.stdout`; stderr then goes to `log_path` or the tail."""
    inputs: tuple[Path, ...] = ()
    """Files the job reads that live on the coordinator (a task's context file). The local
    executor ignores it; a remote executor ships them and rewrites their paths in argv/env."""

    def __post_init__(self) -> None:
        if isinstance(self.argv, str):
            raise BadInput(f"job {self.key}: argv must be a list of arguments, not a shell string")
        argv = tuple(self.argv)
        if not argv:
            raise BadInput(f"job {self.key}: argv is empty")
        # Accept any sequence from callers but keep the frozen value hashable and immutable.
        object.__setattr__(self, "argv", argv)
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        if self.timeout is not None and self.timeout <= 0:
            raise BadInput(f"job {self.key}: timeout must be positive, got {self.timeout}")
        if self.max_memory is not None and self.max_memory <= 0:
            raise BadInput(f"job {self.key}: max_memory must be positive, got {self.max_memory}")


@struct(frozen=True)
class JobResult:
    """How one job ended. Every submitted job yields exactly one result."""

    key: str
    exit_code: int | None
    """None when the job was killed by a signal or never started."""
    signal: int | None
    timed_out: bool
    out_of_memory: bool
    started_at: float
    """time.time() at spawn."""
    ended_at: float
    tail: str
    """Last ~40 lines / 4 KiB of output (stderr only when stdout is captured)."""
    stdout: bytes | None
    """Whole stdout, when the job asked for `capture_stdout`."""
    worker: str
    """Which slot or host ran the job, e.g. "local/w3"."""
    error: str | None = None
    """Why the job could not be started (command not found: exit_code 127 and this text)."""
    cancelled: bool = False
    """Stopped by `cancel_all()` (or never started because of it)."""

    @classmethod
    def unrun(
        cls,
        key: str,
        error: str,
        *,
        worker: str = "",
        started_at: float | None = None,
        ended_at: float | None = None,
        exit_code: int | None = None,
        stdout: bytes | None = None,
        cancelled: bool = False,
    ) -> JobResult:
        """A job that produced no process result: it could not start, was cancelled before
        it ran, or lost the machine it ran on. `error` says which."""
        end = time.time() if ended_at is None else ended_at
        return cls(
            key=key,
            exit_code=exit_code,
            signal=None,
            timed_out=False,
            out_of_memory=False,
            started_at=end if started_at is None else started_at,
            ended_at=end,
            tail="",
            stdout=stdout,
            worker=worker,
            error=error,
            cancelled=cancelled,
        )

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.out_of_memory
            and not self.cancelled
            and self.error is None
        )

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


class Executor(Protocol):
    """Runs jobs concurrently; driven by one single-threaded coordinator loop.

    The loop submits jobs (`submit` never blocks: jobs beyond the free slots
    queue inside the executor), then calls `wait` to collect completions and
    submits more. `wait` is also where the executor supervises (timeouts,
    memory, rate limit), so the loop must keep calling it while jobs run;
    pass a timeout to get control back for other work.
    """

    @property
    def slots(self) -> int:
        """How many jobs run at once."""
        ...

    @property
    def backlog(self) -> int:
        """How many unfinished jobs a coordinator with many small jobs should keep submitted
        for full speed: `slots` for a local pool; more for a remote one, which can then
        batch several jobs into one round trip."""
        ...

    @property
    def outstanding(self) -> int:
        """Jobs submitted whose result has not been returned yet (queued + running + done)."""
        ...

    def submit(self, job: JobSpec) -> None:
        """Queue a job; it starts as soon as a slot (and the rate limit) allows."""
        ...

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        """Block until at least one job finished, or `timeout` seconds passed.

        Returns every result available (empty on timeout, or at once when nothing is outstanding).
        """
        ...

    def results(self, timeout: float | None = None) -> Iterator[JobResult]:
        """Yield results as jobs finish until nothing is outstanding (jobs submitted
        while iterating are included), or until `timeout` seconds pass with no completion."""
        ...

    def cancel_all(self, grace: float | None = None) -> list[JobResult]:
        """Two-stage stop: SIGTERM every job's process group, wait up to `grace`,
        SIGKILL what is left, reap everything. Queued jobs are dropped.

        Returns the results not yet collected (cancelled ones have `cancelled=True`).
        Idempotent: a second call returns what finished since, usually nothing.
        """
        ...

    def hurry(self) -> None:
        """A second stop request arrived: kill running jobs now instead of after their
        grace period. Called from a signal handler: it may only send signals."""
        ...

    def close(self) -> None:
        """Cancel whatever still runs and release the executor's resources."""
        ...
