"""Failures grouped by cause for the report: "12 failures, 2 causes". What varies between
two occurrences of one error (ids, paths, shas, numbers, the item's own name) is taken
out before comparing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

from herd.engine.states import TaskState

if TYPE_CHECKING:
    from herd.views.report import ReportTask


class FailureGroup(TypedDict):
    key: str
    signature: str
    reason: str
    line: str
    count: int
    tasks: list[str]
    states: list[str]


_BOILERPLATE = re.compile(
    r"^(Traceback \(most recent call last\):|File \".*\", line \d+.*"
    r"|[-=_*#~.\s]*|\^+|exit(ed)? (status|code).*|\[?\d+/\d+\]?)$",
    re.I,
)


def last_meaningful_line(tail: str) -> str:
    """The last output line that says something (not a frame, a rule or a bare counter)."""
    for line in reversed(tail.strip().splitlines()):
        line = line.strip()
        if line and re.search(r"[A-Za-z]{2}", line) and not _BOILERPLATE.match(line):
            return line[:300]
    return ""


def normalize(text: str, ids: Sequence[str] = ()) -> str:
    """The error with what varies between occurrences taken out: ids, paths, shas, numbers."""
    text = re.sub(r"(?:[A-Za-z]:)?(?:[\w.~-]*[/\\])+[\w.-]*", "<path>", text)
    for known in sorted({i for i in ids if i}, key=len, reverse=True):
        text = text.replace(known, "<id>").replace(known.replace("-", "_"), "<id>")
    text = re.sub(r"\b[0-9a-f]{7,64}\b", "<sha>", text)
    text = re.sub(r"\b0x[0-9a-fA-F]+\b", "<hex>", text)
    text = re.sub(r"\b[a-z][a-z0-9]*-[a-z0-9]*\d[a-z0-9]*(?:\.\d+)*\b", "<id>", text)
    text = re.sub(r"\d+(?:\.\d+)?", "<n>", text)
    return re.sub(r"\s+", " ", text).strip()


def _without(text: str, values: Sequence[str]) -> str:
    for value in values:
        text = text.replace(value, "<item>")
    return text


def failure_groups(tasks: Sequence[ReportTask], extra_ids: Sequence[str] = ()) -> list[FailureGroup]:
    """Failed and ejected tasks grouped by signature: "12 failures, 2 causes"."""
    ids = [t["id"] for t in tasks] + list(extra_ids)
    groups: dict[str, FailureGroup] = {}
    for task in tasks:
        if task["state"] not in (TaskState.FAILED.value, TaskState.EJECTED.value):
            continue
        # A map item's own name varies like an id does: "wc: a.txt: …" and "wc: b.txt: …"
        # are one cause.
        own = [task["item"]] if task["item"] != task["id"] and len(task["item"]) > 2 else []
        reason = normalize(_without(task["reason"], own), ids)
        line = normalize(_without(task["last_line"], own), ids)
        signature = f"{reason} | {line}" if line else reason
        key = hashlib.sha256(signature.encode()).hexdigest()[:10]
        group = groups.setdefault(
            key,
            {
                "key": key,
                "signature": signature,
                "reason": task["reason"],
                "line": task["last_line"],
                "count": 0,
                "tasks": [],
                "states": [],
            },
        )
        group["count"] += 1
        group["tasks"].append(task["id"])
        if task["state"] not in group["states"]:
            group["states"].append(task["state"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g["signature"]))
