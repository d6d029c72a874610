"""Team defaults in a checked-in herd.toml or [tool.herd]: `herd run` takes them, its flags
override them, `herd config` shows each effective value and where it came from."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _queue_helpers import assert_clean_error, herd, herd_json
from conftest import git, make_repo

TEAM = """test_cmd = "python -c 'pass'"
jobs = 2
push = true
timeout = "5m"

[agents.team]
argv = ["team-agent", "{context}"]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo, _ = make_repo(tmp_path)
    herd("init", cwd=repo)
    return repo


def last_run_args(repo: Path) -> dict[str, Any]:
    with sqlite3.connect(repo / ".herd" / "herd.db") as db:
        row = db.execute("SELECT args FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
    return dict(json.loads(row[0]))


def test_config_shows_defaults_without_a_file(repo: Path) -> None:
    data = herd_json("config", cwd=repo)
    assert data["file"] is None
    assert data["settings"]["push"] == {"value": False, "source": "default"}
    assert data["settings"]["remote"] == {"value": "origin", "source": "default"}
    assert data["agents"]["claude"]["source"] == "built in"


def test_config_shows_where_each_setting_came_from(repo: Path) -> None:
    (repo / "herd.toml").write_text(TEAM)
    (repo / ".herd" / "config.toml").write_text('[agents.mine]\nargv = ["mine"]\n')
    data = herd_json("config", cwd=repo / "src")  # found from a subdirectory too
    where = str(repo / "herd.toml")
    assert data["file"] == where
    assert data["settings"]["jobs"] == {"value": 2, "source": where}
    assert data["settings"]["timeout"] == {"value": "5m", "source": where}
    assert data["settings"]["format_cmd"] == {"value": None, "source": "default"}
    assert data["agents"]["team"] == {"argv": ["team-agent", "{context}"], "source": where}
    assert data["agents"]["mine"]["source"] == str(repo / ".herd" / "config.toml")
    text = herd("config", cwd=repo).stdout
    assert f"  jobs        2                        {where}" in text
    assert "  remote      origin                   default" in text
    assert f"  team        {where}: team-agent {{context}}" in text


def test_pyproject_tool_herd_is_read(repo: Path) -> None:
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.herd]\njobs = 3\n')
    data = herd_json("config", cwd=repo)
    assert data["settings"]["jobs"] == {"value": 3, "source": f"{repo / 'pyproject.toml'} [tool.herd]"}


def test_run_takes_the_team_defaults_and_flags_override_them(repo: Path) -> None:
    (repo / "herd.toml").write_text(TEAM)
    git(repo, "add", "herd.toml")
    git(repo, "commit", "-qm", "team defaults")
    herd("create", "one", "--scope", "src/a.py", cwd=repo)
    herd("run", "--ready", "--cmd", "true", "--no-integrate", cwd=repo, check=None)
    args = last_run_args(repo)
    assert args["landing"]["test_cmd"] == "python -c 'pass'"
    assert args["landing"]["push"] is True
    assert args["options"]["timeout"] == 300
    herd(
        "update",
        "--status",
        "open",
        *[i["id"] for i in herd_json("list", "--all", cwd=repo)],
        cwd=repo,
        check=None,
    )
    herd(
        "run",
        "--ready",
        "--cmd",
        "true",
        "--no-integrate",
        "--no-push",
        "--test-cmd",
        "make",
        "--timeout",
        "7s",
        cwd=repo,
        check=None,
    )
    args = last_run_args(repo)
    assert args["landing"]["test_cmd"] == "make" and args["landing"]["push"] is False
    assert args["options"]["timeout"] == 7


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("jobs = 'four'\n", "jobs must be a whole number, not 'four'"),
        ("tests = 'pytest'\n", "unknown setting 'tests'"),
        ("timeout = 'soon'\n", "timeout: duration 'soon'"),
        ("jobs = \n", "fix the TOML"),
    ],
)
def test_a_bad_team_file_is_one_clear_line(repo: Path, body: str, needle: str) -> None:
    (repo / "herd.toml").write_text(body)
    proc = herd("config", cwd=repo, check=None)
    assert_clean_error(proc, 2, str(repo / "herd.toml"), needle)
    proc = herd("run", "--ready", "--cmd", "true", cwd=repo, check=None)
    assert_clean_error(proc, 2, needle)
