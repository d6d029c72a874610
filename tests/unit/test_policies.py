"""The attempt policies every engine applies: retries, limits, budget, --halt."""

from __future__ import annotations

import pytest

from herd.engine.executor.base import JobResult, JobSpec
from herd.engine.policies import (
    Attempt,
    Budget,
    Halt,
    MemoryLimit,
    Policies,
    Retries,
    TimeLimit,
    judge,
)
from herd.engine.states import Outcome
from herd.errors import BadInput


def _failed(tries: int, cost: float | None = None) -> Attempt:
    return Attempt("t1", tries, tries, ok=False, outcome=Outcome.FAILED, exit_code=3, cost=cost)


def _result(**fields: object) -> JobResult:
    base: dict[str, object] = dict(
        key="k",
        exit_code=0,
        signal=None,
        timed_out=False,
        out_of_memory=False,
        started_at=0.0,
        ended_at=1.0,
        tail="",
        stdout=None,
        worker="local/w1",
    )
    base.update(fields)
    return JobResult(**base)  # type: ignore[arg-type]


def test_retries_count_attempts_of_this_engine_run() -> None:
    policies = Policies([Retries(1)])
    assert policies.retry(_failed(1))
    assert not policies.retry(_failed(2))
    assert not Policies([Retries(0)]).retry(_failed(1))
    ok = Attempt("t1", 1, 1, ok=True, outcome=Outcome.OK)
    assert not policies.retry(ok)


def test_no_policy_with_an_opinion_means_no_retry() -> None:
    assert not Policies([TimeLimit(5)]).retry(_failed(1))


def test_negative_retries_are_refused() -> None:
    with pytest.raises(BadInput, match="--retries must be 0 or more"):
        Retries(-1)


def test_limits_fill_in_the_job_without_overriding_its_own() -> None:
    policies = Policies([TimeLimit(30), MemoryLimit(2**30)])
    job = policies.prepare(JobSpec("k", ("true",)))
    assert job.timeout == 30 and job.max_memory == 2**30
    own = policies.prepare(JobSpec("k", ("true",), timeout=5))
    assert own.timeout == 5
    assert Policies([TimeLimit(None)]).prepare(JobSpec("k", ("true",))).timeout is None


def test_budget_stops_new_starts_once_spent() -> None:
    budget = Budget(1.0)
    policies = Policies([Retries(1), budget])
    policies.ended(_failed(1, cost=0.6))
    assert policies.stop() is None
    policies.ended(_failed(1, cost=0.5))
    stop = policies.stop()
    assert stop is not None and "budget" in stop.reason and not stop.kill
    assert budget.spent == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("text", "when", "why", "count", "percent"),
    [
        ("now,fail=1", "now", "fail", 1, False),
        ("soon,fail=3", "soon", "fail", 3, False),
        ("soon,fail=20%", "soon", "fail", 20, True),
        ("now,success=2", "now", "success", 2, False),
        ("soon,done=50%", "soon", "done", 50, True),
        ("fail=1", "now", "fail", 1, False),
        ("1", "soon", "fail", 1, False),
        ("2", "now", "fail", 1, False),
        ("-1", "soon", "success", 1, False),
        ("-2", "now", "success", 1, False),
        ("10%", "soon", "fail", 10, True),
    ],
)
def test_halt_reads_gnu_parallels_forms(text: str, when: str, why: str, count: float, percent: bool) -> None:
    halt = Halt.parse(text)
    assert halt is not None
    assert (halt.when, halt.why, halt.count, halt.percent) == (when, why, count, percent)


def test_halt_never_and_nothing_mean_no_policy() -> None:
    assert Halt.parse(None) is None and Halt.parse("never") is None and Halt.parse("0") is None


@pytest.mark.parametrize(
    "text", ["sometimes,fail=1", "now,fail=0", "now,fail=150%", "now", "now,crash=1", "fail=x"]
)
def test_halt_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(BadInput, match="--halt"):
        Halt.parse(text)


def test_halt_now_fail_1_stops_at_the_first_failure_with_its_exit_code() -> None:
    halt = Halt.parse("now,fail=1")
    assert halt is not None
    policies = Policies([Retries(0), halt])
    policies.finished(True, 0)
    assert policies.stop() is None
    policies.finished(False, 4)
    stop = policies.stop()
    assert stop is not None and stop.kill and stop.exit_code == 4
    policies.finished(False, 9)  # what ends after the halt does not change its verdict
    assert policies.stop() == stop


def test_halt_soon_fail_n_exits_with_the_number_failed() -> None:
    halt = Halt.parse("soon,fail=2")
    assert halt is not None
    halt.finished(False, 1)
    assert halt.stop() is None
    halt.finished(False, 7)
    stop = halt.stop()
    assert stop is not None and not stop.kill and stop.exit_code == 2


def test_halt_percentages_are_of_all_units() -> None:
    halt = Halt.parse("soon,fail=30%")
    assert halt is not None
    halt.total = 10
    halt.finished(False, 1)
    halt.finished(False, 1)
    assert halt.stop() is None  # 20 % of 10
    halt.finished(True, 0)
    halt.finished(False, 1)
    stop = halt.stop()
    assert stop is not None and stop.exit_code == 30
    thirds = Halt.parse("soon,fail=30%")
    assert thirds is not None
    thirds.total = 6
    thirds.finished(False, 1)
    thirds.finished(False, 1)
    stop = thirds.stop()
    assert stop is not None and stop.exit_code == 34  # 33.3 % rounded up, as GNU parallel


def test_halt_on_success_exits_0() -> None:
    halt = Halt.parse("now,success=1")
    assert halt is not None
    halt.finished(True, 0)
    stop = halt.stop()
    assert stop is not None and stop.kill and stop.exit_code == 0


@pytest.mark.parametrize(
    ("fields", "outcome", "reason"),
    [
        ({}, "ok", "exit 0"),
        ({"exit_code": 3}, "failed", "exited with code 3"),
        ({"exit_code": None, "signal": 9}, "failed", "killed by signal 9"),
        ({"exit_code": None, "timed_out": True}, "timeout", "timed out after 2s (killed)"),
        ({"exit_code": None, "out_of_memory": True}, "memory", "used more than 1 KiB (killed)"),
        ({"exit_code": 127, "error": "command not found: nope"}, "crash", "command not found: nope"),
        ({"exit_code": None, "cancelled": True}, "cancelled", "cancelled"),
    ],
)
def test_judge_is_the_one_definition_of_a_failure(
    fields: dict[str, object], outcome: str, reason: str
) -> None:
    assert judge(_result(**fields), timeout=2, max_memory=1024) == (outcome, reason)
