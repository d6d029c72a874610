"""Work queries: the blocked set, the ready queue, claims and leases."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from herd.model import (
    BLOCKING_TYPES,
    BLOCKS,
    CONDITIONAL_BLOCKS,
    NOT_WORK_TYPES,
    PARENT_CHILD,
    RESOLVED_STATUSES,
    WAITS_FOR,
    Status,
)

_RESOLVED = "('closed', 'pinned', 'tombstone')"

# An issue is blocked by an open `blocks`/`conditional-blocks` target, by a
# `waits-for` target that still has an unclosed child, or by a blocked parent
# (transitively). Edges to ids not in the store match no row, so never block.
_BLOCKED_SQL = f"""
WITH RECURSIVE
direct(id) AS (
    SELECT d.issue_id FROM dependencies d JOIN issues b ON b.id = d.depends_on_id
     WHERE d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}') AND b.status NOT IN {_RESOLVED}
    UNION
    SELECT d.issue_id FROM dependencies d
     WHERE d.type = '{WAITS_FOR}' AND EXISTS (
        SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
         WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
           AND ci.status NOT IN ('closed', 'tombstone'))
),
closure(id) AS (
    SELECT id FROM direct
    UNION
    SELECT d.issue_id FROM dependencies d JOIN closure c ON d.depends_on_id = c.id
     WHERE d.type = '{PARENT_CHILD}'
)
"""


def rebuild_blocked(tx: sqlite3.Connection) -> None:
    """Recompute the materialised blocked set; call after any write that can change it."""
    tx.execute("DELETE FROM blocked")
    tx.execute(_BLOCKED_SQL + "INSERT INTO blocked (id) SELECT id FROM closure")


_ORDER = {
    "priority": "i.priority, i.created_ts, i.id",
    "oldest": "i.created_ts, i.id",
}
SORTS = ("hybrid", "priority", "oldest")

_TYPES = ",".join(f"'{t}'" for t in sorted(NOT_WORK_TYPES))

_READY_WHERE = f"""
    i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
    AND i.issue_type NOT IN ({_TYPES})
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
    sort: str = "hybrid",
    assignee: str | None = None,
) -> list[str]:
    """Ids of open, unblocked, undeferred work, in bd's order.

    Each part is ordered the way an index (schema migration 2) is, so SQLite walks it
    and stops after `limit` rows instead of sorting every open issue."""
    where = _READY_WHERE
    params: dict[str, object] = {"now": now, "recent": now - 48 * 3600,
                                 "limit": limit if limit > 0 else -1}
    for n, label in enumerate(labels):
        where += f" AND EXISTS (SELECT 1 FROM labels l WHERE l.issue_id = i.id AND l.label = :l{n})"
        params[f"l{n}"] = label
    if assignee is not None:
        where += " AND (i.assignee IS NULL OR i.assignee = :assignee)"
        params["assignee"] = assignee
    if sort == "hybrid":
        # bd's hybrid: work created in the last 48 hours by priority first, then older work
        # (or work without a creation time) oldest first.
        sql = f"""
            SELECT id FROM (
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
    else:
        sql = f"SELECT i.id FROM issues i WHERE {where} ORDER BY {_ORDER[sort]} LIMIT :limit"
    return [r[0] for r in tx.execute(sql, params)]


def blocked(tx: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    """Blocked, unresolved issues with the ids blocking each (open blockers or blocked parents)."""
    rows = tx.execute(f"""
        SELECT b.id, d.depends_on_id, d.type, t.status,
               EXISTS (SELECT 1 FROM blocked bp WHERE bp.id = d.depends_on_id),
               EXISTS (SELECT 1 FROM dependencies c JOIN issues ci ON ci.id = c.issue_id
                        WHERE c.depends_on_id = d.depends_on_id AND c.type = '{PARENT_CHILD}'
                          AND ci.status NOT IN ('closed', 'tombstone'))
          FROM blocked b JOIN issues i ON i.id = b.id
          JOIN dependencies d ON d.issue_id = b.id
          JOIN issues t ON t.id = d.depends_on_id
         WHERE i.status NOT IN {_RESOLVED}
         ORDER BY i.priority, i.created_ts, b.id, d.pos
    """)
    out: dict[str, list[str]] = {}
    for issue_id, target, dep_type, status, target_blocked, open_children in rows:
        blockers = out.setdefault(issue_id, [])
        if dep_type in (BLOCKS, CONDITIONAL_BLOCKS):
            reason = status not in RESOLVED_STATUSES
        elif dep_type == PARENT_CHILD:
            reason = bool(target_blocked)
        else:
            reason = dep_type == WAITS_FOR and bool(open_children)
        if reason:
            blockers.append(target)
    return [(k, v) for k, v in out.items() if v]


def open_blockers(tx: sqlite3.Connection, issue_id: str) -> list[str]:
    """Ids this issue directly waits on (`blocks`/`conditional-blocks` targets not yet resolved)."""
    return [r[0] for r in tx.execute(f"""
        SELECT d.depends_on_id FROM dependencies d JOIN issues t ON t.id = d.depends_on_id
         WHERE d.issue_id = ? AND d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}')
           AND t.status NOT IN {_RESOLVED}
         ORDER BY d.pos""", (issue_id,))]


def is_blocked(tx: sqlite3.Connection, issue_id: str) -> bool:
    return tx.execute("SELECT 1 FROM blocked WHERE id = ?", (issue_id,)).fetchone() is not None


def blocking_edges(tx: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(issue, depends_on, type) for every edge that can block: the graph cycles live in."""
    marks = ",".join(f"'{t}'" for t in sorted(BLOCKING_TYPES))
    return list(tx.execute(
        f"SELECT issue_id, depends_on_id, type FROM dependencies WHERE type IN ({marks})"))


def dangling_edges(tx: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Edges to ids that are not in the store: they never block, but say so."""
    return list(tx.execute("""
        SELECT d.issue_id, d.depends_on_id, d.type FROM dependencies d
         WHERE NOT EXISTS (SELECT 1 FROM issues t WHERE t.id = d.depends_on_id)
         ORDER BY d.issue_id, d.pos"""))


def dependencies_of(tx: sqlite3.Connection, issue_id: str) -> list[tuple[str, str]]:
    return list(tx.execute(
        "SELECT depends_on_id, type FROM dependencies WHERE issue_id = ? ORDER BY pos", (issue_id,)))


def dependents_of(tx: sqlite3.Connection, issue_id: str) -> list[tuple[str, str]]:
    return list(tx.execute(
        "SELECT issue_id, type FROM dependencies WHERE depends_on_id = ? ORDER BY issue_id",
        (issue_id,)))


def children_of(tx: sqlite3.Connection, parent_id: str) -> list[str]:
    """Ids with a parent-child edge to `parent_id`."""
    return [r[0] for r in tx.execute(
        "SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type = ? ORDER BY issue_id",
        (parent_id, PARENT_CHILD))]


def add_dependency(tx: sqlite3.Connection, issue_id: str, target: str, dep_type: str,
                   data: str) -> bool:
    pos = tx.execute("SELECT coalesce(max(pos) + 1, 0) FROM dependencies WHERE issue_id = ?",
                     (issue_id,)).fetchone()[0]
    cur = tx.execute(
        "INSERT OR IGNORE INTO dependencies (issue_id, depends_on_id, type, pos, data) "
        "VALUES (?,?,?,?,?)", (issue_id, target, dep_type, pos, data))
    return cur.rowcount == 1


def remove_dependency(tx: sqlite3.Connection, issue_id: str, target: str,
                      dep_type: str | None) -> int:
    if dep_type is None:
        cur = tx.execute("DELETE FROM dependencies WHERE issue_id = ? AND depends_on_id = ?",
                         (issue_id, target))
    else:
        cur = tx.execute(
            "DELETE FROM dependencies WHERE issue_id = ? AND depends_on_id = ? AND type = ?",
            (issue_id, target, dep_type))
    return cur.rowcount


# -- claims -----------------------------------------------------------------

def claim(tx: sqlite3.Connection, issue_id: str, actor: str, now: float,
          lease_seconds: float | None) -> bool:
    """Compare-and-swap: open and unassigned (or already this actor's, or an expired
    lease) becomes in_progress for `actor`. False when someone else holds it."""
    cur = tx.execute(f"""
        UPDATE issues SET status = '{Status.IN_PROGRESS.value}', assignee = :actor
         WHERE id = :id AND (
              (status = 'open' AND (assignee IS NULL OR assignee = '' OR assignee = :actor))
           OR (status = 'in_progress' AND assignee = :actor)
           OR (status = 'in_progress' AND EXISTS (
                SELECT 1 FROM claims c WHERE c.issue_id = :id AND c.lease_expires_at < :now)))
    """, {"id": issue_id, "actor": actor, "now": now})
    if cur.rowcount != 1:
        return False
    expires = now + lease_seconds if lease_seconds else None
    tx.execute("INSERT OR REPLACE INTO claims (issue_id, actor, claimed_at, lease_expires_at) "
               "VALUES (?,?,?,?)", (issue_id, actor, now, expires))
    return True


def transfer_claim(tx: sqlite3.Connection, issue_id: str, old_actor: str, new_actor: str) -> bool:
    """Hand a claim held by `old_actor` to `new_actor` (a run's new owner takes over the claims
    of the dead one); False when `old_actor` does not hold it."""
    cur = tx.execute(f"UPDATE issues SET assignee = ? WHERE id = ? AND assignee = ? "
                     f"AND status = '{Status.IN_PROGRESS.value}'", (new_actor, issue_id, old_actor))
    return cur.rowcount == 1


def renew_lease(tx: sqlite3.Connection, issue_id: str, actor: str, expires: float) -> bool:
    cur = tx.execute("UPDATE claims SET lease_expires_at = ? WHERE issue_id = ? AND actor = ?",
                     (expires, issue_id, actor))
    return cur.rowcount == 1


def hold_claim(tx: sqlite3.Connection, issue_id: str, actor: str) -> bool:
    """A claim whose lease never expires (NULL): nobody else takes it over."""
    cur = tx.execute("UPDATE claims SET lease_expires_at = NULL WHERE issue_id = ? AND actor = ?",
                     (issue_id, actor))
    return cur.rowcount == 1


def release_claim(tx: sqlite3.Connection, issue_id: str) -> None:
    tx.execute("DELETE FROM claims WHERE issue_id = ?", (issue_id,))


def expired_claims(tx: sqlite3.Connection, now: float) -> list[tuple[str, str]]:
    return list(tx.execute(
        "SELECT issue_id, actor FROM claims WHERE lease_expires_at < ? ORDER BY issue_id", (now,)))
