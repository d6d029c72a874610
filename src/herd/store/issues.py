"""Issue rows, labels, dependencies and comments: SQL in per-transaction functions.

Each function takes an open connection inside a transaction the caller owns
(see `Store.write`/`Store.read`) and does one thing.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from herd.queue.model import (
    DERIVED_COUNTS,
    PARENT_CHILD,
    Record,
    Status,
    edge_type,
    parse_time,
    set_field,
)
from herd.store import records

# `typing` costs every command several ms of imports; mypy reads any `TYPE_CHECKING` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_COLUMNS = (
    "id, data, title, status, priority, issue_type, assignee, created_ts, defer_ts, ephemeral, pinned, layout"
)


def _row(record: Record) -> tuple[Any, ...]:
    data, layout = records.marked_data(record)
    get = record.get
    defer = get("defer_until")
    return (
        record["id"],
        data,
        get("title") or "",
        get("status") or Status.OPEN.value,
        get("priority", 2),
        get("issue_type") or "task",
        get("assignee") or None,
        _time(get("created_at")),
        None if defer is None else _time(defer),
        1 if get("ephemeral") else 0,
        1 if get("pinned") else 0,
        layout,
    )


_fromisoformat = datetime.fromisoformat


def _time(value: object) -> float | None:
    """`parse_time`, with the common case (a time with its zone that `fromisoformat` reads
    as it is) first: an import reads one per issue."""
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            return parse_time(value)
        if parsed.tzinfo is not None:
            return parsed.timestamp()
    return parse_time(value)


def put_issues(tx: sqlite3.Connection, records: Sequence[Record], *, new: bool = False) -> None:
    """Insert or replace whole issues, children included (import, create). `new`: none of
    the ids is stored, so there are no old children to delete."""
    if not new:
        # One statement per table for the whole batch (the ids as a JSON array).
        ids = _dump([r["id"] for r in records])
        for table in ("labels", "dependencies", "comments"):
            tx.execute(f"DELETE FROM {table} WHERE issue_id IN (SELECT value FROM json_each(?))", (ids,))
    tx.executemany(
        f"INSERT OR REPLACE INTO issues ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [_row(r) for r in records],
    )
    tx.executemany(
        "INSERT OR REPLACE INTO labels (issue_id, label, pos) VALUES (?,?,?)",
        [(r["id"], label, i) for r in records for i, label in enumerate(r.get("labels") or [])],
    )
    tx.executemany(
        "INSERT OR REPLACE INTO dependencies (issue_id, depends_on_id, type, pos, data) VALUES (?,?,?,?,?)",
        [
            (r["id"], d["depends_on_id"], edge_type(d), i, _dump(d))
            for r in records
            for i, d in enumerate(r.get("dependencies") or [])
        ],
    )
    tx.executemany(
        "INSERT INTO comments (issue_id, pos, data) VALUES (?,?,?)",
        [(r["id"], i, _dump(c)) for r in records for i, c in enumerate(r.get("comments") or [])],
    )


def update_issue(tx: sqlite3.Connection, record: Record) -> None:
    """Rewrite an issue's own fields (not its children) after a change."""
    row = _row(record)
    tx.execute(
        "UPDATE issues SET data=?, title=?, status=?, priority=?, issue_type=?, assignee=?, "
        "created_ts=?, defer_ts=?, ephemeral=?, pinned=?, layout=? WHERE id=?",
        (*row[1:], row[0]),
    )


def get(tx: sqlite3.Connection, issue_id: str) -> Record | None:
    row = tx.execute("SELECT data FROM issues WHERE id = ?", (issue_id,)).fetchone()
    # Child keys stay as null placeholders so an update keeps their place.
    return records.unmark(json.loads(row[0])) if row else None


def existing(tx: sqlite3.Connection, ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    wanted = list(dict.fromkeys(ids))
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in tx.execute(f"SELECT id FROM issues WHERE id IN ({marks})", chunk))
    return found


def missing(tx: sqlite3.Connection, ids: Sequence[str]) -> list[str]:
    """The ids (in the order given, once each) that are not in the store."""
    wanted = list(dict.fromkeys(ids))
    found = existing(tx, wanted)
    return [i for i in wanted if i not in found]


def count(tx: sqlite3.Connection) -> int:
    return int(tx.execute("SELECT count(*) FROM issues").fetchone()[0])


def all_ids(tx: sqlite3.Connection) -> list[str]:
    return [r[0] for r in tx.execute("SELECT id FROM issues ORDER BY id")]


def children_count(tx: sqlite3.Connection, parent_id: str) -> int:
    row = tx.execute(
        "SELECT count(*) FROM dependencies WHERE depends_on_id = ? AND type = ?",
        (parent_id, PARENT_CHILD),
    ).fetchone()
    return int(row[0])


def full(
    tx: sqlite3.Connection, ids: Sequence[str], *, counts: bool = True, add_counts: bool = False
) -> list[Record]:
    """Whole beads records, children re-attached in their original place, in `ids` order.
    The derived counts are refreshed where a record has them (`counts` is kept for callers:
    they always are now, it costs one indexed count per chunk), and added where it has not
    with `add_counts` (bd's export always writes them)."""
    if not add_counts:
        return list(records.stream(tx, ids))
    rows: dict[str, Record] = {}
    labels: dict[str, list[str]] = defaultdict(list)
    deps: dict[str, list[Record]] = defaultdict(list)
    comments: dict[str, list[Record]] = defaultdict(list)
    dependents: dict[str, int] = defaultdict(int)
    for chunk in _chunks(list(ids)):
        marks = ",".join("?" * len(chunk))
        for issue_id, data in tx.execute(f"SELECT id, data FROM issues WHERE id IN ({marks})", chunk):
            rows[issue_id] = records.unmark(json.loads(data))
        for issue_id, label in tx.execute(
            f"SELECT issue_id, label FROM labels WHERE issue_id IN ({marks}) ORDER BY issue_id, pos",
            chunk,
        ):
            labels[issue_id].append(label)
        for issue_id, data in tx.execute(
            f"SELECT issue_id, data FROM dependencies WHERE issue_id IN ({marks}) ORDER BY issue_id, pos",
            chunk,
        ):
            deps[issue_id].append(json.loads(data))
        for issue_id, data in tx.execute(
            f"SELECT issue_id, data FROM comments WHERE issue_id IN ({marks}) ORDER BY issue_id, pos",
            chunk,
        ):
            comments[issue_id].append(json.loads(data))
        if counts:
            for target, n in tx.execute(
                f"SELECT depends_on_id, count(*) FROM dependencies WHERE depends_on_id IN ({marks}) "
                "GROUP BY depends_on_id",
                chunk,
            ):
                dependents[target] = n
    out = []
    for issue_id in ids:
        record = rows.get(issue_id)
        if record is None:
            continue
        for key, values in (
            ("labels", labels[issue_id]),
            ("dependencies", deps[issue_id]),
            ("comments", comments[issue_id]),
        ):
            if values:
                set_field(record, key, values)
            else:
                record.pop(key, None)
        derived = {
            "dependency_count": len(deps[issue_id]),
            "dependent_count": dependents[issue_id],
            "comment_count": len(comments[issue_id]),
        }
        for key in DERIVED_COUNTS:
            if key in record or add_counts:
                set_field(record, key, derived[key])
        out.append(record)
    return out


def add_label(tx: sqlite3.Connection, issue_id: str, label: str) -> bool:
    pos = tx.execute(
        "SELECT coalesce(max(pos) + 1, 0) FROM labels WHERE issue_id = ?", (issue_id,)
    ).fetchone()[0]
    cur = tx.execute(
        "INSERT OR IGNORE INTO labels (issue_id, label, pos) VALUES (?,?,?)", (issue_id, label, pos)
    )
    return cur.rowcount == 1


def remove_label(tx: sqlite3.Connection, issue_id: str, label: str) -> bool:
    cur = tx.execute("DELETE FROM labels WHERE issue_id = ? AND label = ?", (issue_id, label))
    return cur.rowcount == 1


def add_comment(tx: sqlite3.Connection, issue_id: str, comment: Record) -> None:
    pos = tx.execute(
        "SELECT coalesce(max(pos) + 1, 0) FROM comments WHERE issue_id = ?", (issue_id,)
    ).fetchone()[0]
    tx.execute("INSERT INTO comments (issue_id, pos, data) VALUES (?,?,?)", (issue_id, pos, _dump(comment)))


def comments_of(tx: sqlite3.Connection, issue_id: str) -> list[Record]:
    return [
        json.loads(r[0])
        for r in tx.execute("SELECT data FROM comments WHERE issue_id = ? ORDER BY pos", (issue_id,))
    ]


def select(
    tx: sqlite3.Connection,
    *,
    statuses: Sequence[str] | None,
    label: str | None = None,
    issue_type: str | None = None,
    limit: int = 0,
) -> list[str]:
    """Ids for `list`: newest first as bd lists them."""
    return [r[0] for r in select_rows(tx, statuses=statuses, label=label, issue_type=issue_type, limit=limit)]


def select_rows(
    tx: sqlite3.Connection,
    *,
    columns: str = "i.id",
    statuses: Sequence[str] | None,
    label: str | None = None,
    issue_type: str | None = None,
    limit: int = 0,
) -> sqlite3.Cursor:
    """`columns` of each issue `i` for `list`, newest first as bd lists them."""
    where: list[str] = []
    params: list[object] = []
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if label:
        where.append("id IN (SELECT issue_id FROM labels WHERE label = ?)")
        params.append(label)
    if issue_type:
        where.append("issue_type = ?")
        params.append(issue_type)
    sql = f"SELECT {columns} FROM issues i"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY priority, created_ts DESC, id"
    if limit > 0:
        sql += f" LIMIT {int(limit)}"
    return tx.execute(sql, params)


def status_counts(tx: sqlite3.Connection) -> dict[str, int]:
    """Issues per status, ephemeral ones left out (bd keeps those in a separate table that
    its stats do not count)."""
    return {
        s: n for s, n in tx.execute("SELECT status, count(*) FROM issues WHERE ephemeral = 0 GROUP BY status")
    }


def pinned_count(tx: sqlite3.Connection) -> int:
    """bd counts the `pinned` flag, not a status."""
    return int(tx.execute("SELECT count(*) FROM issues WHERE ephemeral = 0 AND pinned = 1").fetchone()[0])


def export_ids(tx: sqlite3.Connection, *, include_ephemeral: bool) -> list[str]:
    """Ids in bd's export order (issueops/search.go): priority, newest first, id."""
    where = "" if include_ephemeral else " WHERE ephemeral = 0"
    return [r[0] for r in tx.execute(f"SELECT id FROM issues{where} ORDER BY priority, created_ts DESC, id")]


_dump = records.encode


def _chunks(items: list[str], size: int = 900) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_issues(tx: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Remove issues with their labels, edges, comments and claims (a tombstone on import).
    Edges from other issues to them stay, as dangling edges that never block."""
    rows = [(i,) for i in ids]
    for table, column in (
        ("labels", "issue_id"),
        ("dependencies", "issue_id"),
        ("comments", "issue_id"),
        ("claims", "issue_id"),
        ("blocked", "id"),
        ("issues", "id"),
    ):
        tx.executemany(f"DELETE FROM {table} WHERE {column} = ?", rows)


@contextmanager
def savepoint(tx: sqlite3.Connection, name: str) -> Iterator[None]:
    """A part of the transaction undone on its own when the block raises (the exception
    goes on; the caller's transaction stays open)."""
    tx.execute(f'SAVEPOINT "{name}"')
    try:
        yield
    except BaseException:
        tx.execute(f'ROLLBACK TO "{name}"')
        tx.execute(f'RELEASE "{name}"')
        raise
    tx.execute(f'RELEASE "{name}"')


# The tables a whole-store write (an import) fills.
_BULK_TABLES = ("issues", "labels", "dependencies", "comments")


def empty(tx: sqlite3.Connection) -> bool:
    return tx.execute("SELECT 1 FROM issues LIMIT 1").fetchone() is None


def drop_indexes(tx: sqlite3.Connection) -> list[str]:
    """Drop the secondary indexes of the issue tables and return their definitions for
    `create_indexes`, to call when the rows are in: for a store being filled from empty,
    SQLite then sorts each index once instead of inserting row by row into every B-tree.
    Both happen in the caller's transaction: a rollback (or a crash before the commit)
    keeps the indexes."""
    marks = ",".join("?" * len(_BULK_TABLES))
    rows = tx.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks}) ORDER BY name",
        _BULK_TABLES,
    ).fetchall()
    for name, _ in rows:
        tx.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def create_indexes(tx: sqlite3.Connection, definitions: Sequence[str]) -> None:
    for sql in definitions:
        tx.execute(sql)
