"""A worker that tampers with its worktree's git metadata never reaches the user's repository:
herd's git commands stay pinned to the worktree, and the attempt fails with the reason.

Each case leaves the user's checkout dirty (a staged edit, an unstaged edit, an untracked
file) and checks that the branch, the index and every file are exactly as they were."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil
import pytest
from _run_helpers import Project, wait_for

# argv[1] says how the worker misbehaves; it always edits a file in its scope first.
TAMPERING_AGENT = r"""
import os, subprocess, sys
mode = sys.argv[1]
common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                        capture_output=True, text=True, check=True).stdout.strip()
with open("src/work.py", "a") as f:
    f.write("work\n")
if mode == "rm-git":
    os.remove(".git")
elif mode == "gitdir-main":
    with open(".git", "w") as f:
        f.write(f"gitdir: {common}\n")
elif mode == "rm-git-then-commit":
    os.remove(".git")
    subprocess.run(["git", "add", "-A"])
    subprocess.run(["git", "commit", "-qm", "worker commit after rm .git"])
elif mode == "head-to-main":
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
elif mode == "checkout-main":
    subprocess.run(["git", "checkout", "-q", "--ignore-other-worktrees", "main"], check=True)
    with open("src/work.py", "a") as f:
        f.write("work on main\n")
"""


def _agent(tmp: Path) -> Path:
    path = tmp / "tamper.py"
    path.write_text(TAMPERING_AGENT)
    return path


def _user_state(p: Project) -> dict[str, str]:
    return {
        "head": p.git("rev-parse", "HEAD"),
        "branch": p.git("symbolic-ref", "HEAD"),
        "main": p.git("rev-parse", "refs/heads/main"),
        "status": p.git("status", "--porcelain=v1", "--untracked-files=all"),
        "staged": p.git("diff", "--cached"),
        "unstaged": p.git("diff"),
        "readme": (p.repo / "README.md").read_text(),
        "a": (p.repo / "src" / "a.py").read_text(),
        "untracked": (p.repo / "notes.txt").read_text(),
        "index": p.git("ls-files", "--stage"),
    }


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    # The user is in the middle of something: a staged edit, an unstaged one, a new file.
    (p.repo / "README.md").write_text("user's staged edit\n")
    p.git("add", "README.md")
    (p.repo / "src" / "a.py").write_text("user's unstaged edit\n")
    (p.repo / "notes.txt").write_text("user's untracked notes\n")
    return p


@pytest.mark.parametrize("mode", ["rm-git", "gitdir-main", "rm-git-then-commit"])
def test_a_worker_that_breaks_its_git_file_never_touches_the_user_repo(
    project: Project, tmp_path: Path, mode: str
) -> None:
    p = project
    task = p.create("tamper", scope=["src/work.py"])
    before = _user_state(p)
    proc = p.herd(
        "run", task, "--retries", "0", "--cmd", f"{sys.executable} {_agent(tmp_path)} {mode}", check=1
    )
    assert _user_state(p) == before, proc.stdout + proc.stderr
    run_id = p.latest_run()
    report = json.loads(p.herd("report", run_id, "--format", "json").stdout)
    text = json.dumps(report)
    assert "no longer resolves to itself" in text, text
    assert p.show(task)["status"] == "open"
    assert "no longer resolves to itself" in json.dumps(p.comments(task))


@pytest.mark.parametrize("mode", ["head-to-main", "checkout-main"])
def test_a_worker_that_points_head_at_the_user_branch_does_not_move_it(
    project: Project, tmp_path: Path, mode: str
) -> None:
    p = project
    task = p.create("switch", scope=["src/work.py"])
    before = _user_state(p)
    proc = p.herd(
        "run", task, "--no-integrate", "--cmd", f"{sys.executable} {_agent(tmp_path)} {mode}", check=None
    )
    assert _user_state(p) == before, proc.stdout + proc.stderr
    # The work itself is kept on the task branch, where it belongs.
    run_id = p.latest_run()
    assert "work" in p.git("show", f"herd/{run_id}/{task}:src/work.py")


DAEMON_AGENT = r"""
import os, sys, time
with open("src/work.py", "a") as f:
    f.write("work\n")
if os.fork() == 0:
    os.setsid()  # leaves the worker's process group: the group kill cannot reach it
    if os.fork() == 0:
        with open(sys.argv[1], "w") as f:
            f.write(str(os.getpid()))
        while True:  # keeps writing into the worktree, as a stray watcher would
            try:
                with open("src/work.py", "a") as f:
                    f.write("daemon\n")
            except OSError:
                pass
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
"""


def test_a_daemon_a_worker_leaves_behind_is_killed_before_judging(project: Project, tmp_path: Path) -> None:
    p = project
    agent = tmp_path / "daemon_agent.py"
    agent.write_text(DAEMON_AGENT)
    pid_file = tmp_path / "daemon.pid"
    task = p.create("daemon", scope=["src/work.py"])
    p.herd("run", task, "--no-integrate", "--cmd", f"{sys.executable} {agent} {pid_file}")
    pid = int(pid_file.read_text())
    try:
        wait_for(
            lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
            timeout=5,
        )
    finally:
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()


def test_a_worker_that_changes_the_git_config_gets_it_put_back_and_fails(
    project: Project, tmp_path: Path
) -> None:
    p = project
    agent = tmp_path / "config_agent.py"
    agent.write_text(
        "import subprocess\n"
        "open('src/work.py', 'a').write('work\\n')\n"
        "subprocess.run(['git', 'config', 'core.hooksPath', '/tmp/elsewhere'])\n"
        "subprocess.run(['git', 'config', 'user.email', 'worker@evil'])\n"
    )
    config = p.repo / ".git" / "config"
    before = config.read_bytes()
    task = p.create("config", scope=["src/work.py"])
    proc = p.herd("run", task, "--retries", "0", "--cmd", f"{sys.executable} {agent}", check=1)
    assert config.read_bytes() == before, proc.stderr
    assert "changed the repository's git config" in proc.stdout + proc.stderr
    assert (
        "core.hooksPath" in json.dumps(p.comments(task))
        or "hookspath" in json.dumps(p.comments(task)).lower()
    )
