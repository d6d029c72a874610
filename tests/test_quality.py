"""The code stays ruff- and mypy --strict-clean: part of the test command, so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None:
        # Part of the test extra: missing means a broken set-up, not an optional tool.
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return [sys.executable, "-m", name]


def test_ruff_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_clean() -> None:
    proc = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_api_is_curated() -> None:
    import herd

    # Adding to the public surface is a decision: change this list on purpose.
    assert herd.__all__ == ["__version__", "HerdError", "MapOutcome", "Queue", "RunOutcome",
                            "Store", "map", "run_batch"]
    for name in herd.__all__:
        assert getattr(herd, name) is not None
    with pytest.raises(AttributeError):
        herd.nonexistent  # noqa: B018
