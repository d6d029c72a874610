"""A run has exactly one owner, and what herd says about a run is true after a crash.

Real processes: the herd that owns a run is killed with SIGKILL, resumes race as
two real CLI processes, and the store is the real SQLite file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from _run_helpers import Project, kill_tree, run_processes, wait_for


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=6)


def _ok_runs(p: Project) -> Counter[str]:
    return Counter(c["task"] for c in p.calls() if c.get("result") == "ok")


def _kill_9_mid_run(p: Project, *args: str) -> str:
    """Start `herd run ARGS`, SIGKILL it once a worker has started; the run id."""
    proc = p.popen("run", *args, "--cmd", str(p.agent))
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        events = p.repo / ".herd" / "runs" / run_id / "events.jsonl"
        wait_for(lambda: events.exists() and "attempt_start" in events.read_text(), timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        kill_tree(proc)
    return str(run_id)


def test_two_resumes_at_once_exactly_one_proceeds(project: Project) -> None:
    p = project
    ids = [p.create(f"T{n}", "sleep: 2", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(4)]
    run_id = _kill_9_mid_run(p, *ids, "-j", "2", "--no-integrate")
    killed_at = time.time()
    first, second = p.popen("resume", run_id), p.popen("resume", run_id)
    try:
        outs = {proc.pid: (proc, *proc.communicate(timeout=120)) for proc in (first, second)}
    finally:
        kill_tree(first)
        kill_tree(second)
    codes = sorted(proc.returncode for proc, _out, _err in outs.values())
    assert codes == [0, 4], {pid: (proc.returncode, err) for pid, (proc, _o, err) in outs.items()}
    winner = next(pid for pid, (proc, _o, _e) in outs.items() if proc.returncode == 0)
    loser_err = next(err for proc, _o, err in outs.values() if proc.returncode == 4)
    assert f"run {run_id} is being resumed by pid {winner}" in loser_err, loser_err
    assert "Traceback" not in loser_err
    # Workers started by the resumes (the dead run's own may have finished on their own).
    started = Counter(c["task"] for c in p.calls() if c["start"] > killed_at)
    assert set(started) == set(ids) and all(n == 1 for n in started.values()), started


def test_a_resumed_run_takes_over_the_dead_owners_claims(project: Project) -> None:
    """Actor names carry the owning process's token: after a takeover, the dead owner's
    actor no longer holds anything."""
    p = project
    task = p.create("T", "sleep: 1", "edit: src/m0.py", scope=["src/m0.py"])
    run_id = _kill_9_mid_run(p, task, "--no-integrate")
    dead_actor = p.show(task)["assignee"]
    assert dead_actor.startswith(f"herd:{run_id}/w1@")
    p.herd("resume", run_id)
    new_actor = p.show(task)["assignee"]
    assert new_actor.startswith(f"herd:{run_id}/w1@") and new_actor != dead_actor
    taken = p.herd("update", task, "--claim", "--actor", dead_actor, check=None)
    assert taken.returncode == 4, "the dead owner's actor must not hold the claim any more"


def test_resume_counts_a_task_that_failed_before_the_crash(project: Project) -> None:
    p = project
    bad = p.create("Bad", "fail-attempts: 9", scope=["src/m0.py"])
    good = [p.create(f"G{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in (1, 2)]
    crashed = subprocess.run(
        p.popen_argv("run", bad, *good, "--cmd", str(p.agent), "-j", "1", "--retries", "0"),
        cwd=p.repo,
        env={**p.env, "HERD_FAILPOINT": "after-worker"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 99, crashed.stderr
    run_id = p.latest_run()
    resumed = p.herd("resume", run_id, check=None)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "1 failed" in resumed.stdout and f"failed  {bad}" in resumed.stdout, resumed.stdout
    report = json.loads(p.herd("runs", "--json").stdout)[0]
    assert report["state"] == "partial" and report["exit_code"] == 1


def test_resume_counts_a_task_ejected_before_the_crash(project: Project) -> None:
    p = project
    fine = p.create("Fine", "edit: src/m0.py", scope=["src/m0.py"])
    breaks = p.create("Breaks", "edit: src/m1.py", scope=["src/m1.py"])
    test_cmd = (
        f'{sys.executable} -c "import pathlib, sys; '
        "sys.exit('edited' in pathlib.Path('src/m1.py').read_text())\""
    )
    crashed = subprocess.run(
        p.popen_argv("run", fine, breaks, "--cmd", str(p.agent), "--test-cmd", test_cmd),
        cwd=p.repo,
        env={**p.env, "HERD_FAILPOINT": "before-close"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 99, crashed.stderr
    resumed = p.herd("resume", p.latest_run(), check=None)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "1 landed, 1 ejected" in resumed.stdout, resumed.stdout
    assert f"ejected {breaks}" in resumed.stdout


def test_status_watch_ends_when_the_owner_dies(project: Project) -> None:
    p = project
    task = p.create("Hangs", "hang", scope=["src/m0.py"])
    proc = p.popen("run", task, "--cmd", str(p.agent), "--no-integrate")
    watch = None
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        watch = p.popen("status", run_id, "--watch", "--interval", "0.2")
        time.sleep(1)
        assert watch.poll() is None, "the run is alive: --watch keeps watching"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out, _err = watch.communicate(timeout=20)
    finally:
        kill_tree(proc)
        if watch is not None:
            kill_tree(watch)
    assert watch.returncode == 0
    assert "interrupted" in out and f"herd resume {run_id}" in out, out
    for leftover in run_processes(run_id):  # the dead run's orphaned worker
        leftover.kill()


def test_start_time_from_proc_agrees_with_psutil_and_sees_zombies(tmp_path: Path) -> None:
    """An owner's start time is read from /proc (psutil's import cost every run ~10 ms);
    owners written by either way must compare equal, and a zombie is no owner."""
    import os

    import psutil

    from herd.run.owner import _START_SLACK, _psutil_start_time, _start_time

    for pid in (os.getpid(), os.getppid(), 1):
        got, fallback = _start_time(pid), _psutil_start_time(pid)
        assert got is not None
        assert fallback is not None
        assert abs(got - fallback) <= _START_SLACK / 100
    # A parenthesis and a space in the process name do not shift the fields.
    import shutil

    odd_name = tmp_path / "x) 1 (Z"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd_name)
    odd = subprocess.Popen([str(odd_name), "30"])
    zombie = subprocess.Popen(["true"])
    try:
        wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
        assert _start_time(zombie.pid) is None
        assert _psutil_start_time(zombie.pid) is None
        odd_start = _start_time(odd.pid)
        assert odd_start is not None
        assert abs(odd_start - psutil.Process(odd.pid).create_time()) <= _START_SLACK / 100
    finally:
        odd.kill()
        odd.wait()
        zombie.wait()
    assert _start_time(zombie.pid) is None  # reaped: no such process
    assert _psutil_start_time(zombie.pid) is None
