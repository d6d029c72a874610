"""Crash safety of `herd run`: kill -9, failpoints, Ctrl-C, then `herd resume`.

Real signals to the real CLI process; leftover processes are found by the
HERD_RUN_ID in their environment (psutil), the way herd itself finds them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from _run_helpers import Project, kill_tree, run_processes, wait_for


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=8)


def _events(p: Project) -> list[dict[str, object]]:
    runs = p.repo / ".herd" / "runs"
    files = list(runs.glob("*/events.jsonl")) if runs.is_dir() else []
    if not files:
        return []
    return [json.loads(line) for line in files[0].read_text().splitlines() if line]


def _succeeded(p: Project) -> set[str]:
    return {str(e["task"]) for e in _events(p) if e["event"] == "task_end" and e["state"] == "succeeded"}


def _ok_runs(p: Project) -> Counter[str]:
    return Counter(c["task"] for c in p.calls() if c.get("result") == "ok")


def _assert_all_on_branches(p: Project, run_id: str, ids: list[str]) -> None:
    for task_id in ids:
        shas = p.git("rev-list", f"main..herd/{run_id}/{task_id}").split()
        assert len(shas) == 1, f"{task_id}: {shas}"
        trailers = p.git("log", "-1", "--format=%(trailers:only,unfold)", shas[0])
        assert f"Herd-Task: {task_id}" in trailers


def _is_grandchild(proc: psutil.Process) -> bool:
    """The fake agent's "child": `python -c "import time; time.sleep(600)"`."""
    try:
        return "time.sleep(600)" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def test_kill_9_mid_run_then_resume_finishes_every_task_once(project: Project) -> None:
    p = project
    ids = [
        p.create(f"T{n}", "sleep: 1.5", "child", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"])
        for n in range(6)
    ]
    proc = p.popen("run", *ids, "--cmd", str(p.agent), "-j", "2", "--no-integrate")
    try:
        # Two tasks done, and the grandchild of a running worker started. Killed earlier,
        # nothing may survive: an attempt is journaled as started before its worker runs,
        # and a worker that has not printed its first line yet dies of the closed pipe.
        wait_for(
            lambda: (
                len(_succeeded(p)) >= 2
                and sum(1 for e in _events(p) if e["event"] == "attempt_start") >= 4
                and any(_is_grandchild(proc) for proc in run_processes(p.latest_run()))
            ),
            timeout=60,
        )
        done_before = _succeeded(p)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        kill_tree(proc)
    run_id = p.latest_run()
    # Each worker started a grandchild that sleeps for ten minutes ("child"): nobody is left
    # to kill it until the resume does.
    survivors = run_processes(run_id)
    assert survivors, "the dead herd's workers (own sessions) are expected to be alive here"
    # The journal still says running; what herd shows is the truth: its owner is gone.
    status = json.loads(p.herd("status", "--json").stdout)
    assert status["state"] == "interrupted" and status["resume"] == f"herd resume {run_id}"
    shown = p.herd("status").stdout
    assert "interrupted" in shown and f"`herd resume {run_id}` continues it" in shown
    assert "attempt" not in shown, "a dead run's workers are not shown as running"
    listed = p.herd("runs").stdout.splitlines()[0]
    assert "interrupted" in listed and f"herd resume {run_id}" in listed, listed
    resumed = p.herd("resume", run_id, timeout=120)
    assert "run_resume" in [e["event"] for e in _events(p)]
    resume_event = next(e for e in _events(p) if e["event"] == "run_resume")
    assert int(str(resume_event["killed_workers"])) >= 1
    assert run_processes(run_id) == [], "leftover workers of the dead run must be killed"
    assert all(not s.is_running() or s.status() == "zombie" for s in survivors)
    _assert_all_on_branches(p, run_id, ids)
    ok = _ok_runs(p)
    for task_id in done_before:
        assert ok[task_id] == 1, f"{task_id} had succeeded before the kill and ran again"
    assert set(ok) == set(ids)
    assert f"{len(ids)} succeeded" in resumed.stdout
    assert json.loads(p.herd("status", "--json").stdout)["state"] == "done"
    # Attempts the dead herd never judged were closed as lost, not left "running" (which
    # `herd status` would show as live workers), and did not use up the tasks' retries.
    with sqlite3.connect(p.repo / ".herd" / "herd.db") as db:
        open_attempts = db.execute(
            "SELECT count(*) FROM attempts WHERE run_id = ? AND ended_at IS NULL", (run_id,)
        ).fetchone()[0]
        outcomes = Counter(
            row[0] for row in db.execute("SELECT outcome FROM attempts WHERE run_id = ?", (run_id,))
        )
    assert open_attempts == 0
    assert outcomes == {"ok": len(ids)}, outcomes
    lost = resume_event["lost_attempts"]
    assert isinstance(lost, list) and lost, resume_event
    # The dead run's claims were taken over, not left dangling.
    for task_id in ids:
        assert p.show(task_id)["status"] == "in_progress"


@pytest.mark.parametrize("point", ["after-claim", "after-worker"])
def test_failpoint_exits_99_and_resume_completes(project: Project, point: str) -> None:
    p = project
    ids = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(3)]
    crashed = subprocess.run(
        [*p.popen_argv("run", *ids, "--cmd", str(p.agent), "-j", "1", "--no-integrate")],
        cwd=p.repo,
        env={**p.env, "HERD_FAILPOINT": point},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 99, crashed.stderr
    run_id = p.latest_run()
    done_before = _succeeded(p)
    assert len(done_before) == (0 if point == "after-claim" else 1)
    if point == "after-claim":
        assert p.calls() == []
        claimed = [t for t in ids if p.show(t)["status"] == "in_progress"]
        assert len(claimed) == 1
        assert p.show(claimed[0])["assignee"].startswith(f"herd:{run_id}/w1@")
    p.herd("resume", run_id)
    _assert_all_on_branches(p, run_id, ids)
    ok = _ok_runs(p)
    assert set(ok) == set(ids)
    for task_id in done_before:
        assert ok[task_id] == 1, f"{task_id} had succeeded before the crash and ran again"


def test_ctrl_c_stops_every_worker_exits_130_and_resume_continues(project: Project) -> None:
    p = project
    ids = [
        p.create(f"T{n}", "child", "sleep: 3", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(4)
    ]
    proc = p.popen("run", *ids, "--cmd", str(p.agent), "-j", "2", "--no-integrate")
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        wait_for(lambda: len(run_processes(run_id)) >= 4, timeout=30)  # 2 workers + 2 children
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        kill_tree(proc)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 10
    assert f"herd resume {run_id}" in err
    assert "Traceback" not in err
    assert run_processes(run_id) == [], "a worker or its child survived Ctrl-C"
    for task_id in ids:
        shown = p.show(task_id)
        assert shown["status"] == "open" and not shown.get("assignee")
    assert json.loads(p.herd("status", run_id, "--json").stdout)["state"] == "interrupted"
    p.herd("resume", run_id)
    _assert_all_on_branches(p, run_id, ids)
    assert set(_ok_runs(p)) == set(ids)
    assert run_processes(run_id) == []
    # An interrupted attempt does not use up the task's retry.
    attempts = Counter(
        e["task"] for e in _events(p) if e["event"] == "attempt_end" and e["outcome"] != "interrupted"
    )
    assert all(n == 1 for n in attempts.values()), attempts


def test_sigterm_is_handled_like_ctrl_c(project: Project) -> None:
    p = project
    task = p.create("Hangs", "hang", scope=["src/m0.py"])
    proc = p.popen("run", task, "--cmd", str(p.agent), "--no-integrate")
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        wait_for(lambda: len(run_processes(run_id)) >= 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        kill_tree(proc)
    assert proc.returncode == 130
    assert run_processes(run_id) == []


def test_resume_refuses_a_run_that_is_still_running(project: Project) -> None:
    p = project
    task = p.create("Slow", "sleep: 3", "edit: src/m0.py", scope=["src/m0.py"])
    proc = p.popen("run", task, "--cmd", str(p.agent), "--no-integrate")
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        refused = p.herd("resume", run_id, check=4)
        assert "still running" in refused.stderr
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    p.herd("resume", run_id, check=4)  # finished: nothing to resume
