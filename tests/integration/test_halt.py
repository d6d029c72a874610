"""`--halt`: one policy (engine/policies.py: Halt), the same on herd map, pipeline and run.

herd map's output and exit code are compared with GNU parallel's for the same command
lines; herd run's halt stops the workers and leaves the rest for `herd resume`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from _run_helpers import Project, run_processes
from test_map import herd, latest_run

# Prints its item; fails with the item as exit code when the item is even.
JOB = 'echo "$1"; exit $(( $1 % 2 == 0 ? $1 : 0 ))'
ITEMS = [str(n) for n in range(1, 7)]

needs_parallel = pytest.mark.skipif(
    shutil.which("parallel") is None, reason="GNU parallel is not installed (apt-get install parallel)"
)


def _gnu(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["parallel", "-j1", "-q", *options, "sh", "-c", JOB, "_", "{}", ":::", *ITEMS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_parallel
@pytest.mark.parametrize(
    "halt", ["now,fail=1", "soon,fail=2", "soon,fail=30%", "now,success=2", "soon,done=3", "2", "1"]
)
def test_map_halts_where_gnu_parallel_does_with_its_exit_code(tmp_path: Path, halt: str) -> None:
    gnu = _gnu(tmp_path, "--halt", halt)
    ours = herd(
        tmp_path,
        "map",
        "-j",
        "1",
        "--retries",
        "0",
        "--halt",
        halt,
        *ITEMS,
        "--",
        "sh",
        "-c",
        JOB,
        "_",
        "{}",
        check_code=None,
    )
    assert (ours.stdout, ours.returncode) == (gnu.stdout, gnu.returncode), ours.stderr


def test_map_halt_is_journaled_and_resume_runs_the_rest(tmp_path: Path) -> None:
    job = f"test -e broken || exit 0; {JOB}"  # even items fail while ./broken exists
    (tmp_path / "broken").touch()
    done = herd(
        tmp_path,
        "map",
        "-j",
        "1",
        "--retries",
        "0",
        "--halt",
        "now,fail=1",
        *ITEMS,
        "--",
        "sh",
        "-c",
        job,
        "_",
        "{}",
        check_code=2,
    )
    assert done.stdout.split() == ["1", "2"]
    assert "halted (--halt now,fail=1: 1 failed" in done.stderr
    run = latest_run(tmp_path)
    assert run["state"] == "partial" and run["exit_code"] == 2
    # Nothing after the halt ran. Once the cause is fixed, `--resume` runs what did not
    # succeed, under the same rules (its --halt included).
    (tmp_path / "broken").unlink()
    again = herd(tmp_path, "map", "--resume", run["id"])
    assert again.stdout.split() == []  # the job prints only when ./broken exists
    counts = latest_run(tmp_path)["summary"]["counts"]
    assert counts == {"succeeded": 6}


def test_map_halt_now_kills_running_jobs(tmp_path: Path) -> None:
    slow = 'if [ "$1" = fail ]; then exit 3; fi; sleep 30; echo "$1"'
    started = time.monotonic()
    done = herd(
        tmp_path,
        "map",
        "-j",
        "3",
        "--retries",
        "0",
        "--halt",
        "now,fail=1",
        "slow1",
        "slow2",
        "fail",
        "--",
        "sh",
        "-c",
        slow,
        "_",
        "{}",
        check_code=3,
    )
    assert time.monotonic() - started < 20
    assert done.stdout == ""


def test_a_bad_halt_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = herd(tmp_path, "map", "--halt", "sometimes", "a", "--", "touch", "{}", check_code=2)
    assert "--halt 'sometimes'" in done.stderr
    assert not (tmp_path / "a").exists()


def test_pipeline_halts_on_its_first_failure(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        'items = ["1", "2", "3", "4", "5", "6"]\n'
        f'[[stage]]\nname = "check"\ncmd = ["sh", "-c", {json.dumps(JOB)}, "_"]\n'
    )
    done = herd(tmp_path, "pipeline", "p.toml", "--retries", "0", "--halt", "now,fail=1", check_code=2)
    # A failed invocation's output is not passed on; nothing after it started.
    assert done.stdout.split() == ["1"]
    assert "halted" in done.stderr


def test_run_halt_now_stops_the_other_workers_and_resume_finishes(tmp_path: Path) -> None:
    p = Project(tmp_path, files=3)
    bad = p.create("Fails", "fail-attempts: 9", scope=["src/m0.py"])
    slow = [p.create(f"Slow {n}", "sleep: 30", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in (1, 2)]
    started = time.monotonic()
    done = p.run(bad, *slow, "-j", "3", "--retries", "0", "--halt", "now,fail=1", "--no-integrate", check=1)
    assert time.monotonic() - started < 25, "the slow workers were waited for"
    run_id = p.latest_run()
    assert run_processes(run_id) == []
    for task_id in slow:
        shown = p.show(task_id)
        assert shown["status"] == "open" and not shown.get("assignee"), shown
    ended = {e["task"]: e for e in p.events(run_id) if e["event"] == "task_end"}
    assert ended[bad]["state"] == "failed"
    assert all(ended[t]["state"] == "deferred" and "--halt now,fail=1" in ended[t]["reason"] for t in slow)
    assert "halted" in done.stdout + done.stderr
