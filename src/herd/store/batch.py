"""A batch's blockers, for `herd plan`: the store's blocking rules applied to a set of
tasks that may block each other (those edges only order the batch)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from herd.queue.model import BLOCKS, CONDITIONAL_BLOCKS, PARENT_CHILD, WAITS_FOR
from herd.store.work import _BLOCKED_SQL

# The blocked set as if the batch's own members could not block anyone: the same rules
# (_BLOCKED_SQL), read through a `dependencies` that drops the edges pointing at a member.
# A member still in that set is blocked by something outside the batch; edges between
# members only order the batch. SQLite lets a CTE shadow the table of the same name.
_BLOCKED_OUTSIDE_SQL = (
    _BLOCKED_SQL.replace(
        "WITH RECURSIVE",
        """WITH RECURSIVE
dependencies AS (
    SELECT * FROM main.dependencies
     WHERE depends_on_id NOT IN (SELECT value FROM json_each(:members))
),""",
        1,
    )
    + "SELECT id FROM closure WHERE id IN (SELECT value FROM json_each(:members))"
)
assert _BLOCKED_OUTSIDE_SQL.count("main.dependencies") == 1, "_BLOCKED_SQL lost its WITH"


def blocked_outside(tx: sqlite3.Connection, members: Sequence[str]) -> set[str]:
    """The members that stay blocked when every member counts as done: what blocks them
    lies outside the batch."""
    return {r[0] for r in tx.execute(_BLOCKED_OUTSIDE_SQL, {"members": json.dumps(list(members))})}


def batch_edges(
    tx: sqlite3.Connection, members: Sequence[str]
) -> list[tuple[str, str, str, str, str | None]]:
    """(member, node, target, type, target's status or None when not in the store) for the
    blocking edges of each member and of its ancestors outside the batch (parent-child,
    transitively): one query for the whole batch, in the members' order."""
    return list(
        tx.execute(
            f"""
        WITH RECURSIVE
        member(id, k) AS (SELECT value, key FROM json_each(:members)),
        node(member, k, id) AS (
            SELECT id, k, id FROM member
            UNION
            SELECT n.member, n.k, d.depends_on_id FROM node n
              JOIN main.dependencies d ON d.issue_id = n.id AND d.type = '{PARENT_CHILD}'
             WHERE d.depends_on_id NOT IN (SELECT id FROM member)
        )
        SELECT n.member, n.id, d.depends_on_id, d.type, t.status
          FROM node n JOIN main.dependencies d ON d.issue_id = n.id
          LEFT JOIN issues t ON t.id = d.depends_on_id
         WHERE d.type IN ('{BLOCKS}', '{CONDITIONAL_BLOCKS}', '{PARENT_CHILD}', '{WAITS_FOR}')
         ORDER BY n.k, n.id = n.member DESC, n.id, d.pos""",
            {"members": json.dumps(list(members))},
        )
    )
