"""herd.git.repo against real repositories and a bare remote in tmp_path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from herd.errors import BadInput, NotFound, Refused
from herd.git.repo import (
    Git,
    GitError,
    NotDescendant,
    NothingToCommit,
    PushStatus,
    RefMoved,
)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_file(cwd: Path, name: str, text: str, message: str = "edit") -> str:
    (cwd / name).parent.mkdir(parents=True, exist_ok=True)
    (cwd / name).write_text(text)
    sh(cwd, "add", "--all")
    sh(cwd, "commit", "--quiet", "-m", message)
    return sh(cwd, "rev-parse", "HEAD")


@pytest.fixture
def repo(repo_remote: tuple[Path, Path]) -> Path:
    return repo_remote[0]


@pytest.fixture
def wt(repo: Path, tmp_path: Path) -> Path:
    """A worker worktree on branch `task` at main."""
    path = tmp_path / "wt"
    Git(repo).worktree_add(path, "task", "main")
    return path


def parsed_trailers(repo: Path, sha: str) -> str:
    message = sh(repo, "log", "-1", "--format=%B", sha)
    return subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        cwd=repo,
        input=message,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


# -- inspection ---------------------------------------------------------------


def test_inspection(repo: Path, tmp_path: Path) -> None:
    g = Git(repo)
    assert g.toplevel() == repo.resolve()
    head = g.head()
    assert len(head) == 40 and g.rev_parse("main") == head
    assert head.startswith(g.short(head))
    assert g.current_branch() == "main"
    assert g.ls_files() == ["README.md", "src/a.py", "src/b.py"]
    assert g.is_clean()
    (repo / "new.txt").write_text("x")
    assert not g.is_clean()
    (repo / ".gitignore").write_text("new.txt\n.gitignore\n")
    assert g.is_clean()
    (repo / "src/a.py").write_text("changed\n")
    assert not g.is_clean()
    with pytest.raises(NotFound):
        g.rev_parse("no-such-branch")
    with pytest.raises(BadInput):
        g.rev_parse("--all")


def test_current_branch_is_none_when_detached(repo: Path, tmp_path: Path) -> None:
    g = Git(repo)
    path = tmp_path / "detached"
    g.worktree_add(path, None, "main~1")
    assert g.current_branch(path) is None
    assert g.head(path) == g.rev_parse("main~1")


def test_git_error_carries_command_and_stderr(repo: Path) -> None:
    with pytest.raises(GitError) as info:
        Git(repo).reset_hard(repo, "0" * 40)
    err = info.value
    assert err.argv[:2] == ["git", "reset"] and err.returncode != 0 and err.stderr
    assert "\n" not in str(err)


# -- squash -------------------------------------------------------------------


@pytest.mark.parametrize("worker_commits", [0, 1, 3])
def test_squash_makes_one_commit_on_base(repo: Path, wt: Path, worker_commits: int) -> None:
    g = Git(repo)
    base = g.rev_parse("main")
    for i in range(worker_commits):
        commit_file(wt, f"src/new{i}.py", f"v{i}\n", f"worker {i}")
    (wt / "src/a.py").write_text("uncommitted edit\n")
    (wt / "src/b.py").unlink()
    (wt / "untracked.txt").write_text("new file\n")

    sha = g.squash(wt, base, "Refactor auth", {"Herd-Task": "ns-abc", "Herd-Run": "r1"}, branch="task")

    assert sh(repo, "rev-parse", f"{sha}^") == base
    assert sh(repo, "rev-list", "--count", f"{base}..{sha}") == "1"
    assert g.head(wt) == sha and sh(repo, "rev-parse", "task") == sha
    assert g.is_clean(wt)
    assert sh(repo, "log", "-1", "--format=%B", sha) == ("Refactor auth\n\nHerd-Task: ns-abc\nHerd-Run: r1")
    assert parsed_trailers(repo, sha) == "Herd-Task: ns-abc\nHerd-Run: r1"
    expected = {"src/a.py", "src/b.py", "untracked.txt"}
    expected |= {f"src/new{i}.py" for i in range(worker_commits)}
    assert set(g.changed_paths(base, sha)) == expected


@pytest.mark.parametrize("move_head", [["switch", "-q", "-c", "elsewhere"], ["switch", "-q", "--detach"]])
def test_squash_reattaches_head_a_worker_moved(repo: Path, wt: Path, move_head: list[str]) -> None:
    """squash skips `git symbolic-ref` when HEAD is still the task branch; a worker that
    switched branches or detached HEAD gets it put back on the task branch."""
    g = Git(repo)
    base = g.rev_parse("main")
    sh(wt, *move_head)
    (wt / "moved.txt").write_text("work\n")
    sha = g.squash(wt, base, "moved", {"Herd-Task": "t1"}, branch="task")
    assert sh(wt, "symbolic-ref", "HEAD") == "refs/heads/task"
    assert sh(repo, "rev-parse", "task") == sha and g.head(wt) == sha
    if move_head[2] == "-c":
        assert sh(repo, "rev-parse", "elsewhere") == base  # the worker's branch never moves


def test_squash_respects_gitignore(repo: Path, wt: Path) -> None:
    g = Git(repo)
    (wt / ".gitignore").write_text("*.log\n")
    (wt / "debug.log").write_text("noise\n")
    sha = g.squash(wt, "main", "ignore logs", {"Herd-Task": "t1"})
    assert g.changed_paths("main", sha) == [".gitignore"]


def test_squash_with_no_change_raises_nothing_to_commit(repo: Path, wt: Path) -> None:
    g = Git(repo)
    with pytest.raises(NothingToCommit):
        g.squash(wt, "main", "nothing", {"Herd-Task": "t1"})
    # Commits that cancel out are no change either.
    commit_file(wt, "tmp.txt", "x\n")
    (wt / "tmp.txt").unlink()
    with pytest.raises(NothingToCommit):
        g.squash(wt, "main", "nothing", {"Herd-Task": "t1"})


def test_squash_refuses_rewritten_history(repo: Path, wt: Path) -> None:
    g = Git(repo)
    base = g.rev_parse("main")
    sh(wt, "reset", "--quiet", "--hard", f"{base}~1")
    (wt / "x.txt").write_text("x\n")
    with pytest.raises(NotDescendant):
        g.squash(wt, base, "msg", {"Herd-Task": "t1"})


@pytest.mark.parametrize("worker", ["edits", "commits", "rewrites", "packs refs", "detaches"])
def test_squash_reads_head_from_files_as_git_would(repo: Path, tmp_path: Path, worker: str) -> None:
    """A second squash on the same base reads HEAD from the worktree's registered HEAD file
    and its branch's loose ref (no `git rev-parse`); whatever the worker did to HEAD, the
    answer is git's: a packed ref falls back to git, a rewrite is still refused."""
    g = Git(repo)
    base = g.rev_parse("main")
    first = tmp_path / "first"
    g.worktree_add(first, "first", base)
    (first / "one.txt").write_text("1\n")
    g.squash(first, base, "first", {"Herd-Task": "t1"}, branch="first")  # reads base's tree
    path = tmp_path / "second"
    g.worktree_add(path, "second", base)
    (path / "two.txt").write_text("2\n")
    if worker == "commits":
        commit_file(path, "src/c.py", "c\n")
    elif worker == "rewrites":
        sh(path, "reset", "--quiet", "--soft", f"{base}~1")
    elif worker == "packs refs":
        commit_file(path, "src/c.py", "c\n")
        sh(path, "pack-refs", "--all")
        assert not (repo / ".git" / "refs" / "heads" / "second").exists()
    elif worker == "detaches":
        commit_file(path, "src/c.py", "c\n")
        sh(path, "switch", "--quiet", "--detach")
    head = sh(path, "rev-parse", "HEAD")
    g._pin(path)  # what squash does first: the worktree checked, its admin dir known
    assert g._head_sha(path) == (None if worker == "packs refs" else head)
    if worker == "rewrites":
        with pytest.raises(NotDescendant):
            g.squash(path, base, "second", {"Herd-Task": "t2"}, branch="second")
        return
    sha = g.squash(path, base, "second", {"Herd-Task": "t2"}, branch="second")
    assert sh(repo, "rev-parse", f"{sha}^") == base and sh(repo, "rev-parse", "second") == sha
    expected = {"two.txt"} | ({"src/c.py"} if worker != "edits" else set())
    assert set(g.changed_paths(base, sha)) == expected


def test_shell_metacharacters_in_message_stay_data(repo: Path, wt: Path, tmp_path: Path) -> None:
    g = Git(repo)
    marker = tmp_path / "pwned"
    title = f"""Fix $(touch {marker}) `touch {marker}` "double" 'single' ; | & #1"""
    (wt / "f.txt").write_text("x\n")
    sha = g.squash(wt, "main", title, {"Herd-Task": "t-$(id)"})
    assert not marker.exists()
    assert sh(repo, "log", "-1", "--format=%B", sha) == f"{title}\n\nHerd-Task: t-$(id)"
    (wt / "g.txt").write_text("y\n")
    sha2 = g.commit_all(wt, f"#2 {title}")
    assert sha2 is not None and not marker.exists()
    assert sh(repo, "log", "-1", "--format=%B", sha2) == f"#2 {title}"


def test_commit_all(repo: Path, wt: Path) -> None:
    g = Git(repo)
    assert g.commit_all(wt, "nothing") is None
    (wt / "src/a.py").unlink()
    (wt / "c.txt").write_text("c\n")
    sha = g.commit_all(wt, "delete and add")
    assert sha == g.head(wt) and g.is_clean(wt)
    assert sorted(g.changed_paths("main", sha)) == ["c.txt", "src/a.py"]


def test_trailer_values_are_validated(repo: Path, wt: Path) -> None:
    (wt / "f.txt").write_text("x\n")
    with pytest.raises(BadInput):
        Git(repo).squash(wt, "main", "m", {"Herd-Task": "a\nb"})
    with pytest.raises(BadInput):
        Git(repo).squash(wt, "main", "m", {"Bad Key": "v"})


# -- diffs and ancestry -------------------------------------------------------


def test_changed_paths_with_delete_and_rename(repo: Path) -> None:
    g = Git(repo)
    base = g.head()
    sh(repo, "mv", "src/a.py", "src/renamed.py")
    (repo / "README.md").unlink()
    (repo / "src/b.py").write_text("changed\n")
    (repo / "sp ace\tand\nnewline.txt").write_text("odd name\n")
    sh(repo, "add", "--all")
    sh(repo, "commit", "--quiet", "-m", "mixed")
    assert sorted(g.changed_paths(base, "HEAD")) == sorted(
        ["README.md", "src/a.py", "src/renamed.py", "src/b.py", "sp ace\tand\nnewline.txt"]
    )
    assert g.is_ancestor(base, "HEAD") and not g.is_ancestor("HEAD", base)


def test_trailers_map_values_to_commits(repo: Path, wt: Path) -> None:
    g = Git(repo)
    base = g.head()
    shas = {}
    for task in ["t1", "t2"]:
        (wt / f"{task}.txt").write_text(task)
        shas[task] = g.squash(
            wt, g.head(wt), f"task {task}", {"Herd-Task": task, "Herd-Run": "r"}, branch="task"
        )
    commit_file(wt, "plain.txt", "no trailer")
    assert g.trailers(f"{base}..task", "Herd-Task") == shas
    assert g.trailers(f"{base}..task", "herd-run") == {"r": shas["t2"]}
    assert g.trailers(f"{base}..task", "Herd-Missing") == {}


# -- cherry-pick and rebase ---------------------------------------------------


def test_cherry_pick_ok(repo: Path, wt: Path, tmp_path: Path) -> None:
    g = Git(repo)
    pick_sha = commit_file(wt, "src/new.py", "new\n")
    integ = tmp_path / "integ"
    g.worktree_add(integ, None, "main")
    result = g.cherry_pick(integ, pick_sha)
    assert result.ok and result.sha == g.head(integ)
    assert sh(repo, "rev-parse", f"{result.sha}^") == g.rev_parse("main")
    # Picking a change that is already there keeps an empty commit (its trailers
    # still say the task landed) instead of leaving a half-done pick behind.
    again = g.cherry_pick(integ, pick_sha)
    assert again.ok and g.changed_paths(result.sha or "", again.sha or "") == []
    assert g.is_clean(integ)


def test_cherry_pick_conflict_reports_and_leaves_clean(repo: Path, wt: Path, tmp_path: Path) -> None:
    g = Git(repo)
    theirs = commit_file(wt, "src/a.py", "worker version\n")
    integ = tmp_path / "integ"
    g.worktree_add(integ, None, "main")
    tip = commit_file(integ, "src/a.py", "integration version\n")

    result = g.cherry_pick(integ, theirs)

    assert not result.ok and result.sha is None
    assert result.conflicts == ["src/a.py"]
    assert "<<<<<<<" in result.excerpt and "worker version" in result.excerpt
    assert len(result.excerpt.splitlines()) <= 80
    assert g.head(integ) == tip and g.is_clean(integ)
    assert (integ / "src/a.py").read_text() == "integration version\n"


def test_cherry_pick_many_picks_in_order_in_one_call(repo: Path, wt: Path, tmp_path: Path) -> None:
    """Several commits picked in one git call come back one new commit each, in the order
    given (not history's), an already-present change kept as an empty commit."""
    g = Git(repo)
    first = commit_file(wt, "src/one.py", "1\n", "one")
    second = commit_file(wt, "src/two.py", "2\n", "two")
    integ = tmp_path / "integ"
    g.worktree_add(integ, None, "main")
    base = g.head(integ)
    picked = g.cherry_pick_many(integ, [second, first])
    assert picked is not None and len(picked) == 2
    assert sh(repo, "rev-list", "--reverse", f"{base}..{picked[-1]}").split() == picked
    assert [sh(repo, "log", "-1", "--format=%s", sha) for sha in picked] == ["two", "one"]
    again = g.cherry_pick_many(integ, [first, second])
    assert again is not None and g.changed_paths(picked[-1], again[-1]) == []  # already there
    assert g.head(integ) == again[-1] and g.is_clean(integ)
    assert g.cherry_pick_many(integ, []) == []
    assert g.cherry_pick_many(integ, [first, first]) is None  # git would pick it once
    assert g.head(integ) == again[-1] and g.is_clean(integ)


def test_cherry_pick_many_conflict_leaves_the_old_tip_clean(repo: Path, wt: Path, tmp_path: Path) -> None:
    """A conflict anywhere in the sequence: nothing is picked (None), the worktree is back
    at its old tip with no pick in progress, so the caller can pick one by one."""
    g = Git(repo)
    fine = commit_file(wt, "src/fine.py", "fine\n", "fine")
    theirs = commit_file(wt, "src/a.py", "worker version\n", "conflicts")
    integ = tmp_path / "integ"
    g.worktree_add(integ, None, "main")
    tip = commit_file(integ, "src/a.py", "integration version\n")
    assert g.cherry_pick_many(integ, [fine, theirs]) is None
    assert g.head(integ) == tip and g.is_clean(integ)
    assert not (integ / "src/fine.py").exists()
    assert sh(integ, "status", "--porcelain") == ""
    result = g.cherry_pick(integ, fine)  # no sequence left behind to get in the way
    assert result.ok


def test_added_blobs_many_is_added_blobs_of_each(repo: Path, wt: Path) -> None:
    """One `git diff-tree --stdin` for all: the same answer as one call per commit, for a
    commit that changes nothing and for a merge (its first parent) too."""
    g = Git(repo)
    base = g.rev_parse("main")
    (wt / "small.txt").write_text("hi\n")
    (wt / "link").symlink_to("../outside")
    one = commit_file(wt, "src/a.py", "edited\n", "one")
    sh(wt, "rm", "--quiet", "src/b.py")
    sh(wt, "commit", "--quiet", "-m", "delete")
    deleted = sh(wt, "rev-parse", "HEAD")
    sh(wt, "commit", "--quiet", "--allow-empty", "-m", "empty")
    empty = sh(wt, "rev-parse", "HEAD")
    sh(wt, "switch", "--quiet", "-c", "side", base)
    side = commit_file(wt, "side.txt", "side\n", "side")
    sh(wt, "switch", "--quiet", "task")
    sh(wt, "merge", "--quiet", "--no-edit", "side")
    merge = sh(wt, "rev-parse", "HEAD")
    revs = [one, deleted, empty, side, merge, one]
    many = g.added_blobs_many(revs)
    assert many == {rev: g.added_blobs(rev) for rev in revs}
    assert {path for path, *_ in many[one]} == {"small.txt", "link", "src/a.py"}
    assert many[deleted] == [] and many[empty] == []
    assert [path for path, *_ in many[merge]] == ["side.txt"]
    assert g.added_blobs_many([]) == {}
    assert g.added_blobs_many(["main"]) == {"main": g.added_blobs("main")}  # a name, not a sha


def test_reset_hard_and_merge_ff_only(repo: Path, wt: Path) -> None:
    g = Git(repo)
    base = g.head()
    tip = commit_file(wt, "x.txt", "x\n")
    (wt / "junk").write_text("j")
    g.reset_hard(wt, base, clean=True)
    assert g.head(wt) == base and g.is_clean(wt)
    assert g.merge_ff_only(wt, tip) and g.head(wt) == tip
    other = commit_file(repo, "y.txt", "y\n")
    assert not g.merge_ff_only(wt, other) and g.head(wt) == tip


def test_update_ref_compare_and_swap(repo: Path) -> None:
    g = Git(repo)
    head, parent = g.head(), g.rev_parse("HEAD~1")
    g.update_ref("refs/herd/test", parent)
    g.update_ref("refs/herd/test", head, old=parent)
    assert g.rev_parse("refs/herd/test") == head
    with pytest.raises(RefMoved):
        g.update_ref("refs/herd/test", parent, old=parent)


# -- worktrees and branches ---------------------------------------------------


def test_worktree_add_replaces_crashed_leftovers(repo: Path, tmp_path: Path) -> None:
    g = Git(repo)
    path = tmp_path / "wt"
    g.worktree_add(path, "herd/r/t1", "main")
    commit_file(path, "left.txt", "from the crashed attempt\n")
    # Same path and branch again: replaced, branch back at base.
    g.worktree_add(path, "herd/r/t1", "main~1")
    assert g.head(path) == g.rev_parse("main~1") and not (path / "left.txt").exists()
    # Branch still checked out at the old path: a new path takes it over.
    path2 = tmp_path / "wt2"
    g.worktree_add(path2, "herd/r/t1", "main")
    assert not path.exists() and g.current_branch(path2) == "herd/r/t1"
    # A directory whose registration was lost.
    sh(repo, "worktree", "remove", "--force", str(path2))
    path2.mkdir()
    (path2 / ".git").write_text("gitdir: /nowhere\n")
    g.worktree_add(path2, "herd/r/t1", "main")
    assert g.is_clean(path2)
    # Something that is not ours is refused, not deleted.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "precious.txt").write_text("keep me")
    with pytest.raises(Refused):
        g.worktree_add(stranger, "herd/r/t2", "main")
    assert (stranger / "precious.txt").exists()


def test_worktree_remove_prune_and_branches(repo: Path, tmp_path: Path) -> None:
    g = Git(repo)
    for task in ["a", "b"]:
        g.worktree_add(tmp_path / task, f"herd/r1/{task}", "main")
    g.worktree_add(tmp_path / "other", "herd/r2/a", "main")
    assert g.branches("herd/r1") == ["herd/r1/a", "herd/r1/b"]
    assert g.branches("herd/*/a") == ["herd/r1/a", "herd/r2/a"]
    g.worktree_remove(tmp_path / "a")
    g.worktree_remove(tmp_path / "a")  # idempotent
    g.branch_delete("herd/r1/a")
    g.branch_delete("herd/r1/a")  # idempotent
    assert g.branches("herd/r1") == ["herd/r1/b"]
    sh(repo, "worktree", "lock", str(tmp_path / "b"))
    g.worktree_remove(tmp_path / "b")
    assert not (tmp_path / "b").exists()
    shutil.rmtree(tmp_path / "other")
    g.worktree_prune()
    assert [w.path for w in g.worktrees()] == [repo.resolve()]


# -- remotes and bundles ------------------------------------------------------


def test_fetch(repo_remote: tuple[Path, Path]) -> None:
    repo, remote = repo_remote
    g = Git(repo)
    assert g.fetch("origin", "main") == g.head()
    assert g.fetch(str(remote), "main") == g.head()
    assert g.fetch("origin", "no-such-branch") is None


def test_push_ok_then_rejected_when_remote_moved(repo_remote: tuple[Path, Path], tmp_path: Path) -> None:
    repo, remote = repo_remote
    g = Git(repo)
    mine = commit_file(repo, "mine.txt", "mine\n")
    assert g.push(repo, "origin", mine, "main").status is PushStatus.OK
    assert sh(remote, "rev-parse", "main") == mine
    assert g.push(repo, "origin", mine, "new-branch").ok

    other = tmp_path / "other"
    sh(tmp_path, "clone", "--quiet", str(remote), str(other))
    commit_file(other, "theirs.txt", "theirs\n")
    sh(other, "push", "--quiet", "origin", "main")

    late = commit_file(repo, "late.txt", "late\n")
    result = g.push(repo, "origin", late, "main")
    assert result.status is PushStatus.REJECTED and not result.ok
    assert sh(remote, "rev-parse", "main") != late

    assert g.push(repo, str(tmp_path / "missing.git"), late, "main").status is PushStatus.ERROR


def test_bundle_round_trip(repo_remote: tuple[Path, Path], wt: Path, tmp_path: Path) -> None:
    repo, remote = repo_remote
    g = Git(repo)
    base = g.head()
    (wt / "shipped.txt").write_text("over the wire\n")
    sha = g.squash(wt, base, "ship it", {"Herd-Task": "t9"}, branch="task")
    bundle = tmp_path / "t9.bundle"
    g.bundle_create(bundle, f"{base}..task")

    other = tmp_path / "other"
    sh(tmp_path, "clone", "--quiet", str(remote), str(other))
    og = Git(other)
    og.fetch_bundle(bundle, sha, "refs/herd/incoming/t9")
    assert og.rev_parse("refs/herd/incoming/t9") == sha
    assert og.trailers(f"{base}..refs/herd/incoming/t9", "Herd-Task") == {"t9": sha}
    with pytest.raises(NotFound):
        og.fetch_bundle(bundle, base, "refs/herd/incoming/x")


def test_identity_fallback_without_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for var in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"]:
        monkeypatch.delenv(var, raising=False)
    repo = tmp_path / "bare-identity"
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    (repo / "f").write_text("f")
    sha = Git(repo).commit_all(repo, "first")
    assert sha is not None
    assert sh(repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>") == (
        "herd <herd@localhost> / herd <herd@localhost>"
    )


def test_shorts_names_many_commits_in_one_call(repo: Path, wt: Path) -> None:
    g = Git(repo)
    first = g.rev_parse("main")
    (wt / "more.txt").write_text("more\n")
    second = g.squash(wt, first, "more", {"Herd-Task": "t2"}, branch="task")
    assert g.shorts([second, first, second]) == {first: g.short(first), second: g.short(second)}
    assert g.shorts([]) == {}


def test_branches_delete_removes_them_all_and_refuses_a_checked_out_one(repo: Path, wt: Path) -> None:
    g = Git(repo)
    for name in ("herd/r/a", "herd/r/b"):
        sh(repo, "branch", name, "main")
    g.branches_delete(["herd/r/a", "herd/r/b"])
    assert g.branches("herd/r") == []
    with pytest.raises(GitError):
        g.branches_delete(["task"])  # checked out in the worktree `wt`
    assert g.branches("task") == ["task"]


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_added_blobs_sizes_loose_or_packed(repo: Path, wt: Path, packed: bool) -> None:
    """Sizes come from the loose objects' headers, or from git once they are packed."""
    g = Git(repo)
    base = g.rev_parse("main")
    (wt / "big.bin").write_bytes(bytes(range(256)) * 4000)  # 1,024,000 bytes
    (wt / "small.txt").write_text("hi\n")
    (wt / "link").symlink_to("../outside")
    sha = g.squash(wt, base, "blobs", {"Herd-Task": "t1"}, branch="task")
    if packed:
        sh(repo, "gc", "--quiet")
        assert not any((repo / ".git" / "objects").glob("??/*"))
    blobs = g.added_blobs(sha)
    # Which way the sizes came: the loose headers, or (packed) git.
    assert (g._loose_blob_sizes([blob for _, _, blob, _ in blobs]) is None) == packed
    found = {path: (mode, size) for path, mode, _, size in blobs}
    assert found == {
        "big.bin": ("100644", 1_024_000),
        "small.txt": ("100644", 3),
        "link": ("120000", len("../outside")),
    }
