"""Records read as text with their children spliced in (store/records.py) are the records
`issues.full` builds by decoding: same fields, same values, same key order, for rows
written now (markers), rows written before schema 6 (null placeholders) and rows whose own
values look like a marker. Real SQLite files, the real CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from _queue_helpers import herd

from herd.queue.core import Queue, init
from herd.queue.model import DERIVED_COUNTS
from herd.store import Store, records
from herd.store import issues as sql_issues
from herd.store.schema import MIGRATIONS, SCHEMA_VERSION, _statements

BD_RECORD = {
    "id": "t-a",
    "title": "a",
    "status": "open",
    "priority": 1,
    "issue_type": "task",
    "created_at": "2025-01-01T00:00:00Z",
    "labels": ["x", "y"],
    "dependencies": [{"issue_id": "t-a", "depends_on_id": "t-b", "type": "blocks"}],
    "dependency_count": 7,
    "dependent_count": 7,
    "comment_count": 7,
    "metadata": {"labels": None, "note": "<&>"},
}


def decoded(tx: sqlite3.Connection, issue_id: str, keys: set[str]) -> list[tuple[str, object]]:
    """The record as the decoding path builds it (`issues.full` with `add_counts`, which
    adds the derived counts a record lacks: those are left out again)."""
    (record,) = sql_issues.full(tx, [issue_id], add_counts=True)
    return [(k, v) for k, v in record.items() if k in keys or k not in DERIVED_COUNTS]


def test_marked_rows_read_as_decoded_rows(tmp_path: Path) -> None:
    queue = Queue(init(tmp_path, "t"), actor="tester")
    (tmp_path / "in.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                BD_RECORD,
                {
                    "id": "t-b",
                    "title": "b",
                    "status": "open",
                    "priority": 2,
                    "labels": [],
                    "comments": [{"id": 1, "text": "hi"}],
                },
                {"id": "t-c", "title": "c", "custom": "\u0000labels", "status": "open"},
            ]
        )
        + "\n"
    )
    queue.import_jsonl(tmp_path / "in.jsonl")
    queue.dep_add("t-c", "t-a")  # a dependency added to a record that had no key for it
    queue.label("t-c", "late", add=True)
    queue.comment("t-a", "a comment")
    layouts = dict(queue.store.conn.execute("SELECT id, layout FROM issues"))
    # A record whose own value reads like a marker is stored the old way.
    assert layouts == {"t-a": 1, "t-b": 1, "t-c": 0}
    with queue.store.read() as tx:
        spliced = [json.loads(t) for t in records.stream_json(tx, ["t-c", "t-a", "t-b", "t-x"])]
    c, a, b = spliced
    assert [r["id"] for r in spliced] == ["t-c", "t-a", "t-b"]
    with queue.store.read() as tx:
        for record in spliced:
            assert list(record.items()) == decoded(tx, record["id"], set(record))
    assert list(a) == [
        "id",
        "title",
        "status",
        "priority",
        "issue_type",
        "created_at",
        "updated_at",
        "labels",
        "dependencies",
        "comments",
        "dependency_count",
        "dependent_count",
        "comment_count",
        "metadata",
    ]
    assert (a["dependency_count"], a["dependent_count"], a["comment_count"]) == (1, 1, 1)
    assert a["metadata"] == {"labels": None, "note": "<&>"} and a["labels"] == ["x", "y"]
    assert "labels" not in b and b["comments"] == [{"id": 1, "text": "hi"}]
    assert c["custom"] == "\u0000labels" and c["labels"] == ["late"]
    assert c["dependencies"][0]["depends_on_id"] == "t-a"
    # The CLI's stream and the library's records agree, key order included.
    listed = [
        json.loads(line.rstrip(","))
        for line in herd("list", "--json", cwd=tmp_path).stdout.splitlines()[1:-1]
    ]
    assert {r["id"]: list(r.items()) for r in listed} == {
        r["id"]: list(r.items()) for r in queue.list_issues()
    }


def test_a_version_5_store_gets_the_markers_and_reads_the_same(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for script in MIGRATIONS[:5]:
        for statement in _statements(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    old_data = {k: (None if k in records.CHILD_KEYS else v) for k, v in BD_RECORD.items()}
    conn.execute(
        "INSERT INTO issues (id, data, title, status, priority, issue_type) "
        "VALUES ('t-a', ?, 'a', 'open', 1, 'task')",
        (json.dumps(old_data),),
    )
    conn.execute("INSERT INTO labels VALUES ('t-a', 'x', 0), ('t-a', 'y', 1)")
    conn.execute(
        "INSERT INTO dependencies VALUES ('t-a', 't-b', 'blocks', 0, ?)",
        (json.dumps(BD_RECORD["dependencies"][0]),),  # type: ignore[index]
    )
    conn.execute("INSERT INTO blocked (id) VALUES ('t-a')")
    with Store(db) as before_markers:
        pass
    del before_markers
    conn2 = sqlite3.connect(db)
    assert conn2.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn2.execute("SELECT layout FROM issues").fetchall() == [(1,)]
    conn2.close()
    store = Store(db)
    with store.read() as tx:
        (record,) = sql_issues.full(tx, ["t-a"])
    assert list(record) == list(BD_RECORD)
    assert record["labels"] == ["x", "y"] and record["dependency_count"] == 1
    assert record["dependent_count"] == 0 and record["comment_count"] == 0
    summary = Queue(store).stats()["summary"]
    assert isinstance(summary, dict) and summary["blocked_issues"] == 0  # t-b: not stored


def test_absent_fields_are_stored_as_null_through_the_none_adapter(tmp_path: Path) -> None:
    """herd registers an adapter for None (binding a None otherwise raises and clears an
    AttributeError per value); the columns still hold SQL NULL, which `IS NULL` finds."""
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    store = init(tmp_path, "t")
    queue = Queue(store, actor="tester")
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "t-a", "title": "a"}) + "\n")
    queue.import_jsonl(tmp_path / "in.jsonl")
    with store.read() as tx:
        row = tx.execute(
            "SELECT typeof(assignee), typeof(defer_ts) FROM issues WHERE id = 't-a' "
            "AND assignee IS NULL AND defer_ts IS NULL"
        ).fetchone()
    assert tuple(row) == ("null", "null")
