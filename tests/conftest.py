"""Shared fixtures: real git repositories in tmp_path, never mocks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every git the tests start (and every herd and fake agent they start) reads this config
    instead of the user's global and system ones: the suite passes on a machine where git has
    no identity, and a user's settings (hooks, signing, init.defaultBranch) cannot leak in.
    Tests of the no-identity case use `no_git_identity(env)`."""
    config = tmp_path_factory.mktemp("git-home") / "gitconfig"
    config.write_text("[user]\n\tname = Test\n\temail = test@example.invalid\n"
                      "[init]\n\tdefaultBranch = main\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GIT_CONFIG_GLOBAL", str(config))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield config


def no_git_identity(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`env` as on a fresh machine whose git has no user.name/user.email."""
    empty = tmp_path / "empty-gitconfig"
    # useConfigOnly: git must not guess one from the host name either (some hosts have a domain).
    empty.write_text("[user]\n\tuseConfigOnly = true\n")
    env = {k: v for k, v in env.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
    # EMAIL would give git an address to use; a fresh container has none.
    env.pop("EMAIL", None)
    return {**env, "GIT_CONFIG_GLOBAL": str(empty), "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture
def repo_remote(tmp_path: Path) -> tuple[Path, Path]:
    return make_repo(tmp_path)
