"""Attempt policies: the rules around an attempt, written once for run, map and pipeline.

dramatiq's middleware is the model: a policy is a small object with hooks, and
every engine calls the hooks of its `Policies` at the same points of an attempt:

    may a unit start now?      delay(now) -> seconds to wait; stop() -> Stop or None
    its job                    prepare(job) -> the job with the policy's limits
    an attempt ended           ended(attempt)       (costs, durations, counts)
    run it again?              retry(attempt) -> True / False / None (no opinion)
    a unit ended for good      finished(ok, exit_code)

A unit is what the engine schedules: a task (`herd run`), a batch of items
(`herd map`) or a stage invocation (`herd pipeline`). The engine owns its loop,
its journal and its git; the policies own the judgement. A new rule (a budget,
`--halt`) is one class here and reaches every engine that is given it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.states import Outcome
from herd.errors import BadInput
from herd.structs import replace, struct
from herd.units import format_size


def judge(
    result: JobResult, *, timeout: float | None = None, max_memory: int | None = None
) -> tuple[Outcome, str]:
    """What counts as a failure, for every engine: (outcome, reason) of a finished job.
    `ok` only for exit 0 within its limits; the engines add their own checks on top
    (a worker's commit, its scope)."""
    if result.cancelled:
        return Outcome.CANCELLED, result.error or "cancelled"
    if result.timed_out:
        limit = f" after {timeout:g}s" if timeout else ""
        return Outcome.TIMEOUT, f"timed out{limit} (killed)"
    if result.out_of_memory:
        limit = format_size(max_memory) if max_memory else "its memory limit"
        return Outcome.MEMORY, f"used more than {limit} (killed)"
    if result.error:
        return Outcome.CRASH, result.error
    if result.exit_code != 0:
        if result.signal:
            return Outcome.FAILED, f"killed by signal {result.signal}"
        return Outcome.FAILED, f"exited with code {result.exit_code}"
    return Outcome.OK, "exit 0"


@struct(frozen=True)
class Attempt:
    """One finished attempt, as the policies see it."""

    unit: str
    number: int
    """The attempt's number for the unit (counting earlier runs of a resumed one)."""
    tries: int
    """Attempts the unit has made in this engine run (what retries are counted against)."""
    ok: bool
    outcome: Outcome
    exit_code: int | None = None
    duration: float = 0.0
    cost: float | None = None
    reason: str = ""

    @classmethod
    def of(
        cls,
        result: JobResult,
        unit: str,
        number: int,
        tries: int,
        *,
        timeout: float | None = None,
        max_memory: int | None = None,
        cost: float | None = None,
    ) -> Attempt:
        """The attempt a finished job was, judged by `judge` (every engine builds it here)."""
        outcome, reason = judge(result, timeout=timeout, max_memory=max_memory)
        return cls(
            unit,
            number,
            tries,
            ok=outcome == Outcome.OK,
            outcome=outcome,
            exit_code=result.exit_code,
            duration=result.duration,
            cost=cost,
            reason=reason,
        )


@struct(frozen=True)
class Stop:
    """Start no new unit: why, and whether running ones are killed (`--halt now`)."""

    reason: str
    kill: bool = False
    exit_code: int | None = None
    """The exit code the engine ends with, when the policy decides it (GNU parallel's)."""


class Policy:
    """A rule around attempts; every hook defaults to "no opinion"."""

    def prepare(self, job: JobSpec) -> JobSpec:
        return job

    def delay(self, now: float) -> float:
        return 0.0

    def started(self, now: float) -> None:
        return None

    def ended(self, attempt: Attempt) -> None:
        return None

    def retry(self, attempt: Attempt) -> bool | None:
        return None

    def finished(self, ok: bool, exit_code: int | None) -> None:
        return None

    def stop(self) -> Stop | None:
        return None


class Retries(Policy):
    """A failed attempt runs again while the unit has retries left in this engine run."""

    def __init__(self, retries: int) -> None:
        if retries < 0:
            raise BadInput(f"--retries must be 0 or more, got {retries}")
        self.retries = retries

    def retry(self, attempt: Attempt) -> bool | None:
        return not attempt.ok and attempt.tries <= self.retries


class TimeLimit(Policy):
    """Every job is killed (group and all) after `seconds` of wall time."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def prepare(self, job: JobSpec) -> JobSpec:
        if self.seconds is None or job.timeout is not None:
            return job
        return replace(job, timeout=self.seconds)


class MemoryLimit(Policy):
    """Every job is killed when its process tree's RSS passes `limit` bytes."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit

    def prepare(self, job: JobSpec) -> JobSpec:
        if self.limit is None or job.max_memory is not None:
            return job
        return replace(job, max_memory=self.limit)


class Budget(Policy):
    """Start no new unit once the attempts' reported costs reach `usd`."""

    def __init__(self, usd: float | None) -> None:
        self.usd = usd
        self.spent = 0.0

    def ended(self, attempt: Attempt) -> None:
        if attempt.cost is not None:
            self.spent += attempt.cost

    def stop(self) -> Stop | None:
        if self.usd is not None and self.spent >= self.usd:
            return Stop("the run's budget was reached")
        return None


_HALT = re.compile(r"^(?:(now|soon),)?(fail|success|done)=(\d+(?:\.\d+)?)(%?)$")
_HALT_LEGACY = {
    "0": "never",
    "1": "soon,fail=1",
    "2": "now,fail=1",
    "-1": "soon,success=1",
    "-2": "now,success=1",
}


class Halt(Policy):
    """GNU parallel's `--halt when,why=N|P%`: stop the run when enough units have failed,
    succeeded or finished. `soon` starts nothing new and lets running units finish; `now`
    kills them too. Units count once, when they end for good (after their retries)."""

    def __init__(self, when: str, why: str, count: float, percent: bool, total: int | None = None) -> None:
        self.when, self.why, self.count, self.percent = when, why, count, percent
        self.total = total
        self.failed = self.succeeded = 0
        self.last_failure: int | None = None
        self._stop: Stop | None = None

    @classmethod
    def parse(cls, text: str | None, total: int | None = None) -> Halt | None:
        """`now,fail=1`, `soon,fail=20%`, `success=3` (`when` defaults to `now`; GNU
        parallel wants it said), `never`, or the old numeric forms (0, 1, 2, -1, -2, 1-99%).
        `total`: how many units the engine runs, what a percentage is of."""
        if text is None:
            return None
        value = text.strip()
        if re.fullmatch(r"\d{1,2}%", value):
            value = f"soon,fail={value}"
        value = _HALT_LEGACY.get(value, value)
        if value == "never":
            return None
        match = _HALT.match(value)
        if match is None:
            raise BadInput(
                f"--halt {text!r}: expected never, now|soon,fail|success|done=N or "
                "=P% (e.g. now,fail=1 or soon,fail=10%)"
            )
        when, why, number, percent = match.groups()
        count = float(number)
        if count <= 0 or (percent and count > 100):
            raise BadInput(f"--halt {text!r}: the count must be positive (a percentage ≤ 100)")
        return cls(when or "now", why, count, bool(percent), total)

    def finished(self, ok: bool, exit_code: int | None) -> None:
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
            self.last_failure = exit_code
        if self._stop is None and self._reached():
            self._stop = Stop(self._reason(), kill=self.when == "now", exit_code=self._exit_code())

    def stop(self) -> Stop | None:
        return self._stop

    def _counted(self) -> int:
        return {"fail": self.failed, "success": self.succeeded, "done": self.failed + self.succeeded}[
            self.why
        ]

    def _reached(self) -> bool:
        if not self.percent:
            return self._counted() >= self.count
        total = self.total or (self.failed + self.succeeded)
        return total > 0 and 100 * self._counted() / total >= self.count

    def _reason(self) -> str:
        what = {"fail": "failed", "success": "succeeded", "done": "finished"}[self.why]
        limit = f"{self.count:g}%" if self.percent else f"{self.count:g}"
        then = "running jobs killed" if self.when == "now" else "waiting for running jobs"
        return f"--halt {self.when},{self.why}={limit}: {self._counted()} {what}; {then}"

    def _exit_code(self) -> int:
        """GNU parallel's exit status: the failing job's status for fail=1, the number of
        failed jobs (at most 101), the percentage failed (rounded up) for P%; 0 when the
        halt was on success."""
        if self.why == "success":
            return 0
        if self.why == "fail" and not self.percent and self.count == 1:
            code = self.last_failure
            return code if code not in (None, 0) else 1
        if self.percent and self.failed:
            total = self.total or (self.failed + self.succeeded)
            return max(1, min(100, math.ceil(100 * self.failed / total)))
        return min(self.failed, 101)


class Policies:
    """The policies of one engine run, applied in order. Each hook calls only the policies
    that define it: an engine calls several hooks per job, and most policies have one."""

    def __init__(self, policies: Iterable[Policy | None]) -> None:
        self.items = [p for p in policies if p is not None]

        def having(hook: str) -> list[Policy]:
            return [p for p in self.items if getattr(type(p), hook) is not getattr(Policy, hook)]

        self._prepare, self._delay, self._started = having("prepare"), having("delay"), having("started")
        self._ended, self._retry, self._finished = having("ended"), having("retry"), having("finished")
        self._stop = having("stop")

    def find(self, kind: type[Policy]) -> Policy | None:
        return next((p for p in self.items if isinstance(p, kind)), None)

    def prepare(self, job: JobSpec) -> JobSpec:
        for policy in self._prepare:
            job = policy.prepare(job)
        return job

    def delay(self, now: float) -> float:
        if not self._delay:
            return 0.0
        return max(policy.delay(now) for policy in self._delay)

    def started(self, now: float) -> None:
        for policy in self._started:
            policy.started(now)

    def ended(self, attempt: Attempt) -> None:
        for policy in self._ended:
            policy.ended(attempt)

    def retry(self, attempt: Attempt) -> bool:
        """Run the unit again: some policy says yes and none says no."""
        votes = [v for v in (policy.retry(attempt) for policy in self._retry) if v is not None]
        return bool(votes) and all(votes)

    def finished(self, ok: bool, exit_code: int | None = None) -> None:
        for policy in self._finished:
            policy.finished(ok, exit_code)

    def stop(self) -> Stop | None:
        for policy in self._stop:
            stop = policy.stop()
            if stop is not None:
                return stop
        return None
