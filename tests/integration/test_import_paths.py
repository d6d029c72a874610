"""`herd import` reads a file once when it can and twice when bd's rules need the whole file
(an id on two lines, an edge closing a cycle): both give the same store (real SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from herd.errors import BadInput
from herd.queue.core import Queue, init

# More lines than one chunk (2,000), so the one-reading path has written chunks before it
# meets what sends it back.
COUNT = 4500


def _record(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"t-{n}",
        "title": f"issue {n}",
        "status": "open" if n % 3 else "closed",
        "priority": n % 5,
        "issue_type": "task",
        "created_at": f"2025-01-01T00:{n % 60:02d}:00Z",
        "updated_at": "2025-02-01T00:00:00Z",
    }
    if n > 10:
        record["dependencies"] = [
            {"issue_id": f"t-{n}", "depends_on_id": f"t-{n // 2}", "type": "blocks"},
            {"issue_id": f"t-{n}", "depends_on_id": f"t-{n % 7}", "type": "parent-child"},
        ]
    if n % 4 == 0:
        record["labels"] = ["even"]
    record.update(fields)
    return record


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _store(tmp_path: Path, name: str) -> Queue:
    root = tmp_path / name
    root.mkdir()
    return Queue(init(root, "t"), actor="tester")


def _rows(queue: Queue) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(queue.store.path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("issues", "labels", "dependencies", "comments", "blocked")
        } | {"schema": conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()}
    finally:
        conn.close()


@pytest.mark.parametrize("why", ["repeated id", "cycle"])
def test_a_file_sent_back_to_two_readings_stores_what_bd_would(tmp_path: Path, why: str) -> None:
    records = [_record(n) for n in range(COUNT)]
    if why == "repeated id":
        # The later line wins: as if the earlier one were not there.
        records.append(_record(5, title="second copy"))
        expected = [r for r in records[:-1] if r["id"] != "t-5"] + [records[-1]]
    else:
        # t-7 -> t-4000 (line 8), then each n -> n // 2 down to t-15 -> t-7: the edge taken
        # last in the file's order, t-4000 -> t-2000, would close the cycle; bd drops it.
        records[7] = _record(7, dependencies=[{"depends_on_id": "t-4000", "type": "blocks"}])
        kept = _record(4000)
        kept["dependencies"] = kept["dependencies"][1:]
        expected = [*records[:4000], kept, *records[4001:]]
    sent_back, plain = _store(tmp_path, "sent-back"), _store(tmp_path, "plain")
    said: list[str] = []
    got = sent_back.import_jsonl(_write(tmp_path / "in.jsonl", records), said.append)
    assert any(line.endswith("reading in.jsonl again") for line in said)  # the two readings ran
    said.clear()
    want = plain.import_jsonl(_write(tmp_path / "want.jsonl", expected), said.append)
    assert not any("again" in line for line in said)
    assert (got.created, got.updated, got.unchanged) == (want.created, want.updated, want.unchanged)
    if why == "cycle":
        assert [(a, b) for a, b, _ in got.dropped] == [("t-4000", "t-2000")]
        assert "would make a cycle" in got.dropped[0][2]
    # The same rows, except the record that lost its edge keeps no trace of it.
    assert _rows(sent_back) == _rows(plain)


def test_a_bad_line_into_an_empty_store_leaves_it_empty_with_its_indexes(tmp_path: Path) -> None:
    """The one reading drops the indexes of an empty store while it fills it; a bad line
    after some chunks rolls all of it back, indexes included."""
    queue = _store(tmp_path, "s")
    before = _rows(queue)
    records = [_record(n) for n in range(COUNT)]
    path = _write(tmp_path / "bad.jsonl", records)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "t-x", "priority": 9}\n')
    with pytest.raises(BadInput, match=rf"bad.jsonl:{COUNT + 1} \(t-x\): priority 9 is out of range"):
        queue.import_jsonl(path)
    assert _rows(queue) == before
    result = queue.import_jsonl(_write(tmp_path / "good.jsonl", records))
    assert result.created == COUNT
    assert _rows(queue)["schema"] == before["schema"]


def test_an_edge_with_an_empty_type_is_checked_as_blocks(tmp_path: Path) -> None:
    """An empty `type` is stored as `blocks` (it blocks), so the cycle check takes it as one
    too: the edge that would close a cycle is left out. (A null one is refused.)"""
    records = [
        _record(1, dependencies=[{"depends_on_id": "t-2", "type": "blocks"}]),
        _record(2, dependencies=[{"depends_on_id": "t-1", "type": ""}]),
    ]
    queue = _store(tmp_path, "s")
    got = queue.import_jsonl(_write(tmp_path / "in.jsonl", records))
    assert [(a, b) for a, b, _ in got.dropped] == [("t-2", "t-1")]
    assert "would make a cycle" in got.dropped[0][2]
