"""The store's schema, versioned from the first release: each migration runs once, in order."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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
    # 3: the run journal.
    """
    -- The run journal: every run (`herd run`, `herd map`, pipelines), what it was
    -- asked to do, and every step, attempt and test run, written before the step
    -- is taken and marked when it is done, so `herd resume` can replay it.
    CREATE TABLE runs (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        state      TEXT NOT NULL,
        created_at REAL NOT NULL,
        ended_at   REAL,
        pid        INTEGER,
        exit_code  INTEGER,
        args       TEXT NOT NULL,
        base       TEXT,
        summary    TEXT
    ) WITHOUT ROWID;

    -- One row per task (herd run) or item batch (herd map) in a run.
    CREATE TABLE run_tasks (
        run_id     TEXT NOT NULL,
        task_id    TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        wave       INTEGER NOT NULL DEFAULT 0,
        stage      TEXT NOT NULL DEFAULT '',
        state      TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        actor      TEXT,
        commit_sha TEXT,
        landed_sha TEXT,
        reason     TEXT,
        payload    TEXT,
        PRIMARY KEY (run_id, task_id)
    ) WITHOUT ROWID;
    CREATE INDEX run_tasks_by_state ON run_tasks (run_id, state, seq);

    CREATE TABLE attempts (
        run_id      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        worker      TEXT,
        pid         INTEGER,
        started_at  REAL NOT NULL,
        ended_at    REAL,
        exit_code   INTEGER,
        signal      INTEGER,
        outcome     TEXT,
        reason      TEXT,
        tail        TEXT,
        log_path    TEXT,
        cost_usd    REAL,
        PRIMARY KEY (run_id, task_id, attempt)
    ) WITHOUT ROWID;

    CREATE TABLE steps (
        run_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        name   TEXT NOT NULL,
        detail TEXT,
        state  TEXT NOT NULL,
        at     REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE test_runs (
        run_id   TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        purpose  TEXT NOT NULL,
        command  TEXT NOT NULL,
        commits  TEXT,
        exit_code INTEGER,
        duration REAL,
        tail     TEXT,
        at       REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    """,
    # 4: who drives a run. `pid` alone cannot tell a dead herd from a live process that
    # reused its pid, nor two resumes apart; `owner` names one process (host, pid, start
    # time, a random token) and taking a run over is a compare-and-swap on it.
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    """,
    # 5: `ready` sorts as bd does by default, priority first and then newest first; this
    # index lets SQLite walk that order and stop at --limit.
    """
    CREATE INDEX issues_by_priority_newest ON issues (status, priority, created_ts DESC, id);
    """,
    # 6: how `data` is laid out. 1: a marker stands where each child list and derived count
    # goes, so a record is read as text with its children spliced in (store/records.py);
    # 0: rows written before, null placeholders, decoded and rebuilt when read.
    # The blocked set also says which issues are blocked by their own edges (NULL: not
    # known yet, until the next write rebuilds the set), and an index answers `stats`'
    # counts without reading the records: 100k issues, 2.5 s -> tens of ms.
    """
    ALTER TABLE issues ADD COLUMN layout INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE blocked ADD COLUMN direct INTEGER;
    CREATE INDEX issues_by_kind ON issues (ephemeral, status, pinned);
    """,
    # 7: the rows written before 6 get the markers too: a Python step (`_PYTHON_STEPS`).
    """
    -- rows re-encoded by store.records.relayout
    """,
    # 8: since 5, only `ready --sort hybrid` used the oldest-first priority index of 2, for
    # its recent part, which SQLite finds as well by `issues_by_age`'s time range and sorts
    # (the recent issues only). Every write paid for it: an import of 100k issues spent
    # ~2% of its time building it.
    """
    DROP INDEX IF EXISTS issues_by_priority;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def _relayout(conn: sqlite3.Connection) -> None:
    if conn.execute("SELECT 1 FROM issues LIMIT 1").fetchone() is None:
        return  # a new store: nothing to re-encode (and no import of the record codec)
    from herd.store.records import relayout

    relayout(conn)


#: What SQL cannot say, run after the migration of the same index in its transaction.
_PYTHON_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {6: _relayout}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version found before migrating."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        from herd.errors import BadInput

        raise BadInput(
            f"store schema version {found} is newer than this herd ({SCHEMA_VERSION}); upgrade herd"
        )
    if found == SCHEMA_VERSION:
        return found
    # Several processes may open a new store at once (`herd map`'s per-user store):
    # the version read above is only a hint. Each step re-reads it inside its own
    # write transaction, so only one process runs a migration and the others see it done.
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current == version:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                if version in _PYTHON_STEPS:
                    _PYTHON_STEPS[version](conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
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
