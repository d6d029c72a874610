"""GNU parallel's forms for `herd map`, read into herd's terms: `-j` (N, N%, +N, -N, 0),
`--timeout N%`, `--load N%`, where the items come from, and the `--eta` lines."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from herd.errors import BadInput

if TYPE_CHECKING:
    from herd.engine.events import Event


def workers_for(text: str | None, cores: int) -> int | None:
    """`-j`: N, GNU parallel's N% (of the cores), +N / -N (cores plus / minus N, at least
    1), 0 (as many as there are jobs: -1 here, resolved once the items are known), or
    auto (None). Default: min(8, cores)."""
    if text is None:
        return min(8, cores)
    if text == "auto":
        return None
    value = text.strip()
    try:
        if value.endswith("%"):
            return max(1, int(float(value[:-1]) * cores / 100))
        if value[:1] in "+-":
            return max(1, cores + int(value))
        number = int(value)
    except ValueError:
        raise BadInput(f"-j {text!r}: use N, N%, +N, -N, 0 or auto") from None
    if number < 0:
        raise BadInput(f"-j must be 0 or more, got {number}")
    return -1 if number == 0 else number


MAX_UNBOUNDED_WORKERS = 256
"""`-j 0` (GNU parallel: as many as possible): one worker per job, up to this many."""


def items_from(
    items: tuple[str, ...],
    from_file: str | None,
    pattern: str | None,
    found_sources: list[Any],
    null: bool,
    link: bool,
) -> list[str]:
    """herd's forms, or GNU parallel's sources, or (neither given) standard input."""
    from herd.items import sources

    if found_sources:
        if items or from_file or pattern:
            raise BadInput(
                "give items one way: ::: / :::: after the command, or herd's "
                "ITEM... / --from / --glob, not both"
            )
        return sources.from_sources(found_sources, null, link=link)
    if items or from_file or pattern:
        if null and from_file:
            return sources.from_sources([sources.Source("file", (from_file,))], null)
        return sources.herd_items(items, from_file, pattern)
    if sys.stdin is None or sys.stdin.isatty():
        raise BadInput(
            "no items: give them after the command (herd map -- CMD ::: a b, "
            ":::: FILE), pipe them in (seq 10 | herd map -- CMD), or use "
            "--from FILE / --glob PATTERN"
        )
    return sources.from_sources([sources.Source("file", ("-",))], null)


def percent(text: str) -> float:
    try:
        value = float(text.strip()[:-1])
    except ValueError:
        raise BadInput(f"--timeout {text!r}: use a duration (30s, 5m) or N%") from None
    if value <= 0:
        raise BadInput(f"--timeout {text!r} must be above 0%")
    return value


def load(text: str | None) -> float | None:
    if text is None:
        return None
    from herd.items.admission import load_limit

    try:
        return load_limit(text.strip())
    except ValueError:
        raise BadInput(f"--load {text!r}: use a number or N% of the cores") from None


class ProgressLines:
    """`--eta` without a terminal: `herd: 40/100 done, 0 failed, 4 running, ETA 12s`."""

    EVERY = 2.0

    def __init__(self) -> None:
        self.clock = time.monotonic
        self.began = self.clock()
        self.next_line = self.began + self.EVERY

    def __call__(self, event: Event) -> None:
        from herd.engine.events import Progress

        if not isinstance(event, Progress) or self.clock() < self.next_line:
            return
        now = self.clock()
        self.next_line = now + self.EVERY
        total, done, failed = event.total, event.done, event.failed
        finished = done + failed
        eta = ((now - self.began) / finished * (total - finished)) if finished else None
        print(
            f"herd: {finished}/{total} done, {failed} failed, "
            f"{event.running} running" + (f", ETA {eta:.0f}s" if eta is not None else ""),
            file=sys.stderr,
            flush=True,
        )
