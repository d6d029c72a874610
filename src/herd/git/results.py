"""What git operations return: values callers branch on (a conflict, a rejected push)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


@dataclass(frozen=True)
class PickResult:
    """Outcome of applying one commit: `ok` with the new `sha`, or a conflict."""

    ok: bool
    sha: str | None = None
    conflicts: list[str] = field(default_factory=list)
    excerpt: str = ""


class PushStatus(Enum):
    OK = "ok"
    REJECTED = "rejected"  # the remote branch moved: fetch, rebase, retry
    ERROR = "error"  # anything else: network, hook, permissions


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is PushStatus.OK


@dataclass(frozen=True)
class WorktreeInfo:
    path: Path
    head: str | None
    branch: str | None  # short name; None when detached


def moved_under_us(summary: str) -> bool:
    """A push refused because the branch moved: not a fast-forward, or another push won
    the race for the ref lock on the remote side (`[remote rejected] (failed to update
    ref)`, `cannot lock ref`). Fetching, rebasing and pushing again can succeed."""
    if summary.startswith("[rejected]"):
        return True
    return summary.startswith("[remote rejected]") and (
        "failed to update ref" in summary or "cannot lock ref" in summary
    )
