"""Shared fixtures: real git repositories in tmp_path, never mocks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def git(cwd: Path, *args: str) -> str:
    """Run git in a test repo and return stripped stdout (raises on failure)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A repo on `main` with three commits, pushed to a bare remote named `origin`."""
    repo, remote = tmp_path / "repo", tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    (repo / "src").mkdir()
    for n, name in enumerate(["README.md", "src/a.py", "src/b.py"]):
        (repo / name).write_text(f"{name} line 1\nline 2\nline 3\n")
        git(repo, "add", name)
        git(repo, "commit", "--quiet", "-m", f"commit {n}")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "origin", "main")
    return repo, remote


@pytest.fixture
def repo_remote(tmp_path: Path) -> tuple[Path, Path]:
    return make_repo(tmp_path)
