"""Landing's children run supervised like workers: a hung test suite is killed after
`--test-timeout` (group and all) and fails the landing with exit 5; SIGTERM during landing
stops the test, exits 130 with the state saved, and `herd resume` lands the run; fetch and
push give up after HERD_GIT_TIMEOUT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _run_helpers import Project, kill_tree, run_processes, wait_for

# Hangs (with a grandchild, as a real test runner would have) while the flag file exists,
# removing it first, so a second run passes; otherwise it passes at once.
HANGING_TEST = r"""
import os, subprocess, sys, time
flag = sys.argv[1]
if os.path.exists(flag):
    os.remove(flag)
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(flag + ".started", "w").write(str(os.getpid()))
    print("test suite: stuck", flush=True)
    time.sleep(600)
print("test suite: all green")
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=2)


def _test_cmd(p: Project) -> tuple[str, Path]:
    script = p.tmp / "hanging_test.py"
    script.write_text(HANGING_TEST)
    flag = p.tmp / "hang-once"
    flag.write_text("")
    return f"{sys.executable} {script} {flag}", flag


def _trailers(p: Project) -> list[str]:
    out = p.git("log", "--format=%(trailers:key=Herd-Task,valueonly)", "main")
    return [line for line in out.splitlines() if line.strip()]


def test_a_hung_test_times_out_fails_landing_and_leaves_no_process(project: Project) -> None:
    p = project
    task = p.create("edit", "edit: src/m0.py", scope=["src/m0.py"])
    command, _ = _test_cmd(p)
    before = p.git("rev-parse", "main")
    started = time.monotonic()
    proc = p.run(task, "--test-cmd", command, "--test-timeout", "3s", check=5, timeout=60)
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert elapsed < 20, out
    assert "test command timed out after 3s" in out, out
    assert p.git("rev-parse", "main") == before
    assert p.show(task)["status"] != "closed"
    assert run_processes(p.latest_run()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_during_landing_stops_the_test_and_resume_lands(project: Project, sig: int) -> None:
    p = project
    task = p.create("edit", "edit: src/m0.py", scope=["src/m0.py"])
    command, flag = _test_cmd(p)
    herd = p.popen("run", task, "--cmd", str(p.agent), "--test-cmd", command)
    try:
        wait_for(lambda: Path(str(flag) + ".started").exists(), timeout=60)
        run_id = p.latest_run()
        assert run_processes(run_id), "the test runs under the run's id"
        herd.send_signal(sig)
        out, err = herd.communicate(timeout=30)
    finally:
        kill_tree(herd)
    assert herd.returncode == 130, out + err
    assert "herd resume" in err, err
    assert run_processes(run_id) == []
    assert json.loads(p.herd("runs", "--json").stdout)[0]["state"] == "interrupted"
    assert p.show(task)["status"] != "closed"
    resumed = p.herd("resume", run_id)
    assert "all green" not in resumed.stdout  # test output stays in its log
    assert _trailers(p) == [task]
    assert p.show(task)["status"] == "closed"


STUBBORN_TEST = r"""
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a test runner that ignores SIGTERM
open(sys.argv[1], "w").write("started")
time.sleep(600)
"""


def test_a_second_signal_does_not_wait_out_the_grace_period(project: Project) -> None:
    p = project
    script = p.tmp / "stubborn_test.py"
    script.write_text(STUBBORN_TEST)
    started = p.tmp / "stubborn.started"
    task = p.create("edit", "edit: src/m0.py", scope=["src/m0.py"])
    herd = p.popen("run", task, "--cmd", str(p.agent), "--test-cmd", f"{sys.executable} {script} {started}")
    try:
        wait_for(started.exists, timeout=60)
        run_id = p.latest_run()
        herd.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        begun = time.monotonic()
        herd.send_signal(signal.SIGTERM)  # the grace period is 5 s; this must not wait for it
        out, err = herd.communicate(timeout=30)
        waited = time.monotonic() - begun
    finally:
        kill_tree(herd)
    assert herd.returncode == 130, out + err
    assert waited < 3, waited
    assert run_processes(run_id) == []
    assert "Traceback" not in err


def test_a_remote_that_never_answers_is_refused_before_any_worker_starts(project: Project) -> None:
    p = project
    p.git("config", "remote.origin.uploadpack", "sleep 600; git-upload-pack")
    task = p.create("edit", "edit: src/m0.py", scope=["src/m0.py"])
    started = time.monotonic()
    proc = subprocess.run(
        p.popen_argv("run", task, "--cmd", str(p.agent), "--push"),
        cwd=p.repo,
        env={**p.env, "HERD_GIT_TIMEOUT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert time.monotonic() - started < 20, out
    assert "did not answer within 2s" in out, out
    assert p.calls() == []  # no worker ran
    assert p.show(task)["status"] == "open", out
    gone = subprocess.run(["pgrep", "-f", "sleep 600; git-upload-pack"], capture_output=True)
    assert gone.stdout == b"", gone.stdout


def test_a_remote_that_stops_answering_fails_landing_after_the_git_timeout(project: Project) -> None:
    p = project
    task = p.create("edit", "edit: src/m0.py", scope=["src/m0.py"])
    # The remote answers the pre-flight check; the test command then makes it go silent, so
    # the fetch before the push is what meets the timeout.
    silence = "git config remote.origin.uploadpack 'sleep 600; git-upload-pack'"
    started = time.monotonic()
    proc = subprocess.run(
        p.popen_argv("run", task, "--cmd", str(p.agent), "--push", "--test-cmd", silence),
        cwd=p.repo,
        env={**p.env, "HERD_GIT_TIMEOUT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 5, out
    assert time.monotonic() - started < 30, out
    assert "no answer after 2s" in out, out
    gone = subprocess.run(["pgrep", "-f", "sleep 600; git-upload-pack"], capture_output=True)
    assert gone.stdout == b"", gone.stdout


SURPRISING_AGENT = r"""
import os
os.symlink("/etc/passwd", "src/passwd")
os.symlink("../../outside", "src/up")
os.symlink("a.py", "src/fine")
with open("src/big.bin", "wb") as f:
    f.write(b"x" * (2 * 2**20))
"""


def test_landing_warns_about_symlinks_out_of_the_repo_and_big_files(project: Project) -> None:
    p = project
    agent = p.tmp / "surprising_agent.py"
    agent.write_text(SURPRISING_AGENT)
    task = p.create("surprise", scope=["src/*"])
    p.env["HERD_LARGE_FILE"] = "1M"
    proc = p.herd("run", task, "--cmd", f"{sys.executable} {agent}")
    out = proc.stdout + proc.stderr
    assert f"warning: {task} adds a symlink src/passwd -> /etc/passwd" in out, out
    assert f"warning: {task} adds a symlink src/up -> ../../outside" in out, out
    assert "src/fine" not in out
    assert f"warning: {task} adds src/big.bin, 2.0 MiB (over 1 MiB" in out, out
