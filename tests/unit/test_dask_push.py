"""A Dask task's outcomes sent ahead of its completion: they cross the scheduler as msgpack
(the form distributed's comms give every event), so what arrives must be exactly what the
worker had, and anything too big, carrying a git result, or not herd's is left to the
task's own result."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("distributed")

import distributed.protocol

from herd.engine.executor.base import JobResult
from herd.engine.executor.remote_job import PUSH_LIMIT, RemoteOutcome, push_message, pushed_outcomes


def result(key: str, **fields: object) -> JobResult:
    values: dict[str, object] = {
        "key": key,
        "exit_code": 3,
        "signal": None,
        "timed_out": False,
        "out_of_memory": False,
        "started_at": 1796130000.125,
        "ended_at": 1796130000.5,
        "tail": "oops\n",
        "stdout": b"\x00out\xff",
        "worker": "dask/tcp://127.0.0.1:4242",
        "error": None,
        "cancelled": False,
    }
    values.update(fields)
    return JobResult(**values)  # type: ignore[arg-type]


def through_the_scheduler(message: object) -> object:
    protocol: Any = distributed.protocol  # partly annotated
    return protocol.loads(protocol.dumps({"op": "event", "event": (0.0, message)}))["event"][1]


def test_outcomes_arrive_as_they_left() -> None:
    outcomes = [
        RemoteOutcome(result("a"), None, None, b"the log"),
        RemoteOutcome(result("b", exit_code=None, signal=9, stdout=None, error="killed"), None, None, None),
    ]
    message = push_message("herd-a+1-0123", outcomes)
    assert message is not None
    assert pushed_outcomes(through_the_scheduler(message)) == ("herd-a+1-0123", outcomes)


def test_big_outcomes_and_git_results_are_not_pushed() -> None:
    big = RemoteOutcome(result("a", stdout=b"x" * PUSH_LIMIT), None, None, None)
    assert push_message("k", [big]) is None
    git = RemoteOutcome(result("a"), "0" * 40, None, None)
    assert push_message("k", [git]) is None
    # Many small ones add up.
    small = RemoteOutcome(result("a", stdout=b"x" * (PUSH_LIMIT // 4)), None, None, None)
    assert push_message("k", [small]) is not None
    assert push_message("k", [small] * 4) is None


@pytest.mark.parametrize(
    "event",
    [
        "text",
        {"action": "update-graph", "status": "OK"},  # what the scheduler itself logs there
        {"herd-task": 7, "outcomes": []},
        {"herd-task": "k", "outcomes": [{"key": "a"}]},  # fields missing
        {"herd-task": "k", "outcomes": [{**vars(result("a")), "log": None, "extra": 1}]},
        {"herd-task": "k"},
    ],
)
def test_any_other_event_is_not_taken_for_outcomes(event: object) -> None:
    assert pushed_outcomes(event) is None
