"""herd as a library: `herd.run_batch`, `herd.map` and `herd.Queue`, called in-process on a
real repository, a real store and real worker processes, returning typed outcomes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _run_helpers import Project

import herd
from herd.errors import BadInput


def test_map_runs_items_and_returns_a_typed_outcome(tmp_path: Path) -> None:
    outcome = herd.map(
        ["sh", "-c", 'echo "got $1"; test "$1" != bad', "_", "{}"],
        ["a", "bad", "c"],
        jobs=2,
        retries=0,
        keep_order=True,
        db=tmp_path / "herd.db",
        cwd=tmp_path,
    )
    assert isinstance(outcome, herd.MapOutcome)
    assert outcome.exit_code == 1 and outcome.state.value == "partial"
    assert outcome.counts == {"succeeded": 2, "failed": 1}
    assert outcome.stdout == b"got a\ngot bad\ngot c\n"
    assert list(outcome.failed.values()) == ["exited with code 1"]


def test_map_halts_like_the_cli(tmp_path: Path) -> None:
    outcome = herd.map(
        ["sh", "-c", 'echo "$1"; exit $(( $1 == 2 ? 7 : 0 ))', "_", "{}"],
        ["1", "2", "3", "4"],
        jobs=1,
        retries=0,
        halt="now,fail=1",
        db=tmp_path / "herd.db",
        cwd=tmp_path,
    )
    assert outcome.exit_code == 7 and outcome.halted and outcome.stdout == b"1\n2\n"


def test_map_refuses_an_empty_command(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        herd.map([], ["a"], db=tmp_path / "herd.db")


def test_queue_and_run_batch_land_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = Project(tmp_path, files=2)
    monkeypatch.setenv("FAKE_LOG", str(p.log))
    queue = herd.Queue(herd.Store(p.repo / ".herd" / "herd.db"))
    ids = [
        str(
            queue.create(
                f"Edit m{n}", description=f"edit: src/m{n}.py", scope=[f"src/m{n}.py"], criteria=["it works"]
            )["id"]
        )
        for n in range(2)
    ]
    assert {r["id"] for r in queue.ready()} >= set(ids)
    outcome = herd.run_batch(ids, cmd=[sys.executable, str(p.agent)], repo=p.repo, jobs=2)
    assert isinstance(outcome, herd.RunOutcome)
    assert outcome.exit_code == 0, outcome
    assert set(outcome.work.succeeded) == set(ids)
    assert {r["status"] for r in queue.show(ids)} == {"closed"}


def test_run_batch_needs_a_command_or_an_agent(tmp_path: Path) -> None:
    with pytest.raises(herd.HerdError, match=r"cmd=.*or agent="):
        herd.run_batch(["x"], repo=tmp_path)
