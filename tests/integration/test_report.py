"""`herd report` on real runs (the demo with a bisection and an ejection; a run with
failures of two causes), a map-kind journal, verification, follow-ups, and the HTML
report rendered in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _queue_helpers import herd, herd_json
from _report_helpers import CHROMIUM, CHROMIUM_FLAGS, demo_repo, run_args, task_repo

from herd.engine.journal import Journal, RunState, TaskState
from herd.queue.core import init as queue_init
from herd.views import report as report_mod


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_repo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo, _, worker = task_repo(tmp_path_factory.mktemp("failing"))
    herd(*run_args(worker, "-j", "3"), cwd=repo, check=1, timeout=120)
    return repo


def report_json(repo: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(herd("report", "--format", "json", *args, cwd=repo).stdout)
    return data


def test_demo_counts_attempts_tests_and_landing(demo: Path) -> None:
    data = report_json(demo)
    assert data["counts"] == {"expected": 12, "processed": 11, "failed": 0, "deferred": 0, "ejected": 1}
    by_state = {t["state"] for t in data["tasks"]}
    assert by_state == {"landed", "ejected"}
    flaky = next(t for t in data["tasks"] if "flaky" in t["title"])
    assert flaky["exit_codes"] == [1, 0] and len(flaky["attempts"]) == 2
    assert all(re.fullmatch(r"[0-9a-f]{40}", t["landed"]) for t in data["tasks"] if t["state"] == "landed")
    purposes = [t["purpose"] for t in data["test_runs"]]
    assert purposes[:2] == ["stack", "rerun"] and "bisect" in purposes
    assert purposes[-1] == "stack" and data["test_runs"][-1]["passed"]
    [group] = data["failure_groups"]
    ejected = next(t for t in data["tasks"] if t["state"] == "ejected")
    assert group["tasks"] == [ejected["id"]]
    assert group["line"] == "FAILED: 1 broken functions"  # the test output, not the worker's


def test_default_is_latest_run_in_markdown(demo: Path) -> None:
    latest = herd_json("runs", cwd=demo)[0]["id"]
    text = herd("report", cwd=demo).stdout
    assert text.startswith(f"# herd run {latest}: partial")
    assert "| 12 | 11 | 0 | 1 | 0 |" in text
    assert "## Failures: 1, 1 cause" in text and "| bisect |" in text


def test_failures_grouped_by_cause(failing: Path) -> None:
    data = report_json(failing)
    assert data["counts"] == {"expected": 8, "processed": 5, "failed": 3, "deferred": 0, "ejected": 0}
    groups = data["failure_groups"]
    assert [g["count"] for g in groups] == [2, 1]
    assert "cannot reach api.example.invalid for <id>" in groups[0]["signature"]
    assert "No space left on device" in groups[1]["line"]
    assert groups[1]["signature"].endswith("No space left on device: '<path>'")
    failed = next(t for t in data["tasks"] if t["state"] == "failed")
    assert failed["exit_codes"] == [failed["attempts"][0]["exit_code"]] and failed["duration"] > 0
    text = herd("report", cwd=failing).stdout
    assert "## Failures: 3, 2 causes" in text


def test_verification_is_seeded_and_reported(failing: Path) -> None:
    # The check really looks at the repository: the task's commit is on main.
    check = "git log --oneline -1 --grep {}"
    first = report_json(failing, "--verify-cmd", check, "--sample", "3", "--seed", "42")
    again = report_json(failing, "--verify-cmd", check, "--sample", "3", "--seed", "42")
    v = first["verification"]
    assert v["seed"] == 42 and v["sample"] == 3 and v["population"] == 5 and v["passed"] == 3
    assert [r["task"] for r in v["results"]] == [r["task"] for r in again["verification"]["results"]]
    assert all(r["argv"][-1] == r["task"] for r in v["results"])
    proc = herd("report", "--verify-cmd", "git cat-file -e {}", "--sample", "2", cwd=failing)
    seed = re.search(r"verification: 0/2 passed \(seed (\d+)\)", proc.stderr)
    assert seed, proc.stderr  # a task id is not an object name: both samples fail
    assert f"seed {seed.group(1)}" in proc.stdout and "| FAIL |" in proc.stdout


def test_verification_needs_sample_and_command(failing: Path) -> None:
    proc = herd("report", "--verify-cmd", "true", cwd=failing, check=2)
    assert "--sample" in proc.stderr and "Traceback" not in proc.stderr


def test_followups_filed_once_per_run_and_group(tmp_path: Path) -> None:
    repo, ids, worker = task_repo(tmp_path)
    herd(*run_args(worker, "-j", "4"), cwd=repo, check=1, timeout=120)
    first = herd("report", "--file-followups", cwd=repo)
    assert len(re.findall(r"app-\w+ filed for group", first.stderr)) == 2, first.stderr
    second = herd("report", "--file-followups", cwd=repo)
    assert second.stderr.count("already filed") == 2
    assert not re.search(r"app-\w+ filed for group", second.stderr)
    run_id = herd_json("runs", cwd=repo)[0]["id"]
    issues = herd_json("list", "--label", f"herd-run:{run_id}", cwd=repo)
    assert len(issues) == 2
    network = next(i for i in issues if "exited with code 3" in i["title"])
    linked = {d["depends_on_id"] for d in network["dependencies"] if d["type"] == "discovered-from"}
    assert linked == {ids[2], ids[5]}
    # discovered-from does not block: the follow-ups are ready work.
    ready = {i["id"] for i in herd_json("ready", cwd=repo)}
    assert {i["id"] for i in issues} <= ready


def test_map_kind_journal_is_reported_generically(tmp_path: Path) -> None:
    """A map run keeps items as run_tasks with a payload; `{}` becomes the item."""
    store = queue_init(tmp_path, "m")
    journal = Journal.create(store, "map", {"command": ["wc", "-c", "{}"]})
    items = ["a.txt", "b.txt", "c.txt", "missing.txt"]
    for name in items[:3]:
        (tmp_path / name).write_text(name)
    journal.add_tasks(
        [(f"item-{n}", n, 0, "", TaskState.QUEUED.value, json.dumps(item)) for n, item in enumerate(items)]
    )
    now = time.time()
    for n, item in enumerate(items):
        journal.start_attempt(f"item-{n}", 1, f"w{n % 2 + 1}", None)
        ok = item != "missing.txt"
        journal.end_attempt(
            f"item-{n}",
            1,
            ended_at=now + 0.5,
            exit_code=0 if ok else 1,
            outcome="ok" if ok else "failed",
            reason="" if ok else "exited with code 1",
            tail="" if ok else f"wc: {item}: No such file or directory",
        )
        journal.set_task(f"item-{n}", state=(TaskState.SUCCEEDED if ok else TaskState.FAILED).value)
    journal.finish(RunState.PARTIAL, 1)
    data = report_mod.build(store, journal.run_id)
    assert data["kind"] == "map" and data["counts"]["processed"] == 3
    assert data["counts"]["failed"] == 1
    assert [t["item"] for t in data["tasks"]] == items
    assert data["failure_groups"][0]["signature"] == (
        "exited with code <n> | wc: <item>: No such file or directory"
    )
    v = report_mod.verify(data, "test -s {}", 3, seed=1, cwd=tmp_path)
    assert v["passed"] == 3 and sorted(r["item"] for r in v["results"]) == items[:3]
    text = report_mod.to_markdown(data)
    assert "## Items" in text and "`a.txt`" in text


def test_normalize_removes_what_varies() -> None:
    from herd.views.failures import normalize

    a = normalize("timeout in /tmp/w1/x.py after 30s at 0xdeadbeef (app-4u5, 3f2a9c1d)", ["app-4u5"])
    b = normalize("timeout in /var/w2/y.py after 12s at 0xbeef (app-9zz, 77aa0b1c)", ["app-9zz"])
    assert a == b == "timeout in <path> after <n>s at <hex> (<id>, <sha>)"


def test_unknown_run_is_not_found(demo: Path) -> None:
    proc = herd("report", "no-such-run", cwd=demo, check=3)
    assert "herd runs" in proc.stderr


# -- HTML in a real browser -----------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium; .ci/run installs it)"
)


def chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def render_html(repo: Path, tmp_path: Path, name: str, *args: str) -> tuple[Path, str, Path]:
    """Write the report, dump Chromium's DOM of it, and screenshot it (kept when
    HERD_SCREENSHOT_DIR is set)."""
    page = tmp_path / f"{name}.html"
    herd("report", "-o", str(page), *args, cwd=repo)
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    shot = tmp_path / f"{name}.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri())
    assert shot.stat().st_size > 10_000
    if os.environ.get("HERD_SCREENSHOT_DIR"):
        out = Path(os.environ["HERD_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / shot.name)
        shutil.copy(page, out / page.name)
    return page, dom, shot


def assert_self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html


@needs_chromium
def test_html_report_of_demo_in_chromium(demo: Path, tmp_path: Path) -> None:
    page, dom, _ = render_html(demo, tmp_path, "report-demo")
    assert_self_contained(page.read_text())
    data = report_json(demo)
    attempts = sum(len(t["attempts"]) for t in data["tasks"])
    assert len(re.findall(r'data-kind="attempt"', dom)) == attempts == 13
    assert len(re.findall(r'data-kind="test"', dom)) == len(data["test_runs"])
    for key, value in data["counts"].items():
        assert re.search(rf'id="count-{key}" data-count="{value}"', dom), key
    assert len(re.findall(r"<tr data-task=", dom)) == 12
    assert 'data-groups="1"' in dom and 'data-purpose="bisect"' in dom
    assert "<title>" in dom and re.search(r"<title>\S+ attempt 2: ok, \d", dom)


@needs_chromium
def test_html_report_with_failures_in_chromium(failing: Path, tmp_path: Path) -> None:
    _, dom, _ = render_html(
        failing,
        tmp_path,
        "report-failures",
        "--verify-cmd",
        "git log --oneline -1 --grep {}",
        "--sample",
        "2",
        "--seed",
        "3",
    )
    assert 'id="failures" data-failures="3" data-groups="2"' in dom
    assert 'id="verification" data-passed="2" data-sample="2" data-seed="3"' in dom
    assert len(re.findall(r'data-kind="attempt"', dom)) == 8
    assert len(re.findall(r'data-outcome="failed"', dom)) == 3
