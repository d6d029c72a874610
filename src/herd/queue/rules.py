"""bd's rules for what the queue accepts: status names, priorities, sort policies, which
edges may be added and what may be closed. Pure checks over records and the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from herd.errors import BadInput, Refused
from herd.queue.model import PRIORITY_MAX, PRIORITY_MIN, STATUS_PATTERN, Record, Status
from herd.store import work as sql_work


def close_guard(tx: sqlite3.Connection, record: Record) -> str | None:
    """Why bd would not close this issue without --force, or None."""
    issue_id = record["id"]
    if record.get("status") == Status.PINNED or record.get("pinned"):
        return f"cannot close {issue_id}: it is pinned (use --force to override)"
    if record.get("issue_type") == "epic":
        children = sql_work.open_children(tx, issue_id)
        if children:
            return (
                f"cannot close epic {issue_id}: {len(children)} open child issue(s) "
                f"({', '.join(children[:3])}); close children first or use --force"
            )
    blockers = sql_work.open_blockers(tx, issue_id)
    if blockers:
        return (
            f"cannot close {issue_id}: blocked by open issues {', '.join(blockers)} (use --force to override)"
        )
    return None


def check_block_types(source: Record, target: Record) -> None:
    source_epic = source.get("issue_type") == "epic"
    if source_epic != (target.get("issue_type") == "epic"):
        raise Refused(
            "epics can only block other epics, not tasks"
            if source_epic
            else "tasks can only block other tasks, not epics"
        )


def check_sort(sort: str) -> None:
    if sort not in sql_work.SORTS:
        raise BadInput(f"unknown sort {sort!r}; use one of {', '.join(sql_work.SORTS)}")


def check_status_name(status: str) -> None:
    if not STATUS_PATTERN.fullmatch(status):
        raise BadInput(
            f"status {status!r} is not a status name; use open, in_progress, "
            "blocked, deferred, closed, pinned, hooked or a custom lowercase word"
        )


def check_statuses(statuses: Iterable[str]) -> None:
    for status in statuses:
        check_status_name(status)


def check_priority(priority: int) -> None:
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise BadInput(f"priority {priority} is out of range 0-4 (0 is most urgent)")
