"""When a map may start its next job, and how long a job may run: GNU parallel's `--delay`,
`--memfree`, `--load` and `--timeout N%`, as attempt policies (engine/policies.py).

A gate answers `delay(now)`: 0 when a job may start, else the seconds until it is worth
asking again. Gates hold no job back once started: a running job is only stopped by its
timeout.
"""

from __future__ import annotations

import bisect
import os
from collections import deque
from collections.abc import Callable

from herd.engine.executor.base import JobSpec
from herd.engine.policies import Attempt, Policy
from herd.structs import replace

LOAD_CHECK_SECONDS = 0.5
MEMORY_CHECK_SECONDS = 0.2


class Delay(Policy):
    """`--delay DUR`: at least DUR between two job starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last_start: float | None = None

    def delay(self, now: float) -> float:
        if self.last_start is None:
            return 0.0
        return max(0.0, self.last_start + self.seconds - now)

    def started(self, now: float) -> None:
        self.last_start = now


class _Sampled(Policy):
    """A gate on a machine reading that is costly to take per job: read at most every
    `every` seconds; while closed, the wait is until the next reading."""

    every = 0.5

    def __init__(self, limit: float, read: Callable[[], float]) -> None:
        self.limit = limit
        self.read = read
        self.next_read = 0.0
        self.open = True

    def delay(self, now: float) -> float:
        if now >= self.next_read:
            self.open = self.allows(self.read())
            self.next_read = now + self.every
        return 0.0 if self.open else max(self.next_read - now, 0.01)

    def allows(self, reading: float) -> bool:
        raise NotImplementedError


class MemFree(_Sampled):
    """`--memfree SIZE`: no new job while the available memory is below SIZE bytes."""

    every = MEMORY_CHECK_SECONDS

    def allows(self, reading: float) -> bool:
        return reading >= self.limit


class Load(_Sampled):
    """`--load N`: no new job while the 1-minute load average is above N."""

    every = LOAD_CHECK_SECONDS

    def allows(self, reading: float) -> bool:
        return reading <= self.limit


def available_memory() -> float:
    import psutil

    return float(psutil.virtual_memory().available)


def load_average() -> float:
    return os.getloadavg()[0]


def load_limit(text: str, cores: int | None = None) -> float:
    """`N` or `N%` of the cores (GNU parallel's forms)."""
    cores = cores or os.cpu_count() or 1
    if text.endswith("%"):
        return float(text[:-1]) * cores / 100
    return float(text)


class RelativeTimeout(Policy):
    """`--timeout 200%`: a job may run 200% of the median duration of the jobs that
    succeeded so far. Jobs started before the first success run without a limit (herd
    fixes a job's timeout when it starts; GNU parallel re-checks running jobs)."""

    window = 1001
    """The median of the latest successes only: bounded cost and memory."""

    def __init__(self, percent: float) -> None:
        self.factor = percent / 100
        self.durations: list[float] = []
        self.recent: deque[float] = deque()

    def ended(self, attempt: Attempt) -> None:
        if attempt.ok:
            self.succeeded(attempt.duration)

    def succeeded(self, duration: float) -> None:
        bisect.insort(self.durations, duration)
        self.recent.append(duration)
        if len(self.recent) > self.window:
            del self.durations[bisect.bisect_left(self.durations, self.recent.popleft())]

    def timeout(self) -> float | None:
        if not self.durations:
            return None
        median = self.durations[(len(self.durations) - 1) // 2]
        return max(median * self.factor, 0.001)

    def prepare(self, job: JobSpec) -> JobSpec:
        limit = self.timeout()
        if limit is None or job.timeout is not None:
            return job
        return replace(job, timeout=limit)


def admission(
    delay: float | None, memfree: int | None, load: float | None, timeout_percent: float | None
) -> list[Policy]:
    """The policies these options ask for (none: an empty list)."""
    chosen: list[Policy] = []
    if delay:
        chosen.append(Delay(delay))
    if memfree:
        chosen.append(MemFree(memfree, available_memory))
    if load is not None:
        chosen.append(Load(load, load_average))
    if timeout_percent:
        chosen.append(RelativeTimeout(timeout_percent))
    return chosen
