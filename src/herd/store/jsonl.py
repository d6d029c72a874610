"""Beads JSONL, both ways: one issue per line, written byte for byte as `bd export` does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from herd.errors import BadInput
from herd.model import PRIORITY_MAX, PRIORITY_MIN, Record, Status

_STATUSES = frozenset(s.value for s in Status)

# Go's encoding/json escapes these even inside strings; bd's files carry them.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def encode(record: Record) -> str:
    """One compact JSON line, escaped the way Go writes it (so bd's own files round-trip)."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _GO_ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def read(path: Path) -> Iterator[tuple[int, Record]]:
    """Validated records with their line numbers; the first bad line raises BadInput."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                yield number, parse_line(line, f"{path}:{number}")
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not UTF-8 text ({exc.reason}); is this a beads JSONL file?") \
                from None


def parse_line(line: str, where: str) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{where}: malformed JSON ({exc.msg} at column {exc.colno}); fix the line and import again"
        ) from None
    if not isinstance(record, dict):
        raise BadInput(f"{where}: expected a JSON object (one issue per line)")
    validate(record, where)
    return record


def validate(record: Record, where: str) -> None:
    """The checks every issue must pass before it is stored."""
    issue_id = record.get("id")
    if not isinstance(issue_id, str) or not issue_id.strip():
        raise BadInput(f"{where}: record has no \"id\"; every issue needs one")
    where = f"{where} ({issue_id})"
    if not isinstance(record.get("title", ""), str):
        raise BadInput(f"{where}: \"title\" must be a string")
    status = record.get("status", Status.OPEN.value)
    if status not in _STATUSES:
        raise BadInput(
            f"{where}: unknown status {status!r}; expected one of {', '.join(sorted(_STATUSES))}"
        )
    priority = record.get("priority", 2)
    if isinstance(priority, bool) or not isinstance(priority, int) or not (
        PRIORITY_MIN <= priority <= PRIORITY_MAX
    ):
        raise BadInput(f"{where}: priority {priority!r} is out of range 0-4")
    for key in ("labels", "dependencies", "comments"):
        value = record.get(key)
        if value is not None and not isinstance(value, list):
            raise BadInput(f"{where}: \"{key}\" must be a list")
    for label in record.get("labels") or []:
        if not isinstance(label, str):
            raise BadInput(f"{where}: labels must be strings, got {label!r}")
    for dep in record.get("dependencies") or []:
        if not isinstance(dep, dict) or not isinstance(dep.get("depends_on_id"), str):
            raise BadInput(f"{where}: each dependency needs a \"depends_on_id\"")
        owner = dep.get("issue_id", issue_id)
        if owner != issue_id:
            raise BadInput(
                f"{where}: dependency names issue_id {owner!r}, not the record's own id"
            )
    for comment in record.get("comments") or []:
        if not isinstance(comment, dict):
            raise BadInput(f"{where}: each comment must be an object")
    metadata = record.get("metadata")
    if metadata is not None and not isinstance(metadata, dict | str):
        raise BadInput(f"{where}: \"metadata\" must be an object")
