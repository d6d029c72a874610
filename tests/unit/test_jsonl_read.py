"""Reading beads JSONL: the quick check on each line agrees with `validate` (no I/O but
temporary files)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from herd.errors import BadInput
from herd.store import jsonl

GOOD: dict[str, Any] = {
    "id": "bd-1",
    "title": "A title <&>",
    "description": "text",
    "status": "open",
    "priority": 2,
    "issue_type": "task",
    "created_at": "2025-01-01T00:00:00Z",
    "labels": ["a", "b"],
    "dependencies": [
        {"issue_id": "bd-1", "depends_on_id": "bd-2", "type": "blocks"},
        {"depends_on_id": "bd-3"},
    ],
    "comments": [{"id": 1, "text": "hi"}],
    "metadata": {"other": 1},
    "ephemeral": False,
}

# Values a field may be given: every JSON type, and the near misses the checks look for.
VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    "bd-1",
    "bd 1",
    "bd\t1",
    "bd\u20281",
    "bd\u00a01",
    "bd\u200b1",
    "a\0b",
    "Open",
    "in_progress",
    0,
    4,
    5,
    -1,
    2.0,
    True,
    False,
    [],
    ["a"],
    [1],
    [None],
    [{}],
    [{"depends_on_id": "bd-2"}],
    [{"depends_on_id": " "}],
    [{"depends_on_id": "bd-2", "type": 3}],
    [{"depends_on_id": "bd-2", "issue_id": "bd-9"}],
    [{"depends_on_id": "bd-2", "type": None}],
    ["x\0"],
    {},
    {"herd": {"scope": ["docs/**"]}},
    {"herd": {"scope": "docs"}},
    {"herd": None},
    '{"a": 1}',
]
FIELDS = [*GOOD, "notes", "assignee", "pinned", "wisp", "closed_at", "content_hash", "custom"]


def _outcome(record: dict[str, Any]) -> str | None:
    try:
        jsonl.validate(json.loads(json.dumps(record)), "f:1")
    except BadInput as exc:
        return str(exc)
    return None


def test_the_quick_check_never_passes_what_validate_refuses() -> None:
    rng = random.Random(16)
    passed = refused = 0
    for _ in range(20_000):
        record = json.loads(json.dumps(GOOD))
        for _ in range(rng.randint(0, 3)):
            key = rng.choice(FIELDS)
            if rng.random() < 0.15:
                record.pop(key, None)
            else:
                record[key] = rng.choice(VALUES)
        line = json.dumps(record, ensure_ascii=rng.random() < 0.5)
        # `read` asks only about lines that have an id.
        quick = "id" in record and jsonl._plainly_valid(json.loads(line), "\\u0000" not in line)
        error = _outcome(record)
        if quick:
            assert error is None, (record, error)
            passed += 1
        elif error is not None:
            refused += 1
    # Both sides were exercised: plenty of records pass quickly, plenty are refused.
    assert passed > 2000 and refused > 2000


@pytest.mark.parametrize(
    "line",
    [
        json.dumps(GOOD),
        json.dumps({**GOOD, "title": 3}),
        json.dumps({**GOOD, "description": "a\0b"}),
        json.dumps({**GOOD, "id": "bd 1"}),
        json.dumps({**GOOD, "priority": True}),
        json.dumps({**GOOD, "metadata": {"herd": {"scope": "docs"}}}),
        json.dumps({**GOOD, "_type": "issue"}),
        json.dumps({**GOOD, "_type": "memory"}),
        json.dumps({"_schema": 1}),
        json.dumps({"title": "no id"}),
        json.dumps([1, 2]),
        '{"id": "bd-1",',
        "   ",
        json.dumps(GOOD) + " x",
        json.dumps(GOOD) + "\x0c",
        json.dumps(GOOD) + "  ",
        "  " + json.dumps(GOOD),
        "\ufeff" + json.dumps(GOOD),
        json.dumps({**GOOD, "id": "bd\u00a01"}, ensure_ascii=False),
        json.dumps({**GOOD, "id": "bd\u200b1"}, ensure_ascii=False),
    ],
)
def test_reading_a_line_quickly_gives_what_parse_line_gives(tmp_path: Path, line: str) -> None:
    """Each line read by `read` (quick path or not) is what `parse_line` makes of it: the
    same record, the same skip, the same error naming file:line."""
    path = tmp_path / "one.jsonl"
    path.write_text("\n" + line + "\n", encoding="utf-8")
    skipped: list[int] = []
    try:
        got: object = list(jsonl.read(path, skipped))
    except BadInput as exc:
        got = str(exc)
    try:
        expected: object = (
            [] if not line.strip() else [(2, r)] if (r := jsonl.parse_line(line + "\n", f"{path}:2")) else []
        )
    except BadInput as exc:
        expected = str(exc)
    assert got == expected
    if expected == [] and line.strip():
        assert skipped == [2]
