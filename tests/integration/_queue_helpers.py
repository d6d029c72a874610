"""Shared helpers for the queue tests: run the real CLI, find the beads corpus.

Not a conftest (that file belongs to someone else); test modules import it by name,
which works because pytest puts each test file's directory on sys.path.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _cli import run_herd

SRC = Path(__file__).resolve().parents[2] / "src"


def _find_corpus() -> Path:
    """`../shared/corpus/beads` beside the clone (X/main with X/shared), or further up for a
    worktree nested deeper (X/wt/NAME)."""
    repo = Path(__file__).resolve().parents[2]
    for directory in repo.parents:
        if (directory / "shared/corpus/beads").is_dir():
            return directory / "shared/corpus/beads"
    return repo.parent / "shared/corpus/beads"


CORPUS = _find_corpus()
SMALL = "beads-dogfood-issues-385c0c031.jsonl"  # 704 records
PRE_DOLT = "beads-dogfood-issues-pre-dolt-051aeb0a6.jsonl"  # 485, written by bd
LARGEST = "beads-dogfood-issues-ce622f568-largest.jsonl"  # 5,722, written by bd
CORPUS_FILES = (SMALL, PRE_DOLT, LARGEST)

needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"beads corpus not found at {CORPUS} (expected ../shared/corpus/beads beside the "
    "repository clone)",
)


def herd_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "BD_"))}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def herd(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: int | None = 0,
    timeout: float = 60,
    real: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `herd ARGS` in `cwd`; assert the exit code unless check is None.

    In this process (see `_cli`) unless `real`: then `python -m herd` in a subprocess,
    killed after `timeout` seconds."""
    proc = run_herd(args, cwd=cwd, env=env or herd_env(), timeout=timeout, input=input, real=real)
    if check is not None:
        assert proc.returncode == check, (
            f"herd {' '.join(args)}: exit {proc.returncode}, expected {check}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def herd_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return json.loads(herd(*args, "--json", cwd=cwd, env=env).stdout)


def assert_clean_error(
    proc: subprocess.CompletedProcess[str], code: int, *needles: str, one_line: bool = True
) -> None:
    """The documented exit code, no traceback, and one clear line on stderr (click's own usage
    errors, `one_line=False`, add a usage hint around theirs)."""
    assert proc.returncode == code, f"exit {proc.returncode} != {code}; stderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    if one_line:
        assert len(lines) == 1 and lines[0].startswith("herd: error: "), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in stderr: {proc.stderr}"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
