"""Work queries: the blocked set, the ready queue, claims and leases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from herd.queue.model import (
    BLOCKS,
    CONDITIONAL_BLOCKS,
    NOT_WORK_TYPES,
    PARENT_CHILD,
    WAITS_FOR,
    Status,
)

TYPE_CHECKING = False  # not `typing`'s: importing typing costs a claim several ms
if TYPE_CHECKING:
    from typing import Any

_RESOLVED = "('closed', 'pinned', 'tombstone')"

# A waits-for edge's gate lives in the dependency's metadata, which bd writes either as an
# object or as a JSON-encoded string ("{}" in its exports).
_GATE = """coalesce(
    CASE json_type(d.data, '$.metadata')
        WHEN 'object' THEN json_extract(d.data, '$.metadata.gate')
        WHEN 'text' THEN CASE WHEN json_valid(json_extract(d.data, '$.metadata'))
                              THEN json_extract(json_extract(d.data, '$.metadata'), '$.gate') END
    END, 'all-children')"""

# bd's rules (internal/storage/issueops/blocked.go, ComputeBlockedIDsInTx): only an active
# issue (not closed or pinned) is blocked, and only by an active one. It is blocked by a
# `blocks`/`conditional-blocks` target, or by a `waits-for` spawner whose gate is not met:
# `all-children` (the default) waits while any child is active; `any-children` waits while
# the spawner has active children and none closed. The children of a blocked issue are
# blocked too (transitively, through active issues only: a closed or pinned parent passes
# nothing down). Edges to ids not in the store match no row, so never block.
_ACTIVE = f"status NOT IN {_RESOLVED}"

# The `blocks` part walks the active issues in an index that holds their status and reads
# their edges by primary key; each target's status is looked up in the list of active ids,
# built once (the unary `+` keeps SQLite from walking that list into the edges' index).
# Joining `issues` for the target instead costs two B-tree searches per edge: 100k issues,
# 444 ms -> 272 ms for the whole set.
_BLOCKED_SQL = f"""
WITH RECURSIVE
direct(id) AS (
    SELECT d.issue_id FROM issues i CROSS JOIN dependencies d
     WHERE i.{_ACTIVE} AND d.issue_id = i.id AND d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}')
       AND +d.depends_on_id IN (SELECT id FROM issues WHERE {_ACTIVE})
    UNION
    SELECT d.issue_id FROM dependencies d
      JOIN issues i ON i.id = d.issue_id AND i.{_ACTIVE}
     WHERE d.type = '{WAITS_FOR}'
       AND EXISTS (SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
                    WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
                      AND ci.{_ACTIVE})
       AND NOT ({_GATE} = 'any-children' AND EXISTS (
            SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
             WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
               AND ci.status = 'closed'))
),
closure(id, direct) AS (
    SELECT id, 1 FROM direct
    UNION
    SELECT d.issue_id, 0 FROM dependencies d JOIN closure c ON d.depends_on_id = c.id
      JOIN issues i ON i.id = d.issue_id AND i.{_ACTIVE}
     WHERE d.type = '{PARENT_CHILD}'
)
"""


def rebuild_blocked(tx: sqlite3.Connection) -> None:
    """Recompute the materialised blocked set; call after any write that can change it.
    Each row says whether the issue is blocked by its own edges (`direct`), which is what
    bd's stats count."""
    tx.execute("DELETE FROM blocked")
    tx.execute(
        _BLOCKED_SQL + "INSERT INTO blocked (id, direct) SELECT id, max(direct) FROM closure GROUP BY id"
    )


def direct_blocked_count(tx: sqlite3.Connection) -> int:
    """Issues blocked by their own edges, not through a parent (what bd's stats count):
    read from the blocked set, or computed when the set predates its `direct` column."""
    unknown, direct = tx.execute(
        "SELECT count(*) FILTER (WHERE direct IS NULL), count(*) FILTER (WHERE direct = 1) FROM blocked"
    ).fetchone()
    if unknown:
        return int(tx.execute(_BLOCKED_SQL + "SELECT count(*) FROM direct").fetchone()[0])
    return int(direct)


# bd's sort policies (issueops/ready_work.go): priority is the default; equal priority is
# newest first. Each has an index that SQLite walks in order (`issues_by_priority_newest`,
# `issues_by_age`); hybrid's recent part is a time range of `issues_by_age`, sorted.
_ORDER = {
    "priority": "i.priority, i.created_ts DESC, i.id",
    "oldest": "i.created_ts, i.id",
}
SORTS = ("priority", "hybrid", "oldest")
DEFAULT_SORT = "priority"

_READY_WHERE = f"""
    i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
    AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = i.id)
    AND (i.defer_ts IS NULL OR i.defer_ts <= :now)
    AND NOT EXISTS (
        SELECT 1 FROM dependencies p JOIN issues pi ON pi.id = p.depends_on_id
         WHERE p.issue_id = i.id AND p.type = '{PARENT_CHILD}' AND pi.defer_ts > :now)
"""


def ready(
    tx: sqlite3.Connection,
    *,
    now: float,
    limit: int = 0,
    labels: Sequence[str] = (),
    sort: str = DEFAULT_SORT,
    assignee: str | None = None,
    unassigned: bool = False,
    exclude_types: Iterable[str] = NOT_WORK_TYPES,
) -> list[str]:
    """Ids of open, unblocked, undeferred work, in bd's order (see `ready_rows`)."""
    return [
        r[0]
        for r in ready_rows(
            tx,
            now=now,
            limit=limit,
            labels=labels,
            sort=sort,
            assignee=assignee,
            unassigned=unassigned,
            exclude_types=exclude_types,
        )
    ]


def ready_rows(
    tx: sqlite3.Connection,
    *,
    columns: str = "i.id",
    now: float,
    limit: int = 0,
    labels: Sequence[str] = (),
    sort: str = DEFAULT_SORT,
    assignee: str | None = None,
    unassigned: bool = False,
    exclude_types: Iterable[str] = NOT_WORK_TYPES,
) -> sqlite3.Cursor:
    """Open, unblocked, undeferred work, in bd's order: `columns` of each issue `i` (its
    id by default; a reader asks for the record's columns, so one statement answers).

    `assignee` keeps only that assignee's issues, `unassigned` only issues nobody has.
    Each part is ordered the way an index is, so SQLite walks it and stops after `limit`
    rows instead of sorting every open issue."""
    excluded = sorted(set(exclude_types))
    where = _READY_WHERE
    params: dict[str, object] = {"now": now, "recent": now - 48 * 3600, "limit": limit if limit > 0 else -1}
    if excluded:
        where += f" AND i.issue_type NOT IN ({','.join(f':t{n}' for n in range(len(excluded)))})"
        params.update({f"t{n}": t for n, t in enumerate(excluded)})
    for n, label in enumerate(labels):
        where += f" AND EXISTS (SELECT 1 FROM labels l WHERE l.issue_id = i.id AND l.label = :l{n})"
        params[f"l{n}"] = label
    if unassigned:
        where += " AND (i.assignee IS NULL OR i.assignee = '')"
    elif assignee is not None:
        where += " AND i.assignee = :assignee"
        params["assignee"] = assignee
    if sort == "hybrid":
        # bd's hybrid: work created in the last 48 hours by priority first, then older work
        # (or work without a creation time) oldest first.
        sql = f"""
            SELECT id, part, pri, ts FROM (
                SELECT * FROM (
                    SELECT i.id AS id, 0 AS part, i.priority AS pri, i.created_ts AS ts
                      FROM issues i WHERE {where} AND i.created_ts >= :recent
                     ORDER BY i.priority, i.created_ts, i.id LIMIT :limit)
                UNION ALL
                SELECT * FROM (
                    SELECT i.id, 1, NULL, i.created_ts
                      FROM issues i WHERE {where} AND coalesce(i.created_ts >= :recent, 0) = 0
                     ORDER BY i.created_ts, i.id LIMIT :limit))
             ORDER BY part, pri, ts, id LIMIT :limit"""
        sql = (
            f"SELECT {columns} FROM ({sql}) s JOIN issues i ON i.id = s.id ORDER BY s.part, s.pri, s.ts, s.id"
        )
    else:
        sql = f"SELECT {columns} FROM issues i WHERE {where} ORDER BY {_ORDER[sort]} LIMIT :limit"
    return tx.execute(sql, params)


# An issue's own blockers: active `blocks`/`conditional-blocks` targets and `waits-for`
# spawners whose gate is not met; and the parents in the blocked set (listed when it has no
# blocker of its own). Each as a JSON array, in the order of its edges.
_OWN_BLOCKERS = f"""(SELECT json_group_array(depends_on_id) FROM (
    SELECT d.depends_on_id FROM dependencies d WHERE d.issue_id = i.id AND CASE
         WHEN d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}')
           THEN EXISTS (SELECT 1 FROM issues t WHERE t.id = d.depends_on_id
                           AND t.status NOT IN {_RESOLVED})
         WHEN d.type = '{WAITS_FOR}' THEN
           EXISTS (SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
                    WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
                      AND ci.status NOT IN {_RESOLVED})
           AND NOT ({_GATE} = 'any-children' AND EXISTS (
               SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
                WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
                  AND ci.status = 'closed'))
         ELSE 0 END
     ORDER BY d.pos))"""
_PARENT_BLOCKERS = f"""(SELECT json_group_array(depends_on_id) FROM (
    SELECT d.depends_on_id FROM dependencies d
     WHERE d.issue_id = i.id AND d.type = '{PARENT_CHILD}'
       AND EXISTS (SELECT 1 FROM blocked bp WHERE bp.id = d.depends_on_id)
     ORDER BY d.pos))"""


def blocked_rows(
    tx: sqlite3.Connection, columns: str = "i.id", chunk: int = 5000
) -> Iterator[tuple[Any, ...]]:
    """Blocked, active issues, priority first and then newest first (bd's
    GetBlockedIssuesInTx): `columns` of each issue `i`, then its own blockers and its blocked
    parents as JSON arrays. The order is taken over ids alone; the rows follow in chunks."""
    ids = [
        r[0]
        for r in tx.execute(f"""
        SELECT b.id FROM blocked b CROSS JOIN issues i ON i.id = b.id
         WHERE i.status NOT IN {_RESOLVED}
         ORDER BY i.priority, i.created_ts DESC, b.id""")
    ]
    for start in range(0, len(ids), chunk):
        yield from tx.execute(
            f"SELECT {columns}, {_OWN_BLOCKERS}, {_PARENT_BLOCKERS} "
            "FROM json_each(?) j JOIN issues i ON i.id = j.value ORDER BY j.key",
            (json.dumps(ids[start : start + chunk]),),
        )


def blocked(tx: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    """Blocked issues with the ids blocking each: its own blockers, else its blocked
    parents (an issue blocked only through its parent lists the parent)."""
    out = []
    for issue_id, own, parents in blocked_rows(tx):
        blockers = json.loads(own) or json.loads(parents)
        if blockers:
            out.append((issue_id, blockers))
    return out


def open_blockers(tx: sqlite3.Connection, issue_id: str) -> list[str]:
    """What keeps `close` from closing an issue (bd's IsBlockedInTx): its `blocks`,
    `conditional-blocks` and `waits-for` targets that are still active; a non-`blocks`
    edge is named with its type."""
    return [
        target if dep_type == BLOCKS else f"{target} ({dep_type})"
        for target, dep_type in tx.execute(
            f"""
        SELECT d.depends_on_id, d.type FROM dependencies d JOIN issues t ON t.id = d.depends_on_id
         WHERE d.issue_id = ? AND d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}', '{WAITS_FOR}')
           AND t.status NOT IN {_RESOLVED}
         ORDER BY d.pos""",
            (issue_id,),
        )
    ]


def open_children(tx: sqlite3.Connection, parent_id: str) -> list[str]:
    """Children (parent-child) that are not closed: they keep an epic from closing."""
    return [
        r[0]
        for r in tx.execute(
            f"""
        SELECT d.issue_id FROM dependencies d JOIN issues c ON c.id = d.issue_id
         WHERE d.depends_on_id = ? AND d.type = '{PARENT_CHILD}'
           AND c.status NOT IN ('closed', 'tombstone')
         ORDER BY d.issue_id""",
            (parent_id,),
        )
    ]


def cycle_edges(tx: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """The edges bd checks for cycles: `blocks` and `conditional-blocks` only
    (issueops/cycles.go); waits-for and parent-child edges may loop."""
    return list(
        tx.execute(
            f"SELECT issue_id, depends_on_id, type FROM dependencies "
            f"WHERE type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}')"
        )
    )


def dangling_edges(tx: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Edges to ids that are not in the store: they never block, but say so."""
    return list(
        tx.execute("""
        SELECT d.issue_id, d.depends_on_id, d.type FROM dependencies d
         WHERE NOT EXISTS (SELECT 1 FROM issues t WHERE t.id = d.depends_on_id)
         ORDER BY d.issue_id, d.pos""")
    )


def dependencies_of(tx: sqlite3.Connection, issue_id: str) -> list[tuple[str, str]]:
    return list(
        tx.execute(
            "SELECT depends_on_id, type FROM dependencies WHERE issue_id = ? ORDER BY pos", (issue_id,)
        )
    )


def dependents_of(tx: sqlite3.Connection, issue_id: str) -> list[tuple[str, str]]:
    return list(
        tx.execute(
            "SELECT issue_id, type FROM dependencies WHERE depends_on_id = ? ORDER BY issue_id", (issue_id,)
        )
    )


def children_of(tx: sqlite3.Connection, parent_id: str) -> list[str]:
    """Ids with a parent-child edge to `parent_id`."""
    return [
        r[0]
        for r in tx.execute(
            "SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type = ? ORDER BY issue_id",
            (parent_id, PARENT_CHILD),
        )
    ]


def add_dependency(tx: sqlite3.Connection, issue_id: str, target: str, dep_type: str, data: str) -> bool:
    pos = tx.execute(
        "SELECT coalesce(max(pos) + 1, 0) FROM dependencies WHERE issue_id = ?", (issue_id,)
    ).fetchone()[0]
    cur = tx.execute(
        "INSERT OR IGNORE INTO dependencies (issue_id, depends_on_id, type, pos, data) VALUES (?,?,?,?,?)",
        (issue_id, target, dep_type, pos, data),
    )
    return cur.rowcount == 1


def remove_dependency(tx: sqlite3.Connection, issue_id: str, target: str, dep_type: str | None) -> int:
    if dep_type is None:
        cur = tx.execute(
            "DELETE FROM dependencies WHERE issue_id = ? AND depends_on_id = ?", (issue_id, target)
        )
    else:
        cur = tx.execute(
            "DELETE FROM dependencies WHERE issue_id = ? AND depends_on_id = ? AND type = ?",
            (issue_id, target, dep_type),
        )
    return cur.rowcount


# -- claims -----------------------------------------------------------------


def claim(tx: sqlite3.Connection, issue_id: str, actor: str, now: float, lease_seconds: float | None) -> bool:
    """Compare-and-swap: open and unassigned (or already this actor's, or an expired
    lease) becomes in_progress for `actor`. False when someone else holds it."""
    cur = tx.execute(
        f"""
        UPDATE issues SET status = '{Status.IN_PROGRESS.value}', assignee = :actor
         WHERE id = :id AND (
              (status = 'open' AND (assignee IS NULL OR assignee = '' OR assignee = :actor))
           OR (status = 'in_progress' AND assignee = :actor)
           OR (status = 'in_progress' AND EXISTS (
                SELECT 1 FROM claims c WHERE c.issue_id = :id AND c.lease_expires_at < :now)))
    """,
        {"id": issue_id, "actor": actor, "now": now},
    )
    if cur.rowcount != 1:
        return False
    expires = now + lease_seconds if lease_seconds else None
    tx.execute(
        "INSERT OR REPLACE INTO claims (issue_id, actor, claimed_at, lease_expires_at) VALUES (?,?,?,?)",
        (issue_id, actor, now, expires),
    )
    return True


def transfer_claim(tx: sqlite3.Connection, issue_id: str, old_actor: str, new_actor: str) -> bool:
    """Hand a claim held by `old_actor` to `new_actor` (a run's new owner takes over the claims
    of the dead one); False when `old_actor` does not hold it."""
    cur = tx.execute(
        f"UPDATE issues SET assignee = ? WHERE id = ? AND assignee = ? "
        f"AND status = '{Status.IN_PROGRESS.value}'",
        (new_actor, issue_id, old_actor),
    )
    return cur.rowcount == 1


def renew_lease(tx: sqlite3.Connection, issue_id: str, actor: str, expires: float) -> bool:
    cur = tx.execute(
        "UPDATE claims SET lease_expires_at = ? WHERE issue_id = ? AND actor = ?", (expires, issue_id, actor)
    )
    return cur.rowcount == 1


def hold_claim(tx: sqlite3.Connection, issue_id: str, actor: str) -> bool:
    """A claim whose lease never expires (NULL): nobody else takes it over."""
    cur = tx.execute(
        "UPDATE claims SET lease_expires_at = NULL WHERE issue_id = ? AND actor = ?", (issue_id, actor)
    )
    return cur.rowcount == 1


def release_claim(tx: sqlite3.Connection, issue_id: str) -> None:
    tx.execute("DELETE FROM claims WHERE issue_id = ?", (issue_id,))


def has_expired_leases(tx: sqlite3.Connection, now: float) -> bool:
    return (
        tx.execute("SELECT 1 FROM claims WHERE lease_expires_at < ? LIMIT 1", (now,)).fetchone() is not None
    )


def expire_leases(tx: sqlite3.Connection, now: float, stamp: str) -> list[str]:
    """Give back every claim whose lease ran out: the issue is open and unassigned again,
    so `ready` offers it and anyone may claim it. A held claim (no lease) never expires."""
    expired = [
        r[0]
        for r in tx.execute(
            "SELECT c.issue_id FROM claims c JOIN issues i ON i.id = c.issue_id "
            "WHERE c.lease_expires_at < ? AND i.status = 'in_progress' ORDER BY c.issue_id",
            (now,),
        )
    ]
    tx.executemany(
        "UPDATE issues SET status = 'open', assignee = NULL, "
        "data = json_set(json_remove(data, '$.assignee'), '$.status', 'open', '$.updated_at', ?) "
        "WHERE id = ?",
        [(stamp, issue_id) for issue_id in expired],
    )
    tx.execute("DELETE FROM claims WHERE lease_expires_at < ?", (now,))
    return expired
