"""Run journal SQL: runs, their tasks (or item batches), attempts, steps and test runs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

# The rows the journal reads back: TypedDicts, so `row["state"]` reads as before and mypy
# knows each column. `args` and `summary` are JSON objects whose keys depend on the kind
# of run (a run's options and waves, a map's command and items): left open.
RunArgs = dict[str, Any]
RunSummary = dict[str, Any]


StepDetail = dict[str, str | int | float | bool | None]

# Only the type checker needs the row classes: at run time a row is a plain dict, and
# making seven TypedDict classes cost every command ~2 ms of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NotRequired, TypedDict

    class RunRow(TypedDict):
        id: str
        kind: str
        state: str
        created_at: float
        ended_at: float | None
        pid: int | None
        exit_code: int | None
        args: RunArgs
        base: str | None
        summary: RunSummary | None
        owner: str | None
        # Added by readers (engine.journal.list_runs and honest_run), never stored:
        counts: NotRequired[dict[str, int]]
        recorded_state: NotRequired[str]
        owner_gone: NotRequired[bool]
        resume: NotRequired[str]

    class TaskRow(TypedDict):
        run_id: str
        task_id: str
        seq: int
        wave: int
        stage: str
        state: str
        attempts: int
        actor: str | None
        commit_sha: str | None
        landed_sha: str | None
        reason: str | None
        payload: str | None

    class TaskFields(TypedDict, total=False):
        """What an attempt's end changes on its task (`Journal.end_attempt`)."""

        state: str
        commit_sha: str
        reason: str | None
        attempts: int

    class TaskUpdate(TypedDict):
        """A finished item batch, written in bulk (`update_tasks`)."""

        task_id: str
        state: str
        attempts: int
        reason: str | None

    class AttemptRow(TypedDict):
        run_id: str
        task_id: str
        attempt: int
        worker: str | None
        pid: int | None
        started_at: float
        ended_at: float | None
        exit_code: int | None
        signal: int | None
        outcome: str | None
        reason: str | None
        tail: str | None
        log_path: str | None
        cost_usd: float | None

    class StepRow(TypedDict):
        run_id: str
        seq: int
        name: str
        detail: StepDetail | None
        state: str
        at: float

    class TestRunRow(TypedDict):
        run_id: str
        seq: int
        purpose: str
        command: str
        commits: list[str]
        exit_code: int | None
        duration: float | None
        tail: str | None
        at: float


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def insert_run(
    tx: sqlite3.Connection,
    run_id: str,
    kind: str,
    state: str,
    created_at: float,
    pid: int,
    args: Mapping[str, object],
    base: str | None,
    owner: str | None = None,
) -> None:
    tx.execute(
        "INSERT INTO runs (id, kind, state, created_at, pid, args, base, owner) VALUES (?,?,?,?,?,?,?,?)",
        (run_id, kind, state, created_at, pid, json.dumps(args), base, owner),
    )


def take_over_run(
    tx: sqlite3.Connection, run_id: str, *, was_owner: str | None, was_pid: int | None, owner: str, pid: int
) -> bool:
    """Compare-and-swap on the run's owner: True when the owner was still the one the caller
    saw (and found dead), so exactly one of several racing resumes gets the run."""
    cur = tx.execute(
        "UPDATE runs SET owner = ?, pid = ?, state = 'running', ended_at = NULL, "
        "exit_code = NULL WHERE id = ? AND owner IS ? AND pid IS ?",
        (owner, pid, run_id, was_owner, was_pid),
    )
    return cur.rowcount == 1


def update_run(tx: sqlite3.Connection, run_id: str, **fields: Any) -> None:
    if "args" in fields:
        fields["args"] = json.dumps(fields["args"])
    if "summary" in fields:
        fields["summary"] = json.dumps(fields["summary"])
    sets = ", ".join(f"{k} = ?" for k in fields)
    tx.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))


def get_run(tx: sqlite3.Connection, run_id: str) -> RunRow | None:
    found = _rows(tx.execute("SELECT * FROM runs WHERE id = ?", (run_id,)))
    return _decode_run(found[0]) if found else None


def list_runs(tx: sqlite3.Connection, limit: int = 0) -> list[RunRow]:
    sql = "SELECT * FROM runs ORDER BY created_at DESC, id DESC"
    if limit > 0:
        sql += f" LIMIT {int(limit)}"
    return [_decode_run(r) for r in _rows(tx.execute(sql))]


def latest_run(tx: sqlite3.Connection, kind: str | None = None) -> str | None:
    if kind:
        row = tx.execute(
            "SELECT id FROM runs WHERE kind = ? ORDER BY created_at DESC LIMIT 1", (kind,)
        ).fetchone()
    else:
        row = tx.execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
    return str(row[0]) if row else None


def _decode_run(row: dict[str, Any]) -> RunRow:
    row["args"] = json.loads(row["args"]) if row.get("args") else {}
    row["summary"] = json.loads(row["summary"]) if row.get("summary") else None
    return cast("RunRow", row)


def insert_tasks(tx: sqlite3.Connection, run_id: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """rows: (task_id, seq, wave, stage, state, payload-json-or-None)."""
    tx.executemany(
        "INSERT OR IGNORE INTO run_tasks (run_id, task_id, seq, wave, stage, state, payload) "
        "VALUES (?,?,?,?,?,?,?)",
        ((run_id, *r) for r in rows),
    )


def update_task(tx: sqlite3.Connection, run_id: str, task_id: str, **fields: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    tx.execute(
        f"UPDATE run_tasks SET {sets} WHERE run_id = ? AND task_id = ?", (*fields.values(), run_id, task_id)
    )


def update_tasks(tx: sqlite3.Connection, run_id: str, rows: Sequence[TaskUpdate]) -> None:
    """Batched updates for item runs."""
    tx.executemany(
        "UPDATE run_tasks SET state = ?, attempts = ?, reason = ? WHERE run_id = ? AND task_id = ?",
        ((r["state"], r["attempts"], r["reason"], run_id, r["task_id"]) for r in rows),
    )


def tasks(tx: sqlite3.Connection, run_id: str, states: Sequence[str] | None = None) -> list[TaskRow]:
    sql = "SELECT * FROM run_tasks WHERE run_id = ?"
    params: list[Any] = [run_id]
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(states)
    return cast("list[TaskRow]", _rows(tx.execute(sql + " ORDER BY seq", params)))


def task_counts(tx: sqlite3.Connection, run_id: str) -> dict[str, int]:
    return {
        s: n
        for s, n in tx.execute(
            "SELECT state, count(*) FROM run_tasks WHERE run_id = ? GROUP BY state", (run_id,)
        )
    }


def insert_attempt(
    tx: sqlite3.Connection,
    run_id: str,
    task_id: str,
    attempt: int,
    worker: str,
    started_at: float,
    log_path: str | None,
    pid: int | None = None,
) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO attempts (run_id, task_id, attempt, worker, pid, started_at,"
        " log_path) VALUES (?,?,?,?,?,?,?)",
        (run_id, task_id, attempt, worker, pid, started_at, log_path),
    )


def insert_attempts(tx: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Finished attempts in bulk (item runs): (run_id, task_id, attempt, worker, started_at,
    ended_at, exit_code, signal, outcome, reason, tail, log_path)."""
    tx.executemany(
        "INSERT OR REPLACE INTO attempts (run_id, task_id, attempt, worker, started_at, ended_at,"
        " exit_code, signal, outcome, reason, tail, log_path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def finish_attempt(tx: sqlite3.Connection, run_id: str, task_id: str, attempt: int, **fields: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    tx.execute(
        f"UPDATE attempts SET {sets} WHERE run_id = ? AND task_id = ? AND attempt = ?",
        (*fields.values(), run_id, task_id, attempt),
    )


def attempts(tx: sqlite3.Connection, run_id: str, task_id: str | None = None) -> list[AttemptRow]:
    if task_id is None:
        found = _rows(
            tx.execute(
                "SELECT * FROM attempts WHERE run_id = ? ORDER BY started_at, task_id, attempt", (run_id,)
            )
        )
    else:
        found = _rows(
            tx.execute(
                "SELECT * FROM attempts WHERE run_id = ? AND task_id = ? ORDER BY attempt", (run_id, task_id)
            )
        )
    return cast("list[AttemptRow]", found)


def add_step(tx: sqlite3.Connection, run_id: str, name: str, detail: StepDetail | None, at: float) -> int:
    seq = int(
        tx.execute("SELECT coalesce(max(seq) + 1, 0) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]
    )
    tx.execute(
        "INSERT INTO steps (run_id, seq, name, detail, state, at) VALUES (?,?,?,?,?,?)",
        (run_id, seq, name, json.dumps(detail) if detail is not None else None, "begun", at),
    )
    return seq


def finish_step(
    tx: sqlite3.Connection, run_id: str, seq: int, state: str, at: float, detail: StepDetail | None = None
) -> None:
    if detail is None:
        tx.execute(
            "UPDATE steps SET state = ?, at = ? WHERE run_id = ? AND seq = ?", (state, at, run_id, seq)
        )
    else:
        tx.execute(
            "UPDATE steps SET state = ?, at = ?, detail = ? WHERE run_id = ? AND seq = ?",
            (state, at, json.dumps(detail), run_id, seq),
        )


def add_steps(
    tx: sqlite3.Connection, run_id: str, name: str, details: Sequence[StepDetail | None], at: float
) -> list[int]:
    """`add_step` of several steps at once (one statement); their seqs, in order."""
    first = int(
        tx.execute("SELECT coalesce(max(seq) + 1, 0) FROM steps WHERE run_id = ?", (run_id,)).fetchone()[0]
    )
    tx.executemany(
        "INSERT INTO steps (run_id, seq, name, detail, state, at) VALUES (?,?,?,?,?,?)",
        (
            (run_id, first + n, name, json.dumps(detail) if detail is not None else None, "begun", at)
            for n, detail in enumerate(details)
        ),
    )
    return list(range(first, first + len(details)))


def finish_steps(
    tx: sqlite3.Connection, run_id: str, ends: Sequence[tuple[int, str, StepDetail | None]], at: float
) -> None:
    """`finish_step` of several steps: (seq, state, detail or None to keep it)."""
    tx.executemany(
        "UPDATE steps SET state = ?, at = ?, detail = coalesce(?, detail) WHERE run_id = ? AND seq = ?",
        (
            (state, at, json.dumps(detail) if detail is not None else None, run_id, seq)
            for seq, state, detail in ends
        ),
    )


def update_task_rows(tx: sqlite3.Connection, run_id: str, fields: Mapping[str, Mapping[str, Any]]) -> None:
    """`update_task` of several tasks (task id -> its new fields) in one transaction."""
    for task_id, values in fields.items():
        update_task(tx, run_id, task_id, **values)


def steps(tx: sqlite3.Connection, run_id: str) -> list[StepRow]:
    out = _rows(tx.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,)))
    for row in out:
        row["detail"] = json.loads(row["detail"]) if row["detail"] else None
    return cast("list[StepRow]", out)


def add_test_run(
    tx: sqlite3.Connection,
    run_id: str,
    purpose: str,
    command: str,
    commits: Sequence[str],
    exit_code: int | None,
    duration: float,
    tail: str,
    at: float,
) -> None:
    seq = int(
        tx.execute("SELECT coalesce(max(seq) + 1, 0) FROM test_runs WHERE run_id = ?", (run_id,)).fetchone()[
            0
        ]
    )
    tx.execute(
        "INSERT INTO test_runs (run_id, seq, purpose, command, commits, exit_code, duration,"
        " tail, at) VALUES (?,?,?,?,?,?,?,?,?)",
        (run_id, seq, purpose, command, json.dumps(list(commits)), exit_code, duration, tail, at),
    )


def test_runs(tx: sqlite3.Connection, run_id: str) -> list[TestRunRow]:
    out = _rows(tx.execute("SELECT * FROM test_runs WHERE run_id = ? ORDER BY seq", (run_id,)))
    for row in out:
        row["commits"] = json.loads(row["commits"]) if row["commits"] else []
    return cast("list[TestRunRow]", out)
