"""The click-free path for `herd update ID --claim --json` and `herd ready --json` answers
exactly as the click commands do: same stdout, stderr and exit code, real store, real
processes. And every command name maps to the module that registers it (lazy loading)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _queue_helpers import herd, herd_env

CLICK_ONLY = "import sys; from herd.cli.app import run; run(sys.argv[1:])"


def via_click(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLICK_ONLY, *args],
        cwd=cwd,
        env=herd_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    herd("init", "--prefix", "f", cwd=tmp_path)
    for n in range(4):
        herd("create", f"task {n}", "-p", str(n % 3), "-l", "x" if n % 2 else "y", cwd=tmp_path)
    first = json.loads(herd("list", "--json", cwd=tmp_path).stdout)[0]["id"]
    herd("create", "blocked one", "--deps", first, cwd=tmp_path)
    return tmp_path


def both(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Run `args` through the fast path on one copy of the store and through click on
    another, so a claim in one does not change the other's answer."""
    twin = repo.parent / (repo.name + "-twin")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(repo, twin)
    return herd(*args, cwd=repo, check=None), via_click(*args, cwd=twin)


@pytest.mark.parametrize(
    "args",
    [
        ["ready", "--json"],
        ["ready", "--json", "--limit", "2", "--sort", "oldest"],
        ["ready", "--json", "-l", "x", "--unassigned"],
        ["ready", "--json", "-n", "0", "-s", "hybrid"],
        ["ready", "--claim", "--actor", "w1", "--json"],
        ["ready", "--claim", "--assignee", "a", "--json"],
        ["ready", "--json", "--sort", "nonsense"],
        ["ready", "--json", "--limit", "many"],
    ],
)
def test_ready_answers_as_click_does(repo: Path, args: list[str]) -> None:
    fast, slow = both(repo, *args)
    # A claim stamps the time it happened: the two runs differ there only.
    stamps = re.compile(r'"(updated_at|started_at)":"[^"]*"')
    assert (fast.returncode, stamps.sub("", fast.stdout), fast.stderr) == (
        slow.returncode,
        stamps.sub("", slow.stdout),
        slow.stderr,
    )


def test_claim_answers_as_click_does(repo: Path) -> None:
    ids = [r["id"] for r in json.loads(herd("list", "--json", cwd=repo).stdout)]
    for args in (
        ["update", ids[0], "--claim", "--actor", "w1", "--json"],
        ["update", ids[1], "--claim", "--actor=w2", "--lease", "90s", "--json"],
        ["update", "f-nope", "--claim", "--json"],
        ["update", ids[2], "--claim", "--lease", "soon", "--json"],
    ):
        fast, slow = both(repo, *args)
        # The claim stamps the time: compare the records without their timestamps.
        assert (fast.returncode, fast.stderr) == (slow.returncode, slow.stderr), args
        strip = ("updated_at", "started_at")
        fast_out = json.loads(fast.stdout)
        slow_out = json.loads(slow.stdout)
        if "id" in fast_out:
            for key in strip:
                fast_out.pop(key), slow_out.pop(key)
        assert fast_out == slow_out, args
    herd("update", ids[3], "--claim", "--actor", "w1", "--json", cwd=repo)
    lost = herd("update", ids[3], "--claim", "--actor", "w2", "--json", cwd=repo, check=4)
    assert json.loads(lost.stdout)["exit_code"] == 4
    assert lost.stderr.startswith("herd: error: ") and "claim lost" in lost.stderr


def test_every_command_name_maps_to_its_module() -> None:
    from herd.cli import app

    app._register_batch_commands()
    assert sorted(app.cli.commands) == sorted(app.COMMAND_MODULES)
    for name, module in app.COMMAND_MODULES.items():
        assert app.cli.commands[name].callback.__module__ == f"herd.cli.{module}", name
