"""Columns an issue row is written with (no I/O)."""

from __future__ import annotations

import time

import pytest

from herd.queue.model import parse_time
from herd.store.issues import _time


@pytest.mark.parametrize(
    "value",
    [
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:00:00.5Z",
        "2025-01-01T00:00:00.123456789Z",
        "2025-01-01T00:00:00.1234567+02:00",
        "2025-01-01T00:00:00+05:30",
        " 2025-01-01T00:00:00Z",
        "2025-01-01",
        "2025-01-01T00:00:00",
        "2025-01-01T24:00:00Z",
        "2025-02-30T00:00:00Z",
        "not a time",
        "",
        None,
        3,
    ],
)
def test_row_times_read_as_parse_time_reads_them(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick reading of `created_at`/`defer_until` gives `parse_time`'s answer, naive
    times (read as UTC, here where local time is not UTC) and unparsable ones included."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert _time(value) == parse_time(value)
    finally:
        monkeypatch.undo()
        time.tzset()
