"""Issue, dependency and status vocabulary shared by every module (no I/O).

An issue is kept as the beads JSON object itself (an ordered dict), so fields
herd does not know survive untouched; this module says what the known fields
mean and in which order bd writes them.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime

# `typing` costs every command several ms of imports; mypy reads any `TYPE_CHECKING` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Record = dict[str, "Any"]


class Status(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DEFERRED = "deferred"
    CLOSED = "closed"
    PINNED = "pinned"
    HOOKED = "hooked"
    TOMBSTONE = "tombstone"  # bd's soft delete; kept for round trips, hidden everywhere


#: A blocker in one of these states no longer blocks anything.
RESOLVED_STATUSES = frozenset({Status.CLOSED, Status.PINNED, Status.TOMBSTONE})

#: Dependency types that can block; every other type is kept and shown, never blocks.
BLOCKS = "blocks"
PARENT_CHILD = "parent-child"
CONDITIONAL_BLOCKS = "conditional-blocks"
WAITS_FOR = "waits-for"
DISCOVERED_FROM = "discovered-from"
BLOCKING_TYPES = frozenset({BLOCKS, PARENT_CHILD, CONDITIONAL_BLOCKS, WAITS_FOR})

#: Only these edges are checked for cycles (bd's issueops/cycles.go and dependencies.go).
CYCLE_CHECKED_TYPES = frozenset({BLOCKS, CONDITIONAL_BLOCKS})

#: Issue types bd's `ready` never lists (issueops/ready_work.go).
NOT_WORK_TYPES = frozenset({"merge-request", "gate", "molecule", "message", "agent", "role", "rig"})

#: Ready, but not work a worker can do on its own: `herd run --ready` leaves them out.
CONTAINER_TYPES = frozenset({"epic"})

#: bd's configurable statuses: any lowercase word is accepted; all but closed and pinned
#: block their dependents like open does.
STATUS_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")

ISSUE_TYPES = ("task", "bug", "feature", "chore", "epic")  # offered by `create`; others import fine

PRIORITY_MIN, PRIORITY_MAX = 0, 4

#: The order bd writes an issue's fields in; fields herd adds to an existing
#: record are placed by it, fields it does not know keep their own place.
FIELD_ORDER = (
    "id",
    "content_hash",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "owner",
    "estimated_minutes",
    "created_at",
    "created_by",
    "updated_at",
    "started_at",
    "pinned",
    "closed_at",
    "close_reason",
    "defer_until",
    "due_at",
    "labels",
    "external_ref",
    "dependencies",
    "ephemeral",
    "comments",
    "hook_bead",
    "wisp_type",
    "deleted_at",
    "work_type",
    "agent_state",
    "deleted_by",
    "last_activity",
    "delete_reason",
    "dependency_count",
    "original_type",
    "dependent_count",
    "await_type",
    "comment_count",
    "await_id",
    "parent",
    "timeout",
    "metadata",
)
FIELD_RANK = {name: i for i, name in enumerate(FIELD_ORDER)}
_FIELD_RANK = FIELD_RANK

#: Counts bd derives from the graph; recomputed on export.
DERIVED_COUNTS = ("dependency_count", "dependent_count", "comment_count")


def edge_type(dep: Record) -> str:
    """A dependency's type as herd stores and checks it: `blocks` when it has none (or an
    empty one), so what blocks is also what the cycle check sees."""
    return dep.get("type") or BLOCKS


def now_iso() -> str:
    """Timestamps as bd writes them: RFC 3339, UTC, second precision, trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> float | None:
    """Seconds since the epoch for an RFC 3339 string, None for empty or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts at most microseconds; bd may write nanoseconds.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
        text = f"{head}.{rest}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def set_field(record: Record, key: str, value: Any) -> None:
    """Set `key`, placing a new key where bd would write it rather than at the end."""
    if key in record:
        record[key] = value
        return
    rank = _FIELD_RANK.get(key, len(FIELD_ORDER))
    items = list(record.items())
    position = len(items)
    for i, (existing, _) in enumerate(items):
        if _FIELD_RANK.get(existing, -1) > rank:
            position = i
            break
    items.insert(position, (key, value))
    record.clear()
    record.update(items)


def herd_meta(record: Record) -> dict[str, Any]:
    """herd's own fields, kept under metadata.herd so bd users lose nothing."""
    metadata = record.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    herd = metadata.get("herd")
    return herd if isinstance(herd, dict) else {}


def scope_of(record: Record) -> tuple[list[str], list[str]]:
    meta = herd_meta(record)
    return list(meta.get("scope") or []), list(meta.get("out_of_scope") or [])


def criteria_of(record: Record) -> list[str]:
    """Success criteria: one per line of acceptance_criteria, list markers removed."""
    text = record.get("acceptance_criteria") or ""
    lines = []
    for raw in str(text).splitlines():
        line = raw.strip()
        for marker in ("- [ ] ", "- [x] ", "- ", "* "):
            if line.startswith(marker):
                line = line[len(marker) :]
                break
        else:
            number, dot, rest = line.partition(". ")
            if dot and number.isdigit():
                line = rest
        if line:
            lines.append(line)
    return lines
