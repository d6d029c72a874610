"""Typed events: one serialisation for events.jsonl and `--json`, read back into the same
class; the JSON keys are the documented ones."""

from __future__ import annotations

import json

import pytest

from herd.engine import events as ev
from herd.engine.states import Outcome, RunState, TaskState

SAMPLES: list[ev.Event] = [
    ev.RunStart(tasks=3, waves=2, workers=2, base="abc123"),
    ev.RunResume(killed_workers=1, lost_attempts=["t-1#1"]),
    ev.LandStart(tasks=2),
    ev.WaveStart(wave=1, tasks=["t-1", "t-2"], base="abc123"),
    ev.AttemptStart(task="t-1", attempt=1, worker="w1", title="Fix it", log="/x/log-1"),
    ev.AttemptEnd(
        task="t-1",
        attempt=1,
        outcome=Outcome.TIMEOUT,
        exit_code=None,
        reason="timed out after 3s (killed)",
        duration=3.01,
        worker="w1",
        host="local/w1",
    ),
    ev.TaskEnd(task="t-1", state=TaskState.SUCCEEDED, commit="f00"),
    ev.TaskEnd(task="t-2", state=TaskState.FAILED, reason="exited with code 3"),
    ev.Phase(phase="testing", detail="2 commits"),
    ev.Message(text="warning: no criteria"),
    ev.Step(step="push", detail={"remote": "origin", "branch": "main", "attempt": 1}),
    ev.TestRun(purpose="stack", exit_code=1, commits=2, duration=0.5),
    ev.RunEnd(state=RunState.PARTIAL, exit_code=1),
    ev.MapStart(items=10, invocations=5, batch_size=2, workers="auto (2..8)", batch_reason="--batch-size"),
    ev.MapResume(invocations=2, items=4),
    ev.Scale(workers=2, reason="starting small, measuring"),
    ev.Scale(
        workers=4,
        was=2,
        settled=False,
        jobs="waiting (jobs use 3% CPU of their wall time)",
        reason="trying 4",
        rate=10.5,
        cpu_ratio=0.03,
    ),
    ev.Progress(
        total=5,
        done=2,
        failed=0,
        running=1,
        jobs=[{"seq": 3, "items": ["a", "b"], "attempt": 1, "started": 12.5}],
    ),
    ev.ItemFailed(seq=2, items=["b"], attempts=2, reason="exit 7", tail="bad\n", log="err.log"),
    ev.MapEnd(
        exit_code=1,
        state=RunState.PARTIAL,
        counts={"succeeded": 2, "failed": 1},
        failed={"2": "exit 7"},
        elapsed=1.25,
        stderr_log="err.log",
        scaling=[
            {
                "workers": 4,
                "was": 2,
                "settled": True,
                "jobs": "waiting",
                "reason": "capped",
                "rate": 1.0,
                "cpu_ratio": 0.1,
            }
        ],
    ),
    ev.PipelineStart(items=3, stages="fetch(2) -> parse(1)"),
    ev.StageFailed(stage="parse", items=["i3"], attempts=2, reason="exit 1", tail=""),
    ev.PipelineEnd(
        exit_code=0,
        state=RunState.DONE,
        counts={"succeeded": 3},
        failed={},
        elapsed=0.5,
        stages={"fetch": {"invocations": 3, "succeeded": 3, "failed": 0}},
    ),
]


def test_every_kind_has_a_sample_and_a_unique_name() -> None:
    assert {type(e).kind for e in SAMPLES} == set(ev.kinds())
    assert len(ev.kinds()) == 21


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).kind)
def test_round_trip_through_a_jsonl_line(event: ev.Event) -> None:
    stamped = type(event).from_json({**event.to_json(), "ts": 17.5, "run": "r-1"})
    line = json.dumps(stamped.to_json())
    back = ev.parse(line)
    assert back == stamped and type(back) is type(event)
    assert back.ts == 17.5 and back.run == "r-1"
    assert list(json.loads(line))[:3] == ["ts", "run", "event"]


def test_the_json_keys_are_the_documented_ones() -> None:
    """Optional fields are left out when unset (as before the events were typed); enums
    are written as their plain strings; a step's detail sits beside `step`."""
    ok = ev.TaskEnd(task="t", state=TaskState.LANDED, commit="abc").to_json()
    assert ok == {"ts": 0.0, "run": "", "event": "task_end", "task": "t", "state": "landed", "commit": "abc"}
    assert (
        json.dumps(
            ev.AttemptEnd(
                task="t", attempt=1, outcome=Outcome.OK, exit_code=0, reason="", duration=1, worker="w1"
            ).to_json()
        ).count('"outcome": "ok"')
        == 1
    )
    step = ev.Step(step="pick", detail={"task": "t", "commit": "abc"}).to_json()
    assert step == {"ts": 0.0, "run": "", "event": "step", "step": "pick", "task": "t", "commit": "abc"}
    assert set(ev.Scale(workers=2, reason="r").to_json()) == {"ts", "run", "event", "workers", "reason"}


def test_strings_from_the_journal_become_enums() -> None:
    event = ev.Event.from_json(
        {
            "event": "attempt_end",
            "ts": 1.0,
            "run": "r",
            "task": "t",
            "attempt": 1,
            "outcome": "memory",
            "exit_code": None,
            "reason": "used more than 1 MiB",
            "duration": 2.0,
            "worker": "w1",
            "host": "local/w1",
        }
    )
    assert isinstance(event, ev.AttemptEnd) and event.outcome is Outcome.MEMORY
    assert f"{event.outcome}" == "memory"  # StrEnum: the same string as before


def test_what_cannot_be_read_is_none_not_an_error() -> None:
    assert ev.parse(b'{"ts": 1, "run": "r", "event": "task_e') is None  # cut by a crash
    assert ev.parse('{"ts": 1, "run": "r", "event": "from_a_newer_herd"}') is None
    assert ev.parse('{"ts": 1, "run": "r", "event": "task_end"}') is None  # fields missing
    assert ev.parse("[1, 2]") is None
    with pytest.raises(ValueError, match="unknown event"):
        ev.Event.from_json({"event": "nope"})
    with pytest.raises(ValueError):
        ev.Event.from_json({"event": "task_end", "task": "t", "state": "no-such-state"})
