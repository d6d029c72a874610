"""herd.git.worktree against a real repository in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from herd.errors import BadInput
from herd.git.repo import Git
from herd.git.worktree import WorktreeManager


@pytest.fixture
def repo(repo_remote: tuple[Path, Path]) -> Path:
    return repo_remote[0]


@pytest.fixture
def manager(repo: Path) -> WorktreeManager:
    return WorktreeManager(Git(repo), repo / ".herd" / "worktrees")


def test_create_makes_task_worktree_on_its_branch(repo: Path, manager: WorktreeManager) -> None:
    g = manager.git
    wt = manager.create("r1", "ns-abc.1", 1, "main")
    assert wt.path == repo / ".herd/worktrees/r1/ns-abc.1-a1"
    assert wt.branch == "herd/r1/ns-abc.1" and wt.base == g.rev_parse("main")
    assert g.current_branch(wt.path) == wt.branch and g.head(wt.path) == wt.base
    # The worktrees live inside the main checkout but do not dirty it.
    assert g.is_clean(repo)


def test_retry_replaces_previous_attempt(repo: Path, manager: WorktreeManager) -> None:
    g = manager.git
    first = manager.create("r1", "t1", 1, "main")
    (first.path / "half-done.txt").write_text("x\n")
    g.commit_all(first.path, "attempt 1")

    second = manager.create("r1", "t1", 2, "main")
    assert not first.path.exists() and second.path.name == "t1-a2"
    assert g.rev_parse(second.branch or "") == second.base
    assert not (second.path / "half-done.txt").exists()
    # Same attempt number again (a crash before the attempt was recorded).
    again = manager.create("r1", "t1", 2, "main~1")
    assert g.head(again.path) == g.rev_parse("main~1")


def test_remove_keeps_branch_unless_asked(manager: WorktreeManager) -> None:
    g = manager.git
    wt = manager.create("r1", "t1", 1, "main")
    (wt.path / "f.txt").write_text("f\n")
    sha = g.squash(wt.path, wt.base, "t1", {"Herd-Task": "t1"}, branch=wt.branch)
    manager.remove(wt)
    assert not wt.path.exists() and g.rev_parse("herd/r1/t1") == sha
    wt = manager.create("r1", "t1", 2, "main")
    manager.remove(wt, delete_branch=True)
    assert g.branches("herd/r1") == []


def test_remove_run_keeps_failed_tasks(repo: Path, manager: WorktreeManager) -> None:
    g = manager.git
    wts = {t: manager.create("r1", t, 1, "main") for t in ["ok1", "ok2", "failed"]}
    integ = manager.integration("r1", "main")
    other_run = manager.create("r2", "ok1", 1, "main")

    manager.remove_run("r1", keep={"failed"})

    assert wts["failed"].path.exists() and g.branches("herd/r1") == ["herd/r1/failed"]
    assert not wts["ok1"].path.exists() and not wts["ok2"].path.exists()
    assert not integ.path.exists()
    assert other_run.path.exists() and g.branches("herd/r2") == ["herd/r2/ok1"]
    manager.remove_run("r1")
    assert not (manager.root / "r1").exists() and g.branches("herd/r1") == []
    assert [w.path for w in g.worktrees()] == [repo.resolve(), other_run.path.resolve()]


def test_integration_worktree_is_detached_and_replaceable(manager: WorktreeManager) -> None:
    g = manager.git
    integ = manager.integration("r1", "main~1")
    assert integ.branch is None and g.current_branch(integ.path) is None
    (integ.path / "leftover.txt").write_text("from a crash\n")
    integ = manager.integration("r1", "main")
    assert g.head(integ.path) == g.rev_parse("main") and g.is_clean(integ.path)


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a..b", "x.lock", "$(touch x)", ".hidden"])
def test_unsafe_ids_are_refused(manager: WorktreeManager, bad: str) -> None:
    with pytest.raises(BadInput):
        manager.create("r1", bad, 1, "main")
    with pytest.raises(BadInput):
        manager.create(bad, "t1", 1, "main")


def test_stale_directory_from_crash_is_replaced(repo: Path, manager: WorktreeManager) -> None:
    wt = manager.create("r1", "t1", 1, "main")
    # Simulate a crash that lost git's record of the worktree but left files behind.
    subprocess.run(["rm", "-rf", str(repo / ".git/worktrees")], check=True)
    again = manager.create("r1", "t1", 1, "main")
    assert again.path == wt.path and manager.git.is_clean(again.path)


def _registration(repo: Path, path: Path) -> dict[str, str]:
    """What the repository records for the worktree at `path`: its git directory's files."""
    admin = Path(
        subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-dir"],
            cwd=path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert admin.parent == (repo / ".git" / "worktrees").resolve()
    return {f.name: f.read_text() for f in admin.iterdir() if f.name not in ("index", "logs")}


@pytest.mark.parametrize("branch", ["task", None], ids=["on a branch", "detached"])
def test_worktree_add_registers_as_git_worktree_add_does(
    repo: Path, tmp_path: Path, branch: str | None
) -> None:
    """herd registers a task's worktree itself and fills it with one `git checkout`: the
    same files in the same registry as `git worktree add` makes, nothing left locked, and
    git treats it as any other worktree (lists, checks, removes, prunes it)."""
    g = Git(repo)
    base = g.rev_parse("main")
    theirs = tmp_path / "by-git"
    subprocess.run(
        ["git", "worktree", "add", "-q", *(["-b", "other"] if branch else ["--detach"]), str(theirs), base],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    ours = tmp_path / "by-herd"
    g.worktree_add(ours, branch, base)
    mine, git_made = _registration(repo, ours), _registration(repo, theirs)
    assert "locked" not in mine and "ORIG_HEAD" not in mine  # made by herd, not by git
    assert set(git_made) - set(mine) <= {"ORIG_HEAD"}  # `reset --hard` leaves one behind
    assert mine["commondir"] == git_made["commondir"] == "../..\n"
    assert mine["gitdir"] == f"{ours.resolve()}/.git\n"
    assert (ours / ".git").read_text() == f"gitdir: {repo.resolve()}/.git/worktrees/by-herd\n"
    assert g.current_branch(ours) == branch and g.head(ours) == base and g.is_clean(ours)
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    listed = {wt.path: wt for wt in g.worktrees()}
    assert listed[ours.resolve()].branch == branch and listed[ours.resolve()].head == base
    subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True)
    assert ours.resolve() in {wt.path for wt in g.worktrees()}  # not taken for a stale one
    (ours / "sub").mkdir()
    (ours / "sub" / "link").symlink_to(repo / "README.md")  # removing never follows a link
    g.worktree_remove(ours)  # herd deletes both itself, as `git worktree remove` would
    assert not ours.exists() and not (repo / ".git" / "worktrees" / "by-herd").exists()
    assert ours.resolve() not in {wt.path for wt in g.worktrees()} and (repo / "README.md").exists()
    assert theirs.exists()


def test_worktree_add_takes_a_numbered_name_and_falls_back_to_git(repo: Path, tmp_path: Path) -> None:
    """A registry name already taken gets a number, as git does; a branch checked out in
    another worktree makes herd's way fail cleanly and `git worktree add`'s path (which
    frees the branch) do it."""
    g = Git(repo)
    base = g.rev_parse("main")
    first = tmp_path / "a" / "same"
    second = tmp_path / "b" / "same"
    first.parent.mkdir()
    second.parent.mkdir()
    g.worktree_add(first, "one", base)
    g.worktree_add(second, "two", base)
    assert (second / ".git").read_text() == f"gitdir: {repo.resolve()}/.git/worktrees/same1\n"
    g.worktree_add(tmp_path / "third", "two", base)  # `two` is checked out in `second`
    assert g.current_branch(tmp_path / "third") == "two" and not second.exists()
    registry = sorted(p.name for p in (repo / ".git" / "worktrees").iterdir())
    assert registry == ["same", "third"]
    assert not any((repo / ".git" / "worktrees" / name / "locked").exists() for name in registry)


@pytest.mark.parametrize(
    "config",
    [
        ["extensions.worktreeConfig", "true"],
        ["core.sparseCheckout", "true"],
        ["include.path", "extra.config"],
    ],
)
def test_a_repository_that_could_ask_git_for_more_gets_git_worktree_add(
    repo: Path, tmp_path: Path, config: list[str]
) -> None:
    """Per-worktree config, sparse checkout, included config: `git worktree add` may do
    more there than a registration by hand (copy sparse patterns, per-worktree settings),
    so herd leaves it to git (whose `reset --hard` leaves ORIG_HEAD behind, herd's way none)."""
    g = Git(repo)
    base = g.rev_parse("main")
    plain = tmp_path / "plain"
    g.worktree_add(plain, "plain", base)
    assert not (repo / ".git" / "worktrees" / "plain" / "ORIG_HEAD").exists()  # herd's way
    subprocess.run(["git", "config", *config], cwd=repo, check=True)
    special = tmp_path / "special"
    g.worktree_add(special, "special", base)
    assert (repo / ".git" / "worktrees" / "special" / "ORIG_HEAD").exists()  # git's way
    assert g.current_branch(special) == "special" and g.head(special) == base
