"""The journal's batched writes (landing's picks, the landed tasks) record what one write
per step or task recorded: real SQLite store, the events file read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herd.engine.journal import Journal, TaskState
from herd.queue.core import init as queue_init


def _journal(tmp_path: Path) -> Journal:
    journal = Journal.create(queue_init(tmp_path, "j"), "run", {})
    journal.add_tasks([(t, n, 0, "", TaskState.SUCCEEDED.value, None) for n, t in enumerate("abc")])
    return journal


def test_step_batch_journals_every_step_before_and_after(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    with journal.step("fetch"):
        pass
    details = [{"task": t, "commit": f"{n}" * 40} for n, t in enumerate("abc")]
    with journal.step_batch("pick", details) as steps:
        # Begun, all of them, before the work runs: a crash here leaves them on record.
        assert [(s["name"], s["state"]) for s in journal.steps()] == [("fetch", "done")] + [
            ("pick", "begun")
        ] * 3
        for step in steps:
            step["ok"] = True
    rows = journal.steps()
    assert [(r["seq"], r["name"], r["state"]) for r in rows] == [
        (0, "fetch", "done"),
        (1, "pick", "done"),
        (2, "pick", "done"),
        (3, "pick", "done"),
    ]
    assert [r["detail"] for r in rows[1:]] == [{**d, "ok": True} for d in details]
    events = [json.loads(line) for line in (journal.run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["task"] for e in events if e.get("step") == "pick"] == ["a", "b", "c"]
    with journal.step_batch("pick", []) as none:
        assert none == []
    assert len(journal.steps()) == 4


def test_step_batch_marks_every_step_failed_on_an_error(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    with pytest.raises(RuntimeError), journal.step_batch("pick", [{"task": "a"}, {"task": "b"}]):
        raise RuntimeError("git died")
    assert [(r["state"], r["detail"]) for r in journal.steps()] == [
        ("failed", {"task": "a"}),
        ("failed", {"task": "b"}),
    ]


def test_set_tasks_is_set_task_of_each(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.set_tasks({t: {"state": TaskState.LANDED.value, "landed_sha": t * 40} for t in "ab"})
    rows = {r["task_id"]: r for r in journal.tasks()}
    assert [(rows[t]["state"], rows[t]["landed_sha"]) for t in "abc"] == [
        ("landed", "a" * 40),
        ("landed", "b" * 40),
        ("succeeded", None),
    ]
