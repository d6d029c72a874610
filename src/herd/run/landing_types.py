"""What landing works with and gives back: the stack it builds, the result of a landing,
and the one view it has of the worker phase (`WorkerPhase`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from herd.git.worktree import Worktree

# Landing warns about a task's file above this size (HERD_LARGE_FILE overrides, e.g. 50M).
LARGE_FILE = 10 * 2**20


def large_file_limit() -> int:
    from herd.units import size

    value = os.environ.get("HERD_LARGE_FILE", "")
    return size(value) if value else LARGE_FILE


class LandingJson(TypedDict):
    exit_code: int
    lines: list[str]
    landed: dict[str, str]
    ejected: dict[str, str]
    failed: dict[str, str]
    skipped: dict[str, str]
    tests: int


@dataclass
class LandingResult:
    """What landing did: task id -> commit landed, or -> why ejected, failed or skipped."""

    exit_code: int
    lines: list[str] = field(default_factory=list)
    """What a person should read: landed already, skipped, why landing failed."""
    landed: dict[str, str] = field(default_factory=dict)
    ejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    tests: int = 0
    """How many times the test command ran."""

    def to_json(self) -> LandingJson:
        return {
            "exit_code": self.exit_code,
            "lines": self.lines,
            "landed": self.landed,
            "ejected": self.ejected,
            "failed": self.failed,
            "skipped": self.skipped,
            "tests": self.tests,
        }


@dataclass
class Stack:
    """The integration worktree and the task commits on it, in order."""

    worktree: Worktree
    onto: str  # the commit the stack starts from
    picks: list[tuple[str, str]] = field(default_factory=list)  # (task id, sha in the stack)
    format_sha: str | None = None

    @property
    def tip(self) -> str:
        if self.format_sha:
            return self.format_sha
        return self.picks[-1][1] if self.picks else self.onto


class WorkerPhase(Protocol):
    """What landing needs from the worker phase (the hypervisor), and nothing more."""

    @property
    def failed(self) -> Mapping[str, str]:
        """Tasks that failed for good: task id -> reason."""
        ...

    def rerun(self, task_id: str, base: str, evidence: str) -> str | None:
        """Run a task again on top of `base` when it has an attempt left; its new commit,
        or None when it failed for good (it is then given back)."""
        ...

    def give_back(self, task_id: str, reason: str, detail: str = "") -> None:
        """The task could not land: failed, back to open in the queue, with the evidence."""
        ...
