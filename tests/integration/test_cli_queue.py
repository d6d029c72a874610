"""Every queue command through the real CLI in a subprocess: JSON shapes, store lookup,
claims, and bad input (exit code, one clear line on stderr, no traceback, store unchanged)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _queue_helpers import assert_clean_error, herd, herd_env, herd_json, write_jsonl


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    herd("init", "--prefix", "q", cwd=tmp_path)
    return tmp_path


def create(repo: Path, title: str, *args: str) -> dict[str, Any]:
    record: dict[str, Any] = herd_json("create", title, *args, cwd=repo)
    return record


def row_count(repo: Path) -> int:
    conn = sqlite3.connect(repo / ".herd" / "herd.db")
    try:
        return int(conn.execute("SELECT count(*) FROM issues").fetchone()[0])
    finally:
        conn.close()


def snapshot(repo: Path) -> str:
    return herd("export", cwd=repo).stdout


# -- store lookup -----------------------------------------------------------------


def test_init_makes_store_found_from_subdirectories(repo: Path) -> None:
    assert (repo / ".herd" / "herd.db").is_file()
    assert (repo / ".herd" / ".gitignore").is_file()
    sub = repo / "deep" / "er"
    sub.mkdir(parents=True)
    made = create(sub, "from below")
    assert herd_json("show", made["id"], cwd=repo)[0]["title"] == "from below"


def test_db_flag_and_env_override_the_walk(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other")
    db = other / "elsewhere.db"
    herd("init", "--db", str(db), "--prefix", "o", cwd=other)
    assert not (other / ".herd").exists()
    via_flag = herd_json("create", "flagged", "--db", str(db), cwd=repo)
    assert via_flag["id"].startswith("o-")
    env = herd_env(HERD_DB=str(db))
    via_env = herd_json("list", cwd=repo, env=env)
    assert [r["id"] for r in via_env] == [via_flag["id"]]
    assert herd_json("list", cwd=repo) == []  # the walked-to store is untouched


def test_no_store_says_run_herd_init(tmp_path: Path) -> None:
    assert_clean_error(herd("list", cwd=tmp_path, check=None), 3, "herd init")
    assert_clean_error(herd("ready", cwd=tmp_path, check=None), 3, "herd init")


def test_with_json_an_error_is_also_a_json_object_on_stdout(tmp_path: Path) -> None:
    """Every command, every kind of error: the line on stderr, the object on stdout."""
    for args, code in (
        (["--json", "list"], 3),
        (["show", "x-1", "--json"], 3),
        (["map", "--json", "--bogus"], 2),
        (["--json", "map", "a"], 2),
    ):
        proc = herd(*args, cwd=tmp_path, check=code)
        error = json.loads(proc.stdout)
        assert error["exit_code"] == code and error["error"] in proc.stderr, proc.stderr
    plain = herd("list", cwd=tmp_path, check=3)
    assert plain.stdout == ""


# -- commands and JSON shapes -----------------------------------------------------


def test_create_show_list_update_comment_label_stats(repo: Path) -> None:
    made = create(
        repo,
        "Refactor auth",
        "-d",
        "the desc",
        "-t",
        "bug",
        "-p",
        "1",
        "--criteria",
        "tests pass",
        "--criteria",
        "no deprecated imports",
        "--scope",
        "src/auth/*.py",
        "--out-of-scope",
        "src/core/*",
        "-l",
        "backend",
    )
    assert isinstance(made, dict)
    assert made["id"].startswith("q-") and 3 <= len(made["id"]) - 2 <= 8
    assert (made["issue_type"], made["priority"], made["status"]) == ("bug", 1, "open")
    assert made["acceptance_criteria"] == "1. tests pass\n2. no deprecated imports"
    assert made["metadata"]["herd"]["scope"] == ["src/auth/*.py"]
    assert made["metadata"]["herd"]["out_of_scope"] == ["src/core/*"]
    plain = herd("create", "plain", cwd=repo).stdout.strip()
    assert plain.startswith("q-") and "\n" not in plain

    shown = herd_json("show", made["id"], plain, cwd=repo)
    assert isinstance(shown, list) and [r["id"] for r in shown] == [made["id"], plain]
    text = herd("show", made["id"], cwd=repo).stdout
    assert "Refactor auth" in text and "tests pass" in text and "src/auth/*.py" in text

    updated = herd_json("update", plain, "-p", "0", "--title", "renamed", "-a", "ann", cwd=repo)
    assert (updated["priority"], updated["title"], updated["assignee"]) == (0, "renamed", "ann")
    herd_json("comment", plain, "first note", cwd=repo)
    comments = herd_json("comments", plain, cwd=repo)
    assert [c["text"] for c in comments] == ["first note"]
    assert herd_json("label", "add", plain, "urgent", cwd=repo)["changed"] is True
    assert herd_json("label", "add", plain, "urgent", cwd=repo)["changed"] is False
    assert herd_json("show", plain, cwd=repo)[0]["labels"] == ["urgent"]
    assert herd_json("label", "remove", plain, "urgent", cwd=repo)["changed"] is True
    assert "labels" not in herd_json("show", plain, cwd=repo)[0]

    assert [r["id"] for r in herd_json("list", "--label", "backend", cwd=repo)] == [made["id"]]
    assert [r["id"] for r in herd_json("list", "--type", "bug", cwd=repo)] == [made["id"]]
    herd("close", made["id"], cwd=repo)
    assert [r["id"] for r in herd_json("list", cwd=repo)] == [plain]
    assert len(herd_json("list", "--all", cwd=repo)) == 2
    assert [r["id"] for r in herd_json("list", "--status", "closed", cwd=repo)] == [made["id"]]

    stats = herd_json("stats", cwd=repo)
    assert set(stats) == {"summary"}
    assert stats["summary"]["total_issues"] == 2
    assert stats["summary"]["closed_issues"] == 1
    assert stats["summary"]["ready_issues"] == 1


def test_children_and_dep_commands(repo: Path) -> None:
    epic = create(repo, "epic", "-t", "epic")["id"]
    kid1 = create(repo, "kid", "--parent", epic)["id"]
    kid2 = create(repo, "kid2", "--parent", epic, "--deps", kid1)["id"]
    assert (kid1, kid2) == (f"{epic}.1", f"{epic}.2")
    assert {r["id"] for r in herd_json("ready", cwd=repo)} == {epic, kid1}  # bd lists epics
    blocked = herd_json("blocked", cwd=repo)
    assert [(r["id"], r["blocked_by"]) for r in blocked] == [(kid2, [kid1])]

    tree = herd("dep", "tree", kid2, cwd=repo).stdout
    assert kid1 in tree and epic in tree and "[parent-child]" in tree
    herd("dep", "rm", kid2, kid1, cwd=repo)
    assert {r["id"] for r in herd_json("ready", cwd=repo)} == {epic, kid1, kid2}
    herd("dep", "add", kid2, kid1, cwd=repo)
    proc = herd("dep", "add", kid1, kid2, cwd=repo, check=None)
    assert_clean_error(proc, 4, "cycle", f"{kid1} -> {kid2} -> {kid1}")
    assert herd_json("dep", "cycles", cwd=repo) == []
    assert_clean_error(herd("dep", "rm", kid1, kid2, cwd=repo, check=None), 3, kid2)


def test_close_readies_dependents_in_the_same_command_and_reopen_reblocks(repo: Path) -> None:
    a = create(repo, "a")["id"]
    b = create(repo, "b", "--deps", a)["id"]
    before = snapshot(repo)
    assert_clean_error(herd("close", b, cwd=repo, check=None), 4, a, "--force")
    assert snapshot(repo) == before
    herd("close", a, "--reason", "done", cwd=repo)
    assert [r["id"] for r in herd_json("ready", cwd=repo)] == [b]
    herd("reopen", a, cwd=repo)
    assert [r["id"] for r in herd_json("ready", cwd=repo)] == [a]
    assert [r["id"] for r in herd_json("blocked", cwd=repo)] == [b]
    herd("close", b, "--force", cwd=repo)


def test_ready_sort_and_limit(repo: Path, tmp_path: Path) -> None:
    records = [
        {
            "id": f"q-{n:03d}",
            "title": f"t{n}",
            "status": "open",
            "priority": n % 5,
            "issue_type": "task",
            "created_at": f"2020-01-{n + 1:02d}T00:00:00Z",
        }
        for n in range(15)
    ]
    herd("import", str(write_jsonl(tmp_path / "s.jsonl", records)), cwd=repo)
    assert len(herd_json("ready", cwd=repo)) == 15  # bd's default page is 100
    assert len(herd_json("ready", "--limit", "0", cwd=repo)) == 15
    assert len(herd_json("ready", "--limit", "3", cwd=repo)) == 3
    oldest = [r["id"] for r in herd_json("ready", "--sort", "oldest", "--limit", "0", cwd=repo)]
    assert oldest == [f"q-{n:03d}" for n in range(15)]
    assert oldest == [
        r["id"] for r in herd_json("ready", "--sort", "hybrid", "--limit", "0", cwd=repo)
    ]  # all old
    by_priority = herd_json("ready", "--sort", "priority", "--limit", "0", cwd=repo)
    assert [r["priority"] for r in by_priority] == sorted(n % 5 for n in range(15))
    assert_clean_error(herd("ready", "--sort", "random", cwd=repo, check=None), 2, "random", one_line=False)


def test_dangling_edge_does_not_block_and_warns(repo: Path, tmp_path: Path) -> None:
    records = [
        {
            "id": "q-a",
            "title": "a",
            "status": "open",
            "priority": 2,
            "dependencies": [{"issue_id": "q-a", "depends_on_id": "q-ghost", "type": "blocks"}],
        }
    ]
    proc = herd("import", str(write_jsonl(tmp_path / "d.jsonl", records)), cwd=repo)
    assert "q-ghost" in proc.stderr
    proc = herd("ready", cwd=repo)
    assert "q-a" in proc.stdout and "q-ghost" in proc.stderr and "do not block" in proc.stderr
    assert "q-ghost" in herd("blocked", cwd=repo).stderr


# -- claims ---------------------------------------------------------------------


def test_claim_compare_and_swap_through_the_cli(repo: Path) -> None:
    a = create(repo, "a")["id"]
    got = herd_json("update", a, "--claim", "--actor", "alice", cwd=repo)
    assert (got["status"], got["assignee"]) == ("in_progress", "alice")
    before = snapshot(repo)
    assert_clean_error(herd("update", a, "--claim", "--actor", "bob", cwd=repo, check=None), 4, a, "alice")
    assert snapshot(repo) == before
    herd("update", a, "--claim", "--actor", "alice", cwd=repo)  # re-claim by the holder
    assert_clean_error(
        herd("update", "q-nope", "--claim", "--actor", "bob", cwd=repo, check=None), 3, "q-nope"
    )


def test_expired_lease_lets_another_claim_through_the_cli(repo: Path) -> None:
    a = create(repo, "a")["id"]
    herd("update", a, "--claim", "--actor", "alice", "--lease", "0.5", cwd=repo)
    time.sleep(0.6)
    assert [r["id"] for r in herd_json("ready", cwd=repo)] == [a]  # issue 11.9
    got = herd_json("update", a, "--claim", "--actor", "bob", cwd=repo)
    assert got["assignee"] == "bob"
    b = create(repo, "b")["id"]
    herd("update", b, "--claim", "--actor", "carol", "--lease", "90s", cwd=repo)
    assert_clean_error(
        herd("update", b, "--claim", "--lease", "forever", cwd=repo, check=None), 2, "forever", "30m"
    )


def test_ready_claim_takes_the_first_ready_issue(repo: Path) -> None:
    first = create(repo, "urgent", "-p", "0")["id"]
    second = create(repo, "later", "-p", "3")["id"]
    [got] = herd_json("ready", "--claim", "--actor", "w1", "--sort", "priority", cwd=repo)
    assert (got["id"], got["assignee"], got["status"]) == (first, "w1", "in_progress")
    [got] = herd_json("ready", "--claim", "--actor", "w2", cwd=repo)
    assert got["id"] == second
    assert herd_json("ready", "--claim", "--actor", "w3", cwd=repo) == []


# -- import / export --------------------------------------------------------------


def test_import_upserts_and_export_sorts(repo: Path, tmp_path: Path) -> None:
    records = [
        {"id": "q-b", "title": "b", "status": "open", "priority": 1, "zz_unknown": [1]},
        {"id": "q-a", "title": "a", "status": "closed", "priority": 4},
    ]
    result = herd_json("import", str(write_jsonl(tmp_path / "i.jsonl", records)), cwd=repo)
    assert (result["created"], result["updated"]) == (2, 0)
    records[0]["title"] = "b2"
    result = herd_json("import", str(write_jsonl(tmp_path / "i.jsonl", records)), cwd=repo)
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 1)
    exported = [json.loads(line) for line in herd("export", cwd=repo).stdout.splitlines()]
    assert [r["id"] for r in exported] == ["q-b", "q-a"]  # bd's order: priority first
    assert exported[0]["title"] == "b2" and exported[0]["zz_unknown"] == [1]
    out = tmp_path / "out.jsonl"
    herd("export", "-o", str(out), cwd=repo)
    assert out.read_text() == herd("export", cwd=repo).stdout


def test_import_with_a_repeated_id_keeps_the_last_line(repo: Path, tmp_path: Path) -> None:
    first = {
        "id": "q-a",
        "title": "one",
        "labels": ["x"],
        "comments": [{"id": 1, "text": "c1"}],
        "dependencies": [{"issue_id": "q-a", "depends_on_id": "q-b", "type": "blocks"}],
    }
    second = {"id": "q-a", "title": "two", "comments": [{"id": 2, "text": "c2"}]}
    other = {"id": "q-b", "title": "b"}
    path = write_jsonl(tmp_path / "dup.jsonl", [first, other, second])
    result = herd_json("import", str(path), cwd=repo)
    assert (result["created"], result["updated"]) == (2, 0)
    (shown,) = herd_json("show", "q-a", cwd=repo)
    assert shown["title"] == "two"
    assert [c["text"] for c in shown["comments"]] == ["c2"]
    assert "labels" not in shown and "dependencies" not in shown


# -- bad input --------------------------------------------------------------------

GOOD = '{"id": "q-ok", "title": "fine", "status": "open", "priority": 2}'
BAD_IMPORTS = [
    ("malformed", f"{GOOD}\n{{not json\n", ["bad.jsonl:2", "malformed JSON"]),
    ("no id", f'{GOOD}\n{{"title": "anonymous"}}\n', ["bad.jsonl:2", "id"]),
    ("priority", f'{GOOD}\n{{"id": "q-hi", "priority": 9}}\n', ["bad.jsonl:2", "q-hi", "0-4"]),
    (
        "status",
        f'{GOOD}\n{{"id": "q-st", "status": "Work In Progress"}}\n',
        ["bad.jsonl:2", "q-st", "Work In Progress"],
    ),
    ("not object", f"{GOOD}\n[1, 2]\n", ["bad.jsonl:2", "object"]),
    # Issue 11.13: each of these used to be stored and break later (a string scope was split
    # into characters, so "docs/**" allowed any path) or end in a traceback.
    (
        "scope string",
        f'{GOOD}\n{{"id": "q-s", "metadata": {{"herd": {{"scope": "docs/**"}}}}}}\n',
        ["bad.jsonl:2", "q-s", "metadata.herd.scope", "list of globs"],
    ),
    (
        "scope non-strings",
        f'{GOOD}\n{{"id": "q-s", "metadata": {{"herd": {{"out_of_scope": [1]}}}}}}\n',
        ["bad.jsonl:2", "q-s", "metadata.herd.out_of_scope", "1"],
    ),
    (
        "metadata string",
        f'{GOOD}\n{{"id": "q-m", "metadata": "{{\\"herd\\": {{}}}}"}}\n',
        ["bad.jsonl:2", "q-m", "JSON-encoded string"],
    ),
    (
        "assignee number",
        f'{GOOD}\n{{"id": "q-a", "assignee": 7}}\n',
        ["bad.jsonl:2", "q-a", '"assignee" must be a string', "a number"],
    ),
    (
        "issue_type list",
        f'{GOOD}\n{{"id": "q-t", "issue_type": ["task"]}}\n',
        ["bad.jsonl:2", "q-t", '"issue_type" must be a string', "a list"],
    ),
    (
        "description object",
        f'{GOOD}\n{{"id": "q-d", "description": {{"x": 1}}}}\n',
        ["bad.jsonl:2", "q-d", '"description" must be a string', "an object"],
    ),
    (
        "title NUL",
        f'{GOOD}\n{{"id": "q-n", "title": "a\\u0000b"}}\n',
        ["bad.jsonl:2", "q-n", '"title" contains a NUL'],
    ),
]


@pytest.mark.parametrize(("case", "content", "needles"), BAD_IMPORTS, ids=[c[0] for c in BAD_IMPORTS])
def test_bad_import_line_writes_nothing(
    repo: Path, tmp_path: Path, case: str, content: str, needles: list[str]
) -> None:
    create(repo, "existing")
    before, count = snapshot(repo), row_count(repo)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    assert_clean_error(herd("import", str(bad), cwd=repo, check=None), 2, *needles)
    assert row_count(repo) == count
    assert snapshot(repo) == before


def test_record_without_status_imports_as_open_like_bd(repo: Path, tmp_path: Path) -> None:
    """Issue 11.13: bd's Issue.SetDefaults (internal/types/types.go) makes a record without a
    status open and one without a type a task, and import leaves a missing priority at 0
    ("Priority default of 2 only applies to new issues via Create"); herd does the same."""
    path = write_jsonl(tmp_path / "n.jsonl", [{"id": "q-nostatus", "title": "bare"}])
    herd("import", str(path), cwd=repo)
    [exported] = [json.loads(line) for line in herd("export", cwd=repo).stdout.splitlines()]
    assert (exported["status"], exported["issue_type"], exported["priority"]) == ("open", "task", 0)
    assert [r["id"] for r in herd_json("ready", cwd=repo)] == ["q-nostatus"]


def test_reimporting_an_unchanged_file_says_unchanged(repo: Path, tmp_path: Path) -> None:
    """Issue 12: the second import of the same file changes nothing and says so."""
    records = [
        {
            "id": f"q-{n}",
            "title": f"t{n}",
            "status": "open",
            "priority": 2,
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for n in range(13)
    ]
    path = write_jsonl(tmp_path / "u.jsonl", records)
    herd("import", str(path), cwd=repo)
    before = snapshot(repo)
    proc = herd("import", str(path), cwd=repo)
    assert "0 new, 0 updated, 13 unchanged" in proc.stdout
    assert snapshot(repo) == before


def test_import_shows_progress_on_a_terminal_only(repo: Path, tmp_path: Path) -> None:
    """Issue 12: a large import is not silent on a TTY (stderr is a real pseudo-terminal
    here); piped, stderr stays clean."""
    import os
    import pty
    import subprocess
    import sys

    records = [{"id": f"q-{n}", "title": f"t{n}", "status": "open", "priority": 2} for n in range(12000)]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "herd", "import", str(path)],
        cwd=repo,
        env=herd_env(),
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        timeout=120,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"reading big.jsonl: 10,000 lines" in seen and b"writing 12,000 issues" in seen
    assert "12000 new" in proc.stdout
    piped = herd("import", str(path), cwd=repo)
    assert piped.stderr == ""


def test_import_of_missing_file(repo: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert_clean_error(herd("import", str(missing), cwd=repo, check=None), 2, str(missing))


def test_bad_arguments_exit_2_and_change_nothing(repo: Path) -> None:
    a = create(repo, "a")["id"]
    before = snapshot(repo)
    cases = [
        (["create", "x", "-p", "7"], "0-4"),
        (["update", a, "-p", "-1"], "0-4"),
        (["update", a, "--status", "Not a status"], "Not a status"),
        (["list", "--status", "no/such"], "no/such"),
        (["update", a, "--claim", "--status", "open"], "--claim"),
    ]
    for args, needle in cases:
        assert_clean_error(herd(*args, cwd=repo, check=None), 2, needle)
    for args, needle in (
        (["create"], "TITLE"),
        (["frobnicate"], "frobnicate"),
        (["ready", "--limit", "many"], "many"),
    ):
        assert_clean_error(herd(*args, cwd=repo, check=None), 2, needle, one_line=False)
    assert snapshot(repo) == before


def test_unknown_ids_exit_3(repo: Path) -> None:
    a = create(repo, "a")["id"]
    before = snapshot(repo)
    for args in (
        ["show", "q-zzz"],
        ["show", a, "q-zzz"],
        ["update", "q-zzz", "-p", "1"],
        ["close", "q-zzz"],
        ["close", a, "q-zzz"],
        ["reopen", "q-zzz"],
        ["dep", "add", a, "q-zzz"],
        ["dep", "tree", "q-zzz"],
        ["comment", "q-zzz", "hi"],
        ["comments", "q-zzz"],
        ["label", "add", "q-zzz", "x"],
        ["create", "c", "--parent", "q-zzz"],
        ["create", "c", "--deps", "q-zzz"],
    ):
        assert_clean_error(herd(*args, cwd=repo, check=None), 3, "q-zzz")
    assert snapshot(repo) == before


def test_export_to_a_missing_directory_is_a_clean_error(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.jsonl"
    assert_clean_error(herd("export", "-o", str(target), cwd=repo, check=None), 2, str(target))
    assert not target.parent.exists()


def test_corrupt_store_is_a_clean_error(tmp_path: Path) -> None:
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not sqlite" * 100)
    assert_clean_error(herd("list", "--db", str(db), cwd=tmp_path, check=None), 2, str(db))


def test_version(tmp_path: Path) -> None:
    assert herd("--version", cwd=tmp_path).stdout.startswith("herd ")
