"""Durations and sizes as people type them: `30m`, `1h30m`, `3s`, `512M`, `2G`."""

from __future__ import annotations

import re
import time

from herd.errors import BadInput

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def duration(text: str) -> float:
    """Seconds in `text`: a number (seconds) or parts like `1h30m`, `3s`, `250ms`."""
    value = text.strip().lower()
    total, position = 0.0, 0
    for match in _DURATION.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if not value or position != len(value) or total <= 0:
        raise BadInput(f"duration {text!r}: use a number of seconds or e.g. 30m, 1h30m, 3s")
    return total


def size(text: str) -> int:
    """Bytes in `text`: `512M`, `2G`, `100MB`, `1.5GiB`, or a plain number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise BadInput(f"size {text!r}: use e.g. 512M, 2G or a number of bytes")
    return int(float(match.group(1)) * _BYTES[match.group(2).lower()])


def rate(text: str) -> float:
    """Starts per minute from `N/min`, `N/s`, `N/h` or a plain number (per minute)."""
    value = text.strip().lower()
    number, _, unit = value.partition("/")
    per = {"": 1.0, "min": 1.0, "m": 1.0, "s": 1 / 60, "sec": 1 / 60, "h": 60.0, "hour": 60.0}
    try:
        count = float(number)
    except ValueError:
        count = -1
    if count <= 0 or unit not in per:
        raise BadInput(f"rate {text!r}: use e.g. 30/min or 1/s")
    return count / per[unit]


def format_duration(value: float | None) -> str:
    """`4.2s`, `3m07s`, `2h05m`; `-` when unknown (reports and the live display)."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_time(ts: float | None) -> str:
    """A local wall-clock time for people; `-` when unknown."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def format_size(value: int | float) -> str:
    """`100 MiB`, `1.5 GiB`, `512 B`: sizes for people (messages used to say 104857600 bytes)."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(amount) < 1024:
            return f"{amount:g} {unit}" if unit == "B" else f"{amount:.3g} {unit}"
        amount /= 1024
    return f"{amount:.3g} TiB"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 task`, `3 tasks`: `many` when the plural is not word + s."""
    return f"{count} {word if count == 1 else many or word + 's'}"
