"""Beads JSONL, both ways: one issue per line, written byte for byte as `bd export` does."""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Iterator

from herd.errors import BadInput
from herd.queue.model import PRIORITY_MAX, PRIORITY_MIN, STATUS_PATTERN, Record

TYPE_CHECKING = False  # mypy reads any `TYPE_CHECKING` as true
if TYPE_CHECKING:
    from pathlib import Path

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


def read(path: Path, skipped: list[int] | None = None, *, check: bool = True) -> Iterator[tuple[int, Record]]:
    """Validated issue records with their line numbers; the first bad line raises BadInput.

    Lines that are not issues (a `{"_schema": ...}` header, `"_type": "memory"` records)
    are left out, their numbers added to `skipped`. `check=False` skips the validation (a
    second reading of a file already read)."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    scan = _scan_once
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                # The common line, an issue that passes every check, in one go; any other
                # (not one JSON object alone on its line, not an issue, a check to explain,
                # a blank line) takes `parse_line`, which reads it with `json.loads`.
                try:
                    record, end = scan(line, 0)
                except (StopIteration, ValueError):
                    record = end = None
                if (
                    type(record) is dict
                    and (end == len(line) or line[end:] == "\n")
                    and "id" in record
                    and record.pop("_type", "issue") == "issue"
                    and (not check or _plainly_valid(record, "\\" not in line or "\\u0000" not in line))
                ):
                    yield number, record
                    continue
                if line.isspace():
                    continue
                record = parse_line(line, f"{path}:{number}", check=check)
                if record is None:
                    if skipped is not None:
                        skipped.append(number)
                    continue
                yield number, record
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not UTF-8 text ({exc.reason}); is this a beads JSONL file?") from None


# What `json.loads` runs on a line after two whitespace matches and two Python calls:
# `(value, end)` for the JSON value at an index, StopIteration when none starts there.
# (`JSONDecoder.__init__` makes its `scan_once` so.)
_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: a decoder is its context


def parse_line(line: str, where: str, *, check: bool = True) -> Record | None:
    """The issue on one line, validated; None for a line that is not an issue."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{where}: malformed JSON ({exc.msg} at column {exc.colno}); fix the line and import again"
        ) from None
    if not isinstance(record, dict):
        raise BadInput(f"{where}: expected a JSON object (one issue per line)")
    if not is_issue(record):
        return None
    record.pop("_type", None)
    if check:
        validate(record, where)
    return record


def is_issue(record: Record) -> bool:
    """bd ≥ 1.0 tags each line with `_type`; older files have no tag but always an `id`.
    A line without an id that carries `_`-prefixed keys (`_schema`) is a header, not a
    broken issue."""
    kind = record.get("_type")
    if kind is not None:
        return bool(kind == "issue")
    return "id" in record or not any(str(key).startswith("_") for key in record)


# Fields bd types as strings: a number or a list there is a broken file, not a value.
_TEXT_FIELDS = (
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "issue_type",
    "assignee",
    "owner",
    "created_by",
    "close_reason",
    "external_ref",
    "created_at",
    "updated_at",
    "started_at",
    "closed_at",
    "defer_until",
    "due_at",
)
_TEXT_SET = frozenset(_TEXT_FIELDS)
_FLAG_FIELDS = ("ephemeral", "pinned", "wisp")
_NUL_OR_SPACE = re.compile(r"[\s\0]")  # \s is str.isspace's set


def _check_text_fields(record: Record, where: str) -> None:
    for key in _TEXT_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadInput(f'{where}: "{key}" must be a string, got {_json_type(value)}')
        if "\0" in value:
            raise BadInput(f'{where}: "{key}" contains a NUL character; remove it')


_NONE = type(None)
# The types `validate` lets each field have (a field not named here may hold anything).
_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    **{key: frozenset({str, _NONE}) for key in _TEXT_FIELDS},
    **{key: frozenset({bool, _NONE}) for key in _FLAG_FIELDS},
    "id": frozenset({str}),
    "priority": frozenset({int}),
    "labels": frozenset({list, _NONE}),
    "dependencies": frozenset({list, _NONE}),
    "comments": frozenset({list, _NONE}),
    "metadata": frozenset({dict, _NONE}),
}
#: Whether each shape met (the record's keys, then the types of their values, in one
#: tuple) passes the type checks: a file's records share a few shapes.
_SHAPES: dict[tuple[str | type, ...], bool] = {}
#: Statuses already matched against STATUS_PATTERN (a file uses a handful).
_GOOD_STATUSES: set[str] = set()
_STR = frozenset({str})
# (An int, by its type: a bool or a float is not one.)
_PRIORITIES = frozenset(range(PRIORITY_MIN, PRIORITY_MAX + 1))
_DICT = frozenset({dict})


def _plainly_valid(record: Record, nul_free: bool) -> bool:
    """True when `validate` would find nothing, checked without naming anything (an import
    checks every line: this is the cost of 100k lines). False when in doubt: `validate`
    then finds the error, or finds none. `nul_free`: the line has no `\\u0000` escape, so
    no string in it holds a NUL (JSON text cannot carry a raw one)."""
    shape: tuple[str | type, ...] = (*record, *map(type, record.values()))
    typed = _SHAPES.get(shape)
    if typed is None:
        typed = all(
            allowed is None or kind in allowed
            for allowed, kind in zip(map(_ALLOWED_TYPES.get, record), shape[len(record) :], strict=True)
        )
        if len(_SHAPES) < 1024:
            _SHAPES[shape] = typed
    if not typed:
        return False
    # From here each field has a type `validate` allows.
    issue_id = record["id"]
    # No white space and no NUL (what `validate` looks for with _NUL_OR_SPACE): every such
    # character but the space is unprintable (an id with another unprintable one goes to
    # `validate`, which may well pass it).
    if not issue_id or not issue_id.isprintable() or " " in issue_id:
        return False
    if not nul_free and "\0" in "".join(filter(None, map(record.get, _TEXT_FIELDS))):
        return False
    status = record.get("status")
    if status is not None and status not in _GOOD_STATUSES:
        if not STATUS_PATTERN.fullmatch(status):
            return False
        if len(_GOOD_STATUSES) < 256:
            _GOOD_STATUSES.add(status)
    if record.get("priority", PRIORITY_MIN) not in _PRIORITIES:
        return False
    labels = record.get("labels")
    if labels and not set(map(type, labels)) <= _STR:
        return False
    for dep in record.get("dependencies") or ():
        if type(dep) is not dict:
            return False
        target = dep.get("depends_on_id")
        if (
            type(target) is not str
            or not target.strip()
            or type(dep.get("type", "")) is not str
            or dep.get("issue_id", issue_id) != issue_id
        ):
            return False
    comments = record.get("comments")
    if comments and not set(map(type, comments)) <= _DICT:
        return False
    metadata = record.get("metadata")
    return metadata is None or "herd" not in metadata


def validate(record: Record, where: str) -> None:
    """The checks every issue must pass before it is stored: one line each, naming the
    line, the issue and the field."""
    issue_id = record.get("id")
    if not isinstance(issue_id, str) or not issue_id.strip():
        raise BadInput(f'{where}: record has no "id"; every issue needs one')
    if _NUL_OR_SPACE.search(issue_id):
        raise BadInput(f"{where}: id {issue_id!r} contains a NUL or white space")
    where = f"{where} ({issue_id})"
    # The common case checked in one pass over the fields present; the named error is
    # found by the ordered loop (an import checks every line: 100k lines, -1 s).
    if not all(
        value is None or (type(value) is str and "\0" not in value)
        for value in map(record.get, record.keys() & _TEXT_SET)
    ):
        _check_text_fields(record, where)
    for key in _FLAG_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], bool):
            raise BadInput(f'{where}: "{key}" must be true or false, got {record[key]!r}')
    status = record.get("status")
    if status is not None and not STATUS_PATTERN.fullmatch(status):
        raise BadInput(f"{where}: status {status!r} is not a status name (lowercase letters, digits, - or _)")
    priority = record.get("priority", 2)
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not (PRIORITY_MIN <= priority <= PRIORITY_MAX)
    ):
        raise BadInput(f"{where}: priority {priority!r} is out of range 0-4")
    for key in ("labels", "dependencies", "comments"):
        value = record.get(key)
        if value is not None and not isinstance(value, list):
            raise BadInput(f'{where}: "{key}" must be a list')
    for label in record.get("labels") or []:
        if not isinstance(label, str):
            raise BadInput(f"{where}: labels must be strings, got {label!r}")
    for dep in record.get("dependencies") or []:
        _validate_dependency(dep, issue_id, where)
    for comment in record.get("comments") or []:
        if not isinstance(comment, dict):
            raise BadInput(f"{where}: each comment must be an object")
    _validate_metadata(record.get("metadata"), where)


def _validate_dependency(dep: object, issue_id: str, where: str) -> None:
    if (
        not isinstance(dep, dict)
        or not isinstance(dep.get("depends_on_id"), str)
        or not dep["depends_on_id"].strip()
    ):
        raise BadInput(f'{where}: each dependency needs a "depends_on_id" string')
    if not isinstance(dep.get("type", "blocks"), str):
        raise BadInput(f'{where}: dependency on {dep["depends_on_id"]}: "type" must be a string')
    owner = dep.get("issue_id", issue_id)
    if owner != issue_id:
        raise BadInput(f"{where}: dependency names issue_id {owner!r}, not the record's own id")


def _validate_metadata(metadata: object, where: str) -> None:
    if metadata is None:
        return
    if isinstance(metadata, str):
        raise BadInput(
            f'{where}: "metadata" is a JSON-encoded string; write the object itself (metadata: {{...}})'
        )
    if not isinstance(metadata, dict):
        raise BadInput(f'{where}: "metadata" must be an object, got {_json_type(metadata)}')
    herd = metadata.get("herd")
    if herd is None:
        return
    if not isinstance(herd, dict):
        raise BadInput(f'{where}: "metadata.herd" must be an object, got {_json_type(herd)}')
    for key in ("scope", "out_of_scope"):
        globs = herd.get(key)
        if globs is None:
            continue
        if not isinstance(globs, list):
            raise BadInput(
                f'{where}: "metadata.herd.{key}" must be a list of globs '
                f'(e.g. ["docs/**"]), got {_json_type(globs)}'
            )
        for glob in globs:
            if not isinstance(glob, str) or not glob.strip():
                raise BadInput(
                    f'{where}: "metadata.herd.{key}" must hold non-empty glob strings, got {glob!r}'
                )


def _json_type(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)
