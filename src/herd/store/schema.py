"""The store's schema, versioned from the first release: each migration runs once, in order."""

from __future__ import annotations

import sqlite3

# Each entry takes the schema from version i to i+1. Never edit a released one: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    -- `data` is the beads object itself (labels, dependencies and comments live in
    -- their own tables); the other columns are indexes over it, rewritten with it.
    CREATE TABLE issues (
        id          TEXT PRIMARY KEY,
        data        TEXT NOT NULL,
        title       TEXT NOT NULL,
        status      TEXT NOT NULL,
        priority    INTEGER NOT NULL,
        issue_type  TEXT NOT NULL,
        assignee    TEXT,
        created_ts  REAL,
        defer_ts    REAL,
        ephemeral   INTEGER NOT NULL DEFAULT 0,
        pinned      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX issues_by_status ON issues (status, priority, created_ts);

    CREATE TABLE dependencies (
        issue_id      TEXT NOT NULL,
        depends_on_id TEXT NOT NULL,
        type          TEXT NOT NULL,
        pos           INTEGER NOT NULL,
        data          TEXT NOT NULL,
        PRIMARY KEY (issue_id, depends_on_id, type)
    ) WITHOUT ROWID;
    CREATE INDEX dependencies_by_target ON dependencies (depends_on_id, type);

    CREATE TABLE labels (
        issue_id TEXT NOT NULL,
        label    TEXT NOT NULL,
        pos      INTEGER NOT NULL,
        PRIMARY KEY (issue_id, label)
    ) WITHOUT ROWID;
    CREATE INDEX labels_by_label ON labels (label);

    CREATE TABLE comments (
        issue_id TEXT NOT NULL,
        pos      INTEGER NOT NULL,
        data     TEXT NOT NULL,
        PRIMARY KEY (issue_id, pos)
    ) WITHOUT ROWID;

    -- Materialised "blocked" set (bd's blocked_issues_cache): rebuilt by every
    -- write that can change it, so `ready` is one indexed query.
    CREATE TABLE blocked (id TEXT PRIMARY KEY) WITHOUT ROWID;

    -- Claims are herd runtime state, not part of the beads record.
    CREATE TABLE claims (
        issue_id         TEXT PRIMARY KEY,
        actor            TEXT NOT NULL,
        claimed_at       REAL NOT NULL,
        lease_expires_at REAL
    ) WITHOUT ROWID;
    """,
    # 2: `ready` walks an index in the order it returns and stops at --limit, instead of
    # sorting every open issue (100k issues: 180 ms -> 1 ms). `id` ends each index
    # because it is every sort's tie-break.
    """
    DROP INDEX issues_by_status;
    CREATE INDEX issues_by_priority ON issues (status, priority, created_ts, id);
    CREATE INDEX issues_by_age ON issues (status, created_ts, id);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version found before migrating."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        from herd.errors import BadInput

        raise BadInput(
            f"store schema version {found} is newer than this herd ({SCHEMA_VERSION}); "
            "upgrade herd"
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration into statements so it runs inside one transaction."""
    statements, current = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            current = []
    return [s for s in statements if s]
