"""Landing never moves a branch behind anyone's back: a checked-out branch only moves by a
fast-forward of a clean checkout, a task counts as landed only when its commit is on the
target branch (or pushed), and `herd resume` finishes what landing could not."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from conftest import git
from test_land import create, herd, pushes, run, shop, status, trailers

__all__ = ["shop"]  # the fixture, imported for pytest


def _run_id(repo: Path) -> str:
    return str(json.loads(herd(repo, "runs", "--json").stdout)[0]["id"])


def _other_worktree_on_main(shop: dict[str, Path]) -> Path:
    """The user works on `dev` here; `main` is checked out in a second worktree."""
    repo = shop["repo"]
    git(repo, "checkout", "-q", "-b", "dev")
    other = shop["tmp"] / "main-wt"
    git(repo, "worktree", "add", "-q", str(other), "main")
    return other


def test_a_clean_checkout_in_another_worktree_is_fast_forwarded_not_rewritten(shop: dict[str, Path]) -> None:
    other = _other_worktree_on_main(shop)
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    run(shop, ids, "--branch", "main")
    main = git(shop["repo"], "rev-parse", "main")
    assert git(other, "rev-parse", "HEAD") == main
    assert sorted(trailers_of(shop["repo"], "main")) == sorted(ids)
    # The other checkout moved with its branch: no staged reversions, the files are there.
    assert git(other, "status", "--porcelain") == ""
    assert (other / "src" / "m0.py").read_text().strip() == ids[0]


def test_a_dirty_checkout_in_another_worktree_is_not_touched(shop: dict[str, Path]) -> None:
    other = _other_worktree_on_main(shop)
    (other / "README.md").write_text("work in progress over there\n")
    before = git(shop["repo"], "rev-parse", "main")
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    proc = run(shop, ids, "--branch", "main", check=5)
    out = proc.stdout + proc.stderr
    assert git(shop["repo"], "rev-parse", "main") == before
    assert git(other, "status", "--porcelain") == "M README.md"
    assert f"checked out in {other}" in out and "uncommitted changes" in out, out
    assert git(shop["repo"], "branch", "--list", "herd/*/stack") != ""
    assert status(shop["repo"], ids[0]) != "closed"


def test_an_untracked_file_does_not_block_the_fast_forward(shop: dict[str, Path]) -> None:
    (shop["repo"] / "scratch.txt").write_text("the user's notes\n")
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    proc = run(shop, ids)
    assert ids[0] in git(shop["repo"], "log", "-1", "--format=%B", "main"), proc.stderr
    assert git(shop["repo"], "status", "--porcelain") == "?? scratch.txt"
    assert (shop["repo"] / "scratch.txt").read_text() == "the user's notes\n"
    assert status(shop["repo"], ids[0]) == "closed"


def test_an_untracked_file_the_fast_forward_would_overwrite_stops_it(shop: dict[str, Path]) -> None:
    (shop["repo"] / "src" / "m.py").write_text("the user's own, untracked\n")
    before = git(shop["repo"], "rev-parse", "main")
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    proc = run(shop, ids, check=5)
    assert git(shop["repo"], "rev-parse", "main") == before
    assert (shop["repo"] / "src" / "m.py").read_text() == "the user's own, untracked\n"
    assert "cannot be fast-forwarded" in proc.stdout + proc.stderr
    assert status(shop["repo"], ids[0]) != "closed"


def test_a_dirty_checkout_without_push_is_not_landed_and_resume_finishes_it(shop: dict[str, Path]) -> None:
    repo = shop["repo"]
    ids = [create(repo, f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    (repo / "README.md").write_text("local edit\n")
    before = git(repo, "rev-parse", "main")
    proc = run(shop, ids, check=5)
    out = proc.stdout + proc.stderr
    run_id = _run_id(repo)
    assert git(repo, "rev-parse", "main") == before
    assert all(status(repo, i) != "closed" for i in ids)
    assert f"herd resume {run_id}" in out, out
    assert "landed in" not in json.dumps(json.loads(herd(repo, "show", *ids, "--json").stdout))
    # The user finishes their edit; resume lands the run on main.
    git(repo, "checkout", "README.md")
    herd(repo, "resume", run_id, env={"TEST_COUNTER": str(shop["counter"])})
    assert sorted(trailers_of(repo, "main")) == sorted(ids)
    assert all(status(repo, i) == "closed" for i in ids)
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "branch", "--list", "herd/*") == ""


def test_crash_after_push_then_resume_fast_forwards_the_local_branch(shop: dict[str, Path]) -> None:
    repo = shop["repo"]
    ids = [create(repo, f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    run(shop, ids, "--push", env={"HERD_FAILPOINT": "after-push"}, check=99)
    herd(repo, "resume", _run_id(repo), env={"TEST_COUNTER": str(shop["counter"])})
    assert len(pushes(shop)) == 1
    assert git(repo, "rev-parse", "main") == git(shop["remote"], "rev-parse", "main")
    assert git(repo, "status", "--porcelain") == ""


CLOSING_AGENT = textwrap.dedent("""\
    import os, subprocess, sys
    task = os.environ["HERD_TASK_ID"]
    folder = "src"
    if "CLOSE-ME" in open(os.environ["HERD_CONTEXT_FILE"]).read():
        # The user, in another terminal, decides this task is not wanted after all.
        subprocess.run([sys.executable, "-m", "herd", "close", task, "--reason", "not wanted",
                        "--force"], check=True, capture_output=True)
        folder = "tests"
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/{task}.py", "a") as f:
        f.write(task + "\\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "work"], check=True)
""")


def test_a_task_closed_by_the_user_during_the_run_is_not_landed(shop: dict[str, Path]) -> None:
    repo = shop["repo"]
    agent = shop["tmp"] / "closing_agent.py"
    agent.write_text(CLOSING_AGENT)
    keep = create(repo, "keep", "--scope", "src/*.py")
    drop = create(repo, "drop CLOSE-ME", "--scope", "tests/*.py")
    proc = herd(repo, "run", keep, drop, "--cmd", f"{sys.executable} {agent}", "--push", check=1)
    out = proc.stdout + proc.stderr
    assert trailers(shop) == [keep]
    assert f"skipped {drop}" in out and "closed while the run was in progress" in out, out
    shown = json.loads(herd(repo, "show", drop, "--json").stdout)[0]
    assert shown["close_reason"] == "not wanted"
    assert git(repo, "branch", "--list", f"herd/*/{drop}") != ""  # its work is not lost


def test_a_push_that_loses_the_ref_lock_race_is_retried(shop: dict[str, Path]) -> None:
    """Two pushes at once: the loser's git says `[remote rejected] (failed to update ref)`,
    not `[rejected]`; it is the same situation (the branch moved) and is retried."""
    other, remote = shop["other"], shop["remote"]
    (other / "theirs.txt").write_text("pushed at the same moment\n")
    git(other, "add", "-A")
    git(other, "commit", "-qm", "their concurrent push")
    git(other, "push", "-q", "origin", "HEAD:refs/heads/theirs")
    theirs = git(other, "rev-parse", "HEAD")
    hook = remote / "hooks" / "update"
    hook.write_text(
        hook.read_text()
        + textwrap.dedent(f"""\
        if [ "$1" = refs/heads/main ] && [ ! -e "$GIT_DIR/raced" ]; then
            touch "$GIT_DIR/raced"; git update-ref refs/heads/main {theirs}
        fi
    """)
    )
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    proc = run(shop, ids, "--push")
    assert "push rejected" in proc.stdout + proc.stderr
    assert sorted(trailers(shop)) == sorted(ids)
    assert "their concurrent push" in git(remote, "log", "--format=%s", "main")


def trailers_of(repo: Path, rev: str) -> list[str]:
    out = git(repo, "log", "--format=%(trailers:key=Herd-Task,valueonly)", rev)
    return [line for line in out.splitlines() if line.strip()]
