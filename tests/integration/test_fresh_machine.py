"""A fresh machine (a container, a CI runner): git has no user identity and nothing is set up.

`herd demo` still runs (its sample repository commits as herd <herd@localhost>); `herd run` on a
real repository refuses up front with the fix, before any worker starts; the demo leaves no
temporary directory behind and never builds inside the user's repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from _queue_helpers import assert_clean_error, herd, herd_env
from conftest import git, make_repo, no_git_identity


def test_demo_without_a_git_identity_commits_as_herd(tmp_path: Path) -> None:
    env = no_git_identity(herd_env(), tmp_path)
    proc = herd("demo", str(tmp_path / "d"), cwd=tmp_path, env=env, timeout=300)
    assert "12 succeeded, 12 landed, 0 ejected, 0 failed" in proc.stdout
    assert "commits as herd <herd@localhost>" in proc.stderr
    authors = set(git(tmp_path / "d" / "remote.git", "log", "--format=%an <%ae>", "main").splitlines())
    assert authors == {"herd <herd@localhost>"}


def test_run_without_a_git_identity_is_refused_before_any_worker(tmp_path: Path) -> None:
    repo, _ = make_repo(tmp_path)
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    herd("init", cwd=repo)
    herd("create", "a task", "--scope", "src/a.py", cwd=repo)
    env = no_git_identity(herd_env(), tmp_path)
    proc = herd("run", "--ready", "--cmd", "true", cwd=repo, env=env, check=None)
    assert_clean_error(proc, 2, "git has no user identity", "git config --global user.email you@example.com")
    assert not (repo / ".herd" / "worktrees").exists() or not any((repo / ".herd" / "worktrees").iterdir())
    assert herd("runs", "--json", cwd=repo, env=env).stdout.strip() == "[]"
    # The same repository with an identity in the environment runs.
    ok = herd(
        "run",
        "--ready",
        "--cmd",
        "touch src/a.py",
        "--no-integrate",
        cwd=repo,
        env={
            **env,
            "GIT_AUTHOR_NAME": "A",
            "GIT_AUTHOR_EMAIL": "a@example.invalid",
            "GIT_COMMITTER_NAME": "A",
            "GIT_COMMITTER_EMAIL": "a@example.invalid",
        },
        check=None,
    )
    assert "git has no user identity" not in ok.stderr


def test_demo_in_a_temporary_directory_removes_it(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = herd("demo", cwd=tmp_path, env=herd_env(TMPDIR=str(tmp)), timeout=300)
    assert "12 succeeded, 12 landed" in proc.stdout
    assert "herd demo: removed " in proc.stderr and "`herd demo DIR` keeps" in proc.stderr
    assert list(tmp.iterdir()) == []


def test_demo_refuses_to_build_inside_an_existing_repository(tmp_path: Path) -> None:
    repo, _ = make_repo(tmp_path)
    before = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    proc = herd("demo", "sub/demo", cwd=repo, check=None)
    assert_clean_error(
        proc, 4, f"is inside the git repository {repo}", "pass a directory outside any repository"
    )
    assert not (repo / "sub").exists()
    assert (
        subprocess.run(
            ["git", "status", "--porcelain", "--ignored"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        == before
    )
