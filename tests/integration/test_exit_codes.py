"""Exit codes follow the contract when git fails mid-run: real repositories, the real CLI.

git failing half-way through a run is not bad input (exit 2): the run stops with the
landing-failed code (5), its journal says so, and `herd resume` finishes it once git works.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from conftest import git
from test_land import create, herd, shop

__all__ = ["shop"]  # the fixture, imported for pytest

# After the tests pass, landing moves `main`, which is checked out nowhere: `git update-ref`.
# The test command plants (once) the lock git takes on that ref: update-ref fails mid-landing.
LOCKING_TEST = textwrap.dedent("""\
    #!/usr/bin/env python3
    import pathlib, sys
    lock, done = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if not done.exists():  # once: the resume's test run leaves git alone
        done.write_text("")
        lock.write_text("")
""")


def test_git_failing_mid_run_exits_5_not_2_and_resume_finishes(shop: dict[str, Path]) -> None:
    repo = shop["repo"]
    git(repo, "switch", "-q", "-c", "side")  # main is checked out nowhere now
    task = create(repo, "task", "--scope", "src/m.py")
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    locking = shop["tmp"] / "locking_test.py"
    locking.write_text(LOCKING_TEST)
    before = git(repo, "rev-parse", "main")
    test_cmd = f"{sys.executable} {locking} {lock} {shop['tmp'] / 'locked-once'}"
    proc = herd(
        repo,
        "run",
        task,
        "--cmd",
        f"{sys.executable} {shop['agent']}",
        "--branch",
        "main",
        "--test-cmd",
        test_cmd,
        check=None,
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert lock.exists()
    assert "git failed mid-run" in proc.stderr and "update-ref" in proc.stderr
    run_id = json.loads(herd(repo, "runs", "--json").stdout)[0]["id"]
    assert f"herd resume {run_id}" in proc.stderr
    assert git(repo, "rev-parse", "main") == before
    recorded = json.loads(herd(repo, "status", run_id, "--json").stdout)
    assert recorded["state"] == "failed" and recorded["exit_code"] == 5, recorded
    assert recorded["resume"] == f"herd resume {run_id}"

    lock.unlink()
    herd(repo, "resume", run_id)
    assert task in git(repo, "log", "--format=%s", "main")
    assert json.loads(herd(repo, "show", task, "--json").stdout)[0]["status"] == "closed"
