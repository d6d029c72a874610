"""What can be known to fail is refused before a run starts: exit 2, one clear line, and
nothing touched (no task claimed, no worktree, no run row). Real repos, the real CLI."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from _queue_helpers import assert_clean_error, herd, herd_env
from _run_helpers import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=6)


def _untouched(p: Project, task: str) -> None:
    shown = p.show(task)
    assert shown["status"] == "open" and not shown.get("assignee"), shown
    assert not p.comments(task)
    assert p.latest_run_or_none() is None, "no run may be recorded"
    worktrees = p.repo / ".herd" / "worktrees"
    assert not worktrees.exists() or not any(worktrees.iterdir())


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--cmd", "true {foo}"], ["unknown placeholder {foo}", "{context}"]),
        (
            ["--cmd", "./not-there.sh {id}"],
            ["command not found: ./not-there.sh", "Untracked files are not in worktrees"],
        ),
        (["--cmd", "true", "--test-cmd", "pytest '-q"], ["--test-cmd", "does not parse"]),
        (
            ["--cmd", "true", "--test-cmd", "no-such-test-runner -q"],
            ["--test-cmd: command not found: 'no-such-test-runner'"],
        ),
        (["--cmd", "true", "--format-cmd", "./fmt.sh"], ["--format-cmd: command not found"]),
        (["--cmd", "true", "--push", "--remote", "nosuch"], ["no remote 'nosuch'", "remotes: gone, origin"]),
        (["--cmd", "true", "--push", "--remote", "gone"], ["remote 'gone' is not reachable"]),
        (["--cmd", "true", "--branch", "bad..name"], ["--branch 'bad..name' is not a valid branch"]),
    ],
)
def test_a_run_that_would_fail_later_is_refused_up_front(
    project: Project, args: list[str], needles: list[str]
) -> None:
    p = project
    p.git("remote", "add", "gone", str(p.tmp / "no-such-remote.git"))
    task = p.create("T", "edit: src/m0.py", scope=["src/m0.py"])
    refused = p.herd("run", task, *args, check=None)
    assert_clean_error(refused, 2, *needles)
    _untouched(p, task)


def test_an_untracked_script_is_found_where_herd_was_started(project: Project) -> None:
    """`--cmd './fix.sh {id}'` with fix.sh untracked in the directory herd runs in: the
    worktree has no fix.sh, so herd runs the one it was pointed at."""
    p = project
    _script(p.repo / "fix.sh", 'echo "fixed $1" >> src/m0.py && git commit -qam "fix $1"\n')
    task = p.create("T", scope=["src/m0.py"])
    done = p.herd("run", task, "--cmd", "./fix.sh {id}", "--no-integrate")
    assert "1 succeeded, 0 failed" in done.stdout, done.stdout + done.stderr
    run_id = p.latest_run()
    assert f"fixed {task}" in p.git("show", f"herd/{run_id}/{task}:src/m0.py")


def test_an_untracked_script_elsewhere_says_where_herd_looked(project: Project) -> None:
    p = project
    _script(p.repo / "fix.sh", "exit 0\n")
    (p.repo / "sub").mkdir()
    task = p.create("T", scope=["src/m0.py"])
    refused = herd("run", task, "--cmd", "./fix.sh {id}", cwd=p.repo / "sub", env=p.env, check=None)
    assert_clean_error(
        refused,
        2,
        "command not found: ./fix.sh",
        "worktree of commit",
        str(p.repo / "sub"),
        "Untracked files are not in worktrees",
    )
    _untouched(p, task)


def test_braces_alone_stand_for_the_task_id(project: Project) -> None:
    p = project
    task = p.create("T", "edit: src/m0.py", scope=["src/m0.py"])
    p.herd("run", task, "--cmd", f"{p.agent} --task={{}}", "--no-integrate")
    [call] = [c for c in p.calls() if c.get("result") == "ok"]
    assert call["argv"][1:] == [f"--task={task}"]


def test_verify_cmd_takes_id_as_well_as_braces(project: Project) -> None:
    p = project
    tasks = [p.create(f"T{n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in (0, 1)]
    p.herd("run", *tasks, "--cmd", str(p.agent), "--no-integrate")
    checker = _script(p.tmp / "check.sh", 'case "$1" in t-*) exit 0;; *) exit 9;; esac\n')
    report = json.loads(
        p.herd(
            "report", p.latest_run(), "--format", "json", "--verify-cmd", f"{checker} {{id}}", "--sample", "2"
        ).stdout
    )
    assert report["verification"]["passed"] == 2, report["verification"]
    refused = p.herd(
        "report", p.latest_run(), "--verify-cmd", f"{checker} {{task}}", "--sample", "1", check=None
    )
    assert_clean_error(refused, 2, "unknown placeholder {task}")


def test_outside_a_git_repository_init_warns_and_run_says_what_to_do(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    env = herd_env()
    init = herd("init", cwd=plain, env=env)
    assert "is not in a git repository" in init.stderr and "herd run" in init.stderr
    task = json.loads(herd("create", "x", "--json", cwd=plain, env=env).stdout)["id"]
    refused = herd("run", task, "--cmd", "true", cwd=plain, env=env, check=None)
    assert_clean_error(refused, 2, "is not in a git repository", "git init")
    assert "rev-parse" not in refused.stderr


def test_a_repository_without_commits_is_refused_with_the_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", "-b", "main", str(empty)], check=True)
    env = herd_env()
    herd("init", cwd=empty, env=env)
    task = json.loads(herd("create", "x", "--json", cwd=empty, env=env).stdout)["id"]
    refused = herd("run", task, "--cmd", "true", cwd=empty, env=env, check=None)
    assert_clean_error(refused, 2, "has no commits yet", "git commit")
    assert "rev-parse" not in refused.stderr


def test_two_ready_runs_at_once_share_the_tasks_without_refusing(project: Project) -> None:
    """`run --ready` twice at once: each task is claimed by one of them; the other skips
    it and says so, neither refuses its whole batch nor reports a failure."""
    p = project
    ids = [p.create(f"T{n}", "sleep: 2", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(6)]
    runs = [p.popen("run", "--ready", "--cmd", str(p.agent), "-j", "2", "--no-integrate") for _ in range(2)]
    outs = [proc.communicate(timeout=180) for proc in runs]
    for proc, (out, err) in zip(runs, outs, strict=True):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
    ok = Counter(c["task"] for c in p.calls() if c.get("result") == "ok")
    assert set(ok) == set(ids) and all(n == 1 for n in ok.values()), ok
