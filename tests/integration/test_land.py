"""Landing end to end: real repos, a bare remote with an update hook that logs each push,
the real CLI in a subprocess, fake agents that really edit files and commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _cli import run_herd
from conftest import git, make_repo

SRC = Path(__file__).resolve().parents[2] / "src"

# The fake agent and test scripts use only the standard library: -S skips site, and with it
# coverage's subprocess hook (a measured start costs ~4x an unmeasured one; these are not herd).
PY = f"{sys.executable} -S"

AGENT = textwrap.dedent('''\
    #!/usr/bin/env python3
    """Fake agent: appends a line for its task to the file its scope names
    (or shared.txt when it has no scope), then commits."""
    import os, re, subprocess, sys
    context = open(os.environ["HERD_CONTEXT_FILE"]).read()
    title = re.search(r"^\\*\\*Title\\*\\*: (.*)$", context, re.M).group(1)
    scope = re.search(r"^\\*\\*Scope\\*\\*: (\\S+) \\(can modify\\)", context, re.M)
    target = scope.group(1) if scope else "shared.txt"
    line = "BROKEN" if "BREAK" in title else os.environ["HERD_TASK_ID"]
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open(target, "a") as f:
        f.write(line + "\\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-qm", "work"], check=True)
''')

# Fails when any tracked file says BROKEN; with MOVE_REMOTE set, the first N runs also
# push a commit to the remote from another clone (someone else pushing mid-run).
TEST_CMD = textwrap.dedent("""\
    #!/usr/bin/env python3
    import os, pathlib, subprocess, sys
    counter = pathlib.Path(os.environ["TEST_COUNTER"])
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    moves = int(os.environ.get("MOVE_REMOTE", "0"))
    if n <= moves:
        other = pathlib.Path(os.environ["OTHER_CLONE"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        run = lambda *a: subprocess.run(["git", *a], cwd=other, check=True, env=env,
                                        capture_output=True)
        run("pull", "-q", "--rebase", "origin", "main")
        (other / f"someone-{n}.txt").write_text("x\\n")
        run("add", "-A"); run("commit", "-qm", f"someone else {n}"); run("push", "-q", "origin", "main")
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout.split()
    bad = [f for f in files if "BROKEN" in pathlib.Path(f).read_text(errors="replace")]
    if os.environ.get("BASE_BROKEN"):
        bad.append("base")
    print("broken:", bad)
    sys.exit(1 if bad else 0)
""")


def herd(
    repo: Path, *args: str, env: dict[str, str] | None = None, check: int | None = 0, real: bool = False
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    proc = run_herd(args, cwd=repo, env=full, timeout=300, real=real)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def shop(tmp_path: Path) -> dict[str, Path]:
    repo, remote = make_repo(tmp_path)
    log = tmp_path / "pushes.log"
    hook = remote / "hooks" / "update"
    hook.write_text(f'#!/bin/sh\necho "$1 $2 $3" >> {log}\n')
    hook.chmod(0o755)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    test = tmp_path / "test.py"
    test.write_text(TEST_CMD)
    test.chmod(0o755)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "config", "user.email", "other@example.invalid")
    git(other, "config", "user.name", "Other")
    herd(repo, "init", "--prefix", "t")
    return {
        "repo": repo,
        "remote": remote,
        "log": log,
        "agent": agent,
        "test": test,
        "other": other,
        "counter": tmp_path / "tests.count",
        "tmp": tmp_path,
    }


def create(repo: Path, title: str, *extra: str) -> str:
    return herd(repo, "create", title, "--criteria", "done", *extra).stdout.strip()


def run(
    shop: dict[str, Path],
    ids: list[str],
    *extra: str,
    env: dict[str, str] | None = None,
    check: int | None = 0,
) -> subprocess.CompletedProcess[str]:
    full = {"TEST_COUNTER": str(shop["counter"]), "OTHER_CLONE": str(shop["other"]), **(env or {})}
    return herd(
        shop["repo"],
        "run",
        *ids,
        "--cmd",
        f"{PY} {shop['agent']}",
        "-j",
        "4",
        "--test-cmd",
        f"{PY} {shop['test']}",
        *extra,
        env=full,
        check=check,
    )


def pushes(shop: dict[str, Path]) -> list[str]:
    return shop["log"].read_text().splitlines() if shop["log"].exists() else []


def remote_log(shop: dict[str, Path]) -> list[str]:
    return git(shop["remote"], "log", "--format=%s", "main").splitlines()


def trailers(shop: dict[str, Path]) -> list[str]:
    out = git(shop["remote"], "log", "--format=%(trailers:key=Herd-Task,valueonly)", "main")
    return [line for line in out.splitlines() if line.strip()]


def status(repo: Path, issue: str) -> str:
    return str(json.loads(herd(repo, "show", issue, "--json").stdout)[0]["status"])


def count_tests(shop: dict[str, Path]) -> int:
    return int(shop["counter"].read_text()) if shop["counter"].exists() else 0


def test_ten_tasks_land_in_one_push(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(10)]
    run(shop, ids, "--push")
    assert len(pushes(shop)) == 1
    assert sorted(trailers(shop)) == sorted(ids)
    assert all(status(shop["repo"], i) == "closed" for i in ids)
    issue = json.loads(herd(shop["repo"], "show", ids[0], "--json").stdout)[0]
    assert issue["close_reason"].startswith("landed in ")
    # The user's checked-out, clean main was fast-forwarded; no herd branches or worktrees left.
    assert git(shop["repo"], "rev-parse", "main") == git(shop["remote"], "rev-parse", "main")
    assert git(shop["repo"], "branch", "--list", "herd/*") == ""
    assert len(git(shop["repo"], "worktree", "list").splitlines()) == 1
    assert count_tests(shop) == 1


def test_culprit_found_by_bisection_in_at_most_seven_test_runs(shop: dict[str, Path]) -> None:
    ids = [
        create(shop["repo"], f"task {n}" + (" BREAK" if n == 5 else ""), "--scope", f"src/m{n}.py")
        for n in range(8)
    ]
    proc = run(shop, ids, "--push", check=1)
    culprit = ids[5]
    assert count_tests(shop) <= 7, proc.stderr
    assert sorted(trailers(shop)) == sorted(i for i in ids if i != culprit)
    assert status(shop["repo"], culprit) == "open"
    comments = herd(shop["repo"], "comments", culprit).stdout
    assert "ejected" in comments and "broken:" in comments
    assert len(pushes(shop)) == 1
    assert git(shop["repo"], "branch", "--list", "herd/*").strip().endswith(culprit)


def test_someone_else_pushes_mid_run(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(3)]
    run(shop, ids, "--push", env={"MOVE_REMOTE": "1"})
    subjects = remote_log(shop)
    assert "someone else 1" in subjects
    assert sorted(trailers(shop)) == sorted(ids)
    # Herd's one push plus the other clone's push.
    assert len(pushes(shop)) == 2
    assert count_tests(shop) == 2  # once on the stack, once after rebasing onto the new remote tip


def test_push_rejected_again_and_again_exits_5_and_keeps_the_stack(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    proc = run(shop, ids, "--push", env={"MOVE_REMOTE": "99"}, check=None)
    assert proc.returncode in (5,), proc.stderr
    assert all(status(shop["repo"], i) != "closed" for i in ids)
    assert "herd resume" in proc.stdout + proc.stderr
    assert git(shop["repo"], "branch", "--list", "herd/*/stack") != ""


def test_crash_right_after_push_then_resume_lands_exactly_once(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(4)]
    proc = run(shop, ids, "--push", env={"HERD_FAILPOINT": "after-push"}, check=99)
    assert len(pushes(shop)) == 1
    assert all(status(shop["repo"], i) != "closed" for i in ids)
    run_id = json.loads(herd(shop["repo"], "runs", "--json").stdout)[0]["id"]
    herd(shop["repo"], "resume", run_id, env={"TEST_COUNTER": str(shop["counter"])})
    assert len(pushes(shop)) == 1, "resume must not push again"
    assert sorted(trailers(shop)) == sorted(ids)
    assert all(status(shop["repo"], i) == "closed" for i in ids), proc.stderr


@pytest.mark.parametrize("point", ["mid-stack", "before-close"])
def test_crash_during_landing_then_resume(shop: dict[str, Path], point: str) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(3)]
    run(shop, ids, "--push", env={"HERD_FAILPOINT": point}, check=99)
    run_id = json.loads(herd(shop["repo"], "runs", "--json").stdout)[0]["id"]
    herd(shop["repo"], "resume", run_id, env={"TEST_COUNTER": str(shop["counter"])})
    assert len(pushes(shop)) == 1
    assert sorted(trailers(shop)) == sorted(ids)
    assert all(status(shop["repo"], i) == "closed" for i in ids)


def test_tests_failing_on_the_base_exit_5_and_touch_nothing(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    before = git(shop["repo"], "rev-parse", "main")
    proc = run(shop, ids, "--push", env={"BASE_BROKEN": "1"}, check=5)
    assert "base" in proc.stderr + proc.stdout
    assert pushes(shop) == []
    assert git(shop["repo"], "rev-parse", "main") == before
    assert all(status(shop["repo"], i) != "closed" for i in ids)


def test_conflicting_pick_is_retried_on_top_of_the_stack(shop: dict[str, Path]) -> None:
    # No scopes: both append to shared.txt, so the second pick conflicts and is redone.
    ids = [create(shop["repo"], f"shared {n}") for n in range(2)]
    run(shop, ids, "--push")
    assert sorted(trailers(shop)) == sorted(ids)
    shared = git(shop["remote"], "show", "main:shared.txt").splitlines()
    assert sorted(shared) == sorted(ids)


def test_without_push_the_local_branch_moves_and_nothing_is_pushed(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    run(shop, ids)
    assert pushes(shop) == []
    subjects = git(shop["repo"], "log", "--format=%s", "main").splitlines()
    assert any(ids[0] in s for s in subjects) and any(ids[1] in s for s in subjects)


def test_a_dirty_checkout_is_never_touched(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    (shop["repo"] / "README.md").write_text("local edit\n")
    before = git(shop["repo"], "rev-parse", "main")
    proc = run(shop, ids, check=5)  # not landed: the commits are only on the stack branch
    assert git(shop["repo"], "rev-parse", "main") == before
    assert (shop["repo"] / "README.md").read_text() == "local edit\n"
    assert "uncommitted changes" in proc.stdout + proc.stderr
    assert git(shop["repo"], "branch", "--list", "herd/*/stack") != ""


def test_epic_closes_when_all_children_land(shop: dict[str, Path]) -> None:
    epic = herd(shop["repo"], "create", "Epic", "-t", "epic").stdout.strip()
    kids = [create(shop["repo"], f"child {n}", "--parent", epic, "--scope", f"src/c{n}.py") for n in range(2)]
    herd(shop["repo"], "run", "--parent", epic, "--cmd", f"{PY} {shop['agent']}", "--push")
    assert all(status(shop["repo"], k) == "closed" for k in kids)
    assert status(shop["repo"], epic) == "closed"


def test_format_command_becomes_one_commit(shop: dict[str, Path]) -> None:
    fmt = shop["tmp"] / "fmt.py"
    fmt.write_text("import pathlib\npathlib.Path('FORMATTED').write_text('yes\\n')\n")
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    run(shop, ids, "--push", "--format-cmd", f"{PY} {fmt}")
    subjects = remote_log(shop)
    assert subjects[0] == "herd: format"
    assert sorted(trailers(shop)) == sorted(ids)


def test_overlapping_scopes_run_in_waves_and_both_land(shop: dict[str, Path]) -> None:
    first = create(shop["repo"], "first", "--scope", "src/shared.py")
    second = create(shop["repo"], "second", "--scope", "src/shared.py", "--scope", "src/o.py")
    proc = run(shop, [first, second], "--push")
    assert "wave 2" in proc.stderr
    shared = git(shop["remote"], "show", "main:src/shared.py").splitlines()
    assert shared == [first, second]  # the second wave started from the first one's commit
    assert len(pushes(shop)) == 1


def test_local_commits_not_yet_pushed_land_with_the_stack(shop: dict[str, Path]) -> None:
    (shop["repo"] / "src" / "local.py").write_text("local work\n")
    git(shop["repo"], "add", "-A")
    git(shop["repo"], "commit", "-qm", "local, unpushed")
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(2)]
    proc = run(shop, ids, "--push")
    assert "1 commit ahead" in proc.stdout + proc.stderr
    assert "pushed 3 commits to origin/main" in proc.stdout  # the local one went out too
    assert "local, unpushed" in remote_log(shop)
    assert sorted(trailers(shop)) == sorted(ids)
    assert git(shop["repo"], "rev-parse", "main") == git(shop["remote"], "rev-parse", "main")


def test_no_integrate_keeps_the_claim_without_a_lease(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    herd(shop["repo"], "run", *ids, "--cmd", f"{PY} {shop['agent']}", "--no-integrate")
    issue = json.loads(herd(shop["repo"], "show", ids[0], "--json").stdout)[0]
    assert issue["status"] == "in_progress" and issue["assignee"].startswith("herd:")
    comments = herd(shop["repo"], "comments", ids[0]).stdout
    assert "not landed (--no-integrate)" in comments and f"/{ids[0]}" in comments
    import sqlite3

    lease = (
        sqlite3.connect(shop["repo"] / ".herd" / "herd.db")
        .execute("SELECT lease_expires_at FROM claims WHERE issue_id = ?", (ids[0],))
        .fetchone()
    )
    assert lease == (None,)
    assert pushes(shop) == []


def test_a_remote_given_as_a_relative_path_works(shop: dict[str, Path]) -> None:
    git(shop["repo"], "remote", "set-url", "origin", "../remote.git")
    ids = [create(shop["repo"], "task", "--scope", "src/m.py")]
    run(shop, ids, "--push")
    assert trailers(shop) == ids


def test_a_worktree_that_cannot_be_made_fails_that_task_only(shop: dict[str, Path]) -> None:
    bad = create(shop["repo"], "bad", "--scope", "src/bad.py")
    good = create(shop["repo"], "good", "--scope", "src/good.py")
    hook = shop["repo"] / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\ncase "$PWD" in *{bad}-a*) echo "disk full" >&2; exit 1;; esac\n')
    hook.chmod(0o755)
    proc = run(shop, [bad, good], "--push", check=1)
    assert trailers(shop) == [good]
    assert status(shop["repo"], bad) == "open"
    comments = herd(shop["repo"], "comments", bad).stdout
    assert "could not prepare the attempt's worktree" in comments, proc.stderr


def test_land_lands_what_a_no_integrate_run_left(shop: dict[str, Path]) -> None:
    """`herd run --no-integrate` then `herd land RUN`: the same landing `herd run` does; in
    between, running the held tasks again says to land them instead."""
    ids = [create(shop["repo"], f"task {n}", "--scope", f"src/m{n}.py") for n in range(3)]
    herd(shop["repo"], "run", *ids, "--cmd", f"{PY} {shop['agent']}", "--no-integrate")
    run_id = json.loads(herd(shop["repo"], "runs", "--json").stdout)[0]["id"]
    again = herd(shop["repo"], "run", ids[0], "--cmd", "true", check=4)
    assert f"{ids[0]} is held by run {run_id} (succeeded, not landed): `herd land {run_id}`" in again.stderr
    env = {"TEST_COUNTER": str(shop["counter"]), "OTHER_CLONE": str(shop["other"])}
    landed = herd(shop["repo"], "land", run_id, "--test-cmd", f"{PY} {shop['test']}", "--push", env=env)
    assert f"run {run_id}: 3 succeeded, 3 landed, 0 ejected, 0 failed" in landed.stdout
    assert sorted(trailers(shop)) == sorted(ids) and len(pushes(shop)) == 1
    assert count_tests(shop) == 1
    assert all(status(shop["repo"], i) == "closed" for i in ids)
    nothing = herd(shop["repo"], "land", run_id, check=4)
    assert "no succeeded task waiting to land (3 landed already)" in nothing.stderr
    herd(shop["repo"], "land", "no-such-run", check=3)


def test_update_takes_several_ids(shop: dict[str, Path]) -> None:
    ids = [create(shop["repo"], f"task {n}") for n in range(2)]
    done = herd(shop["repo"], "update", *ids, "-p", "1", "--json")
    assert [i["priority"] for i in json.loads(done.stdout)] == [1, 1]
    herd(shop["repo"], "update", ids[0], "nope-zzz", "-p", "3", check=3)
    assert json.loads(herd(shop["repo"], "show", ids[0], "--json").stdout)[0]["priority"] == 1
