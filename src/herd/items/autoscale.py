"""`-j auto`: grow the worker count while throughput rises and the machine has headroom.

Jobs are judged CPU-bound or waiting by their CPU time (getrusage of the children)
against their wall time; CPU-bound work stops at the core count, waiting work at the
auto maximum.
"""

from __future__ import annotations

import os
import time

from herd.units import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from herd.engine.events import ScaleDecision

MAX_AUTO_WORKERS = 8


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class AutoScaler:
    """`-j auto`: start with 2 workers, double while throughput rises and there is
    headroom; stop at the core count when the jobs are CPU-bound (their CPU time, from
    getrusage(RUSAGE_CHILDREN), is at least a third of their wall time, allowing for
    workers beyond the cores sharing them), else at `cap`."""

    WINDOW = 0.5
    CPU_BOUND = 0.33
    GAIN = 1.15

    def __init__(self, cap: int = MAX_AUTO_WORKERS, cores: int | None = None) -> None:
        self.cap = cap
        self.cores = cores or os.cpu_count() or 1
        self.target = min(2, cap)
        self.settled = False
        self.decisions: list[ScaleDecision] = []
        self._prev: tuple[int, float] | None = None
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self._start, self._done, self._wall, self._cpu = now, 0, 0.0, children_cpu()

    def job_done(self, wall: float) -> None:
        self._done += 1
        self._wall += wall

    def tick(self, now: float) -> ScaleDecision | None:
        """A decision when one is due (the target may change), else None."""
        elapsed = now - self._start
        if self.settled or elapsed < self.WINDOW or self._done < max(2, self.target):
            return None
        ratio = (children_cpu() - self._cpu) / self._wall if self._wall > 0 else 0.0
        rate = self._done / elapsed
        # More workers than cores stretch a CPU-bound job's wall time by workers/cores:
        # judge the share of CPU it got against the share it could get.
        cpu_bound = ratio / min(1.0, self.cores / self.target) >= self.CPU_BOUND
        limit = min(self.cap, self.cores) if cpu_bound else self.cap
        kind = (
            f"CPU-bound (jobs use {ratio:.0%} CPU of their wall time)"
            if cpu_bound
            else f"waiting (jobs use {ratio:.0%} CPU of their wall time)"
        )
        was = self.target
        if self._prev is not None and rate < self._prev[1] * self.GAIN:
            prev_workers, prev_rate = self._prev
            self.target = prev_workers if rate < prev_rate else was
            why = (
                f"throughput stopped rising: {rate:.1f} jobs/s at {plural(was, 'worker')} vs "
                f"{prev_rate:.1f} at {prev_workers}"
            )
            self.settled = True
        elif was >= limit:
            self.target = limit
            cap_why = (
                f"the core count ({self.cores})"
                if cpu_bound
                else f"the auto maximum ({self.cap}; ask for more with -j N)"
            )
            why = f"capped at {cap_why}"
            self.settled = True
        elif (headroom := _no_headroom(cpu_bound, self.cores)) is not None:
            why = headroom
            self.settled = True
        else:
            self._prev = (was, rate)
            self.target = min(limit, was * 2)
            why = f"{rate:.1f} jobs/s at {plural(was, 'worker')} and headroom left: trying {self.target}"
        decision: ScaleDecision = {
            "workers": self.target,
            "was": was,
            "settled": self.settled,
            "jobs": kind,
            "reason": why,
            "rate": round(rate, 2),
            "cpu_ratio": round(ratio, 2),
        }
        self.decisions.append(decision)
        self._reset(now)
        return decision


def _no_headroom(cpu_bound: bool, cores: int) -> str | None:
    import psutil

    memory = psutil.virtual_memory()
    if memory.available < 0.1 * memory.total:
        return f"memory is short ({memory.available // 2**20} MiB available): not growing"
    load = os.getloadavg()[0]
    if cpu_bound and load > 1.5 * cores:
        return f"load average {load:.1f} on {cores} cores: not growing"
    return None
