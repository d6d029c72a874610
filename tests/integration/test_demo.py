"""The README's first command: `herd demo` runs the whole job on the built-in example."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_demo_lands_every_task_in_one_push_and_writes_the_report(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("HERD_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "herd", "demo", str(tmp_path / "d")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 succeeded, 12 landed, 0 ejected, 0 failed" in proc.stdout
    assert "(attempt 2)" in proc.stderr  # the flaky worker was retried
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"],
        cwd=tmp_path / "d" / "remote.git",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(log) == 13 and log[-1] == "sample project"
    report = tmp_path / "d" / "report.html"
    assert report.exists() and f"HTML report: {report}" in proc.stdout


def test_demo_with_failures_bisects_and_ejects(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("HERD_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "herd", "demo", str(tmp_path / "d"), "--with-failures"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "11 landed, 1 ejected" in proc.stdout
    assert "test [bisect]" in proc.stderr
