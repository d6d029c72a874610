"""The issue vocabulary (no I/O): statuses, times, field placement, criteria, scope; and ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from herd.queue import ids
from herd.queue.model import (
    BLOCKING_TYPES,
    FIELD_ORDER,
    RESOLVED_STATUSES,
    Status,
    criteria_of,
    now_iso,
    parse_time,
    scope_of,
    set_field,
)


def test_statuses_and_blocking_types() -> None:
    assert {s.value for s in Status} >= {
        "open",
        "in_progress",
        "blocked",
        "deferred",
        "closed",
        "pinned",
        "hooked",
    }
    assert Status("open") is Status.OPEN and str(Status.OPEN) == "open"
    assert Status.OPEN not in RESOLVED_STATUSES and Status.CLOSED in RESOLVED_STATUSES
    assert {"blocks", "parent-child", "conditional-blocks", "waits-for"} == BLOCKING_TYPES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("2025-01-02T03:04:05+01:00", datetime(2025, 1, 2, 2, 4, 5, tzinfo=UTC).timestamp()),
        ("2025-01-02T03:04:05.123456789Z", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC).timestamp()),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()),
        ("", None),
        ("yesterday", None),
        (None, None),
        (17, None),
    ],
)
def test_parse_time(text: object, expected: float | None) -> None:
    assert parse_time(text) == expected


def test_now_iso_is_bd_format() -> None:
    stamp = now_iso()
    assert len(stamp) == 20 and stamp.endswith("Z")
    assert parse_time(stamp) is not None


def test_set_field_places_new_keys_where_bd_writes_them() -> None:
    record = {"id": "x", "title": "t", "status": "open", "created_at": "c", "custom": 1, "metadata": {}}
    set_field(record, "priority", 1)
    set_field(record, "closed_at", "z")
    set_field(record, "title", "new")  # existing key keeps its place
    set_field(record, "zz_unknown", 2)
    # Unknown keys are skipped over: a new known key lands before the next known key it
    # precedes in bd's order (closed_at before metadata), unknown ones go last.
    assert list(record) == [
        "id",
        "title",
        "status",
        "priority",
        "created_at",
        "custom",
        "closed_at",
        "metadata",
        "zz_unknown",
    ]
    assert record["title"] == "new"
    assert FIELD_ORDER[0] == "id"


def test_criteria_are_lines_without_markers() -> None:
    text = "1. tests pass\n- [ ] docs\n- [x] done\n* bullet\n- dash\n\n2.5 stays\nplain"
    assert criteria_of({"acceptance_criteria": text}) == [
        "tests pass",
        "docs",
        "done",
        "bullet",
        "dash",
        "2.5 stays",
        "plain",
    ]
    assert criteria_of({}) == []


def test_scope_lives_in_metadata_herd() -> None:
    record = {"metadata": {"herd": {"scope": ["src/*"], "out_of_scope": ["docs/*"]}, "bd": 1}}
    assert scope_of(record) == (["src/*"], ["docs/*"])
    assert scope_of({"metadata": "opaque string"}) == ([], [])
    assert scope_of({}) == ([], [])


# -- ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "length"),
    [(0, 3), (100, 3), (117, 4), (4_000, 4), (5_000, 5), (10**6, 6), (10**7, 7), (10**12, 8)],
)
def test_id_length_grows_with_count_from_3_to_8(count: int, length: int) -> None:
    assert ids.id_length(count) == length


def test_new_id_is_prefix_base36_and_avoids_taken() -> None:
    first = ids.new_id("hq", "seed", 0, lambda c: False)
    prefix, _, tail = first.partition("-")
    assert prefix == "hq" and len(tail) == 3
    assert set(tail) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert ids.new_id("hq", "seed", 0, lambda c: False) == first  # deterministic for a seed
    second = ids.new_id("hq", "seed", 0, lambda c: c == first)
    assert second != first and second.startswith("hq-")


def test_new_id_grows_when_the_space_is_crowded() -> None:
    made = ids.new_id("p", "s", 0, lambda c: len(c) < len("p-") + 5)
    assert len(made) == len("p-") + 5


def test_new_id_gives_up_cleanly() -> None:
    with pytest.raises(RuntimeError):
        ids.new_id("p", "s", 0, lambda c: True)


def test_child_ids() -> None:
    assert ids.child_id("hq-abc", 0) == "hq-abc.1"
    assert ids.child_id("hq-abc.2", 4) == "hq-abc.2.5"
