"""`herd plan` through the real CLI on a real repository."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _cli import run_herd
from conftest import git, make_repo

SRC = Path(__file__).resolve().parents[2] / "src"


def herd(repo: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = run_herd(args, cwd=repo, env=env, timeout=120)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo, _ = make_repo(tmp_path)
    for path in (
        "src/auth/login.py",
        "src/auth/token.py",
        "src/core/db.py",
        "src/core/legacy/old.py",
        "tests/auth/test_login.py",
        "docs/index.md",
    ):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")
    herd(repo, "init", "--prefix", "p")
    return repo


def create(repo: Path, title: str, *args: str) -> str:
    return herd(repo, "create", title, *args).stdout.strip()


def plan(repo: Path, *args: str, check: int = 0) -> dict:  # type: ignore[type-arg]
    proc = herd(repo, "plan", *args, "--json", check=check)
    return json.loads(proc.stdout) if check == 0 else {"stderr": proc.stderr}


def test_waves_conflicts_and_warnings(repo: Path) -> None:
    auth = create(repo, "auth", "--scope", "src/auth/**", "--criteria", "ok")
    typed = create(repo, "types", "--scope", "src/**/*.py", "--criteria", "ok")
    core = create(
        repo, "core", "--scope", "src/core/*.py", "--out-of-scope", "src/core/legacy/**", "--criteria", "ok"
    )
    docs = create(repo, "docs", "--scope", "docs/*.md", "--deps", auth, "--criteria", "ok")
    loose = create(repo, "loose")
    # Equal priorities keep the order given: typed comes after the two it overlaps.
    result = plan(repo, auth, core, typed, docs, loose, "-j", "3")
    waves = result["waves"]
    wave_of = {t: n for n, wave in enumerate(waves) for t in wave}
    assert wave_of[docs] > wave_of[auth]  # dependency inside the set: ordering
    assert wave_of[typed] != wave_of[auth] and wave_of[typed] != wave_of[core]
    assert wave_of[auth] == wave_of[core] == wave_of[loose] == 0
    assert wave_of[typed] == 1
    pairs = {(c["a"], c["b"]) for c in result["conflicts"]}
    assert {tuple(sorted(p)) for p in pairs} == {tuple(sorted((auth, typed))), tuple(sorted((core, typed)))}
    example = next(c for c in result["conflicts"] if auth in (c["a"], c["b"]))
    assert any("src/auth/" in p for p in example["paths"])
    warnings = "\n".join(result["warnings"])
    assert f"{loose} has no scope" in warnings and f"{loose} has no success criteria" in warnings
    assert result["workers"] == 3
    assert {t["id"] for t in result["tasks"]} == {auth, typed, core, docs, loose}


def test_globs_conflict_before_files_exist(repo: Path) -> None:
    a = create(repo, "a", "--scope", "src/payments/**", "--criteria", "ok")
    b = create(repo, "b", "--scope", "src/**/*.py", "--criteria", "ok")
    c = create(repo, "c", "--scope", "src/shipping/*.py", "--criteria", "ok")
    result = plan(repo, a, b, c)
    pairs = {tuple(sorted((x["a"], x["b"]))) for x in result["conflicts"]}
    assert tuple(sorted((a, b))) in pairs
    assert tuple(sorted((a, c))) not in pairs


def test_default_workers_is_min_of_8_cores_and_largest_wave(repo: Path) -> None:
    ids = [create(repo, f"t{n}", "--scope", f"src/m{n}.py", "--criteria", "ok") for n in range(5)]
    result = plan(repo, *ids)
    assert result["workers"] == min(8, os.cpu_count() or 1, 5)
    high = plan(repo, *ids, "-j", "64")
    assert high["workers"] == 64
    assert any("above" in w and "cores" in w for w in high["warnings"])


def test_cycle_inside_the_set_is_refused_and_named(repo: Path, tmp_path: Path) -> None:
    lines = [
        {
            "id": "p-a",
            "title": "a",
            "status": "open",
            "priority": 2,
            "issue_type": "task",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "dependencies": [{"issue_id": "p-a", "depends_on_id": "p-b", "type": "blocks"}],
        },
        {
            "id": "p-b",
            "title": "b",
            "status": "open",
            "priority": 2,
            "issue_type": "task",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "dependencies": [{"issue_id": "p-b", "depends_on_id": "p-a", "type": "waits-for"}],
        },
    ]
    path = tmp_path / "cycle.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    # As bd, import and `dep cycles` look at blocks edges only; the plan orders by every
    # blocking edge, so it still sees this loop.
    herd(repo, "import", str(path))
    proc = herd(repo, "plan", "p-a", "p-b", check=4)
    assert "cycle" in proc.stderr and "p-a -> p-b -> p-a" in proc.stderr


def test_blocker_outside_the_set_is_refused_unless_included(repo: Path) -> None:
    blocker = create(repo, "blocker", "--scope", "src/a.py", "--criteria", "ok")
    task = create(repo, "task", "--deps", blocker, "--scope", "src/b.py", "--criteria", "ok")
    proc = herd(repo, "plan", task, check=4)
    assert blocker in proc.stderr and "--include-blockers" in proc.stderr
    result = plan(repo, task, "--include-blockers")
    assert result["waves"] == [[blocker], [task]]
    herd(repo, "close", blocker)
    assert plan(repo, task)["waves"] == [[task]]


def test_closed_or_in_progress_task_is_refused_and_nothing_claimed(repo: Path) -> None:
    a = create(repo, "a", "--scope", "src/a.py")
    b = create(repo, "b", "--scope", "src/b.py")
    herd(repo, "update", b, "--claim", "--actor", "someone")
    proc = herd(repo, "plan", a, b, check=4)
    assert b in proc.stderr and "in_progress" in proc.stderr
    assert json.loads(herd(repo, "show", a, "--json").stdout)[0]["status"] == "open"
    herd(repo, "close", a)
    assert "closed" in herd(repo, "plan", a, check=4).stderr


def test_ready_and_parent_select_the_set(repo: Path) -> None:
    epic = create(repo, "epic", "-t", "epic")
    kids = [
        create(repo, f"kid {n}", "--parent", epic, "--scope", f"src/k{n}.py", "--criteria", "ok")
        for n in range(3)
    ]
    other = create(repo, "other", "--scope", "src/o.py", "--criteria", "ok")
    by_parent = plan(repo, "--parent", epic)
    assert sorted(t for w in by_parent["waves"] for t in w) == sorted(kids)
    ready = plan(repo, "--ready")
    assert sorted(t for w in ready["waves"] for t in w) == sorted([*kids, other])


def test_unknown_id_and_bad_usage(repo: Path) -> None:
    assert "p-nope" in herd(repo, "plan", "p-nope", check=3).stderr
    assert "exactly one" in herd(repo, "plan", check=2).stderr


def test_dependency_on_a_missing_id_is_a_warning(repo: Path, tmp_path: Path) -> None:
    record = {
        "id": "p-x",
        "title": "x",
        "status": "open",
        "priority": 2,
        "issue_type": "task",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "dependencies": [{"issue_id": "p-x", "depends_on_id": "gone-1", "type": "blocks"}],
    }
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(record) + "\n")
    herd(repo, "import", str(path))
    result = plan(repo, "p-x")
    assert any("gone-1" in w and "not in the store" in w for w in result["warnings"])


def test_text_output_names_waves_and_conflicts(repo: Path) -> None:
    a = create(repo, "auth work", "--scope", "src/auth/**", "--criteria", "ok")
    b = create(repo, "typing", "--scope", "src/**/*.py", "--criteria", "ok")
    out = herd(repo, "plan", a, b).stdout
    assert "2 tasks in 2 waves" in out and "wave 1:" in out and "wave 2:" in out
    assert f"{a} <-> {b}" in out or f"{b} <-> {a}" in out


def _issue(
    issue_id: str,
    *deps: tuple[str, str, dict],  # type: ignore[type-arg]
    status: str = "open",
    issue_type: str = "task",
) -> dict:  # type: ignore[type-arg]
    return {
        "id": issue_id,
        "title": issue_id,
        "status": status,
        "priority": 2,
        "issue_type": issue_type,
        "acceptance_criteria": "ok",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "dependencies": [
            {"issue_id": issue_id, "depends_on_id": target, "type": kind, "metadata": meta}
            for target, kind, meta in deps
        ],
    }


def test_plan_refuses_exactly_what_the_store_calls_blocked(repo: Path, tmp_path: Path) -> None:
    """One set of blocking rules: a task planned alone is refused iff `herd blocked` lists it
    (waits-for gates, blocked parents, pinned and closed blockers included)."""
    records = [
        _issue("p-open"),
        _issue("p-done", status="closed"),
        _issue("p-pin", status="pinned"),
        _issue("p-by-open", ("p-open", "blocks", {})),
        _issue("p-by-done", ("p-done", "blocks", {})),
        _issue("p-by-pin", ("p-pin", "conditional-blocks", {})),
        _issue("p-epic", ("p-open", "blocks", {}), issue_type="epic"),
        _issue("p-kid", ("p-epic", "parent-child", {})),
        _issue("p-spawn"),
        _issue("p-c1", ("p-spawn", "parent-child", {})),
        _issue("p-c2", ("p-spawn", "parent-child", {}), status="closed"),
        _issue("p-all", ("p-spawn", "waits-for", {"gate": "all-children"})),
        # any-children: one child closed is enough, although p-c1 is still open.
        _issue("p-any", ("p-spawn", "waits-for", {"gate": "any-children"})),
    ]
    path = tmp_path / "graph.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    herd(repo, "import", str(path))
    blocked = {row["id"] for row in json.loads(herd(repo, "blocked", "--json").stdout)}
    assert blocked == {"p-by-open", "p-epic", "p-kid", "p-all"}
    for record in records:
        if record["status"] != "open":
            continue
        expected = 4 if record["id"] in blocked else 0
        proc = herd(repo, "plan", record["id"], check=None)
        assert proc.returncode == expected, (record["id"], proc.stderr)
    # A blocker inside the batch only orders it; a blocked parent's blocker counts too.
    result = plan(repo, "p-open", "p-kid")
    assert result["waves"] == [["p-open"], ["p-kid"]]
    assert "p-open" in herd(repo, "plan", "p-kid", check=4).stderr
