"""The states a run, a task and an attempt can end in. StrEnums: the journal stores, and
`--json` shows, their values, so a value is the same string it always was."""

from __future__ import annotations

import enum


class RunState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"  # everything succeeded (and landed, when integrating)
    PARTIAL = "partial"  # some tasks failed, the rest succeeded
    FAILED = "failed"  # nothing could land
    INTERRUPTED = "interrupted"


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # committed on its branch (or item done)
    FAILED = "failed"
    LANDED = "landed"
    EJECTED = "ejected"  # broke the combined tests
    DEFERRED = "deferred"  # not attempted: budget reached, interrupted, upstream failed


class Outcome(enum.StrEnum):
    """How one attempt ended (the `outcome` of an attempt row and an `attempt_end` event)."""

    OK = "ok"
    FAILED = "failed"  # exited non-zero or killed by a signal
    TIMEOUT = "timeout"  # killed at --timeout
    MEMORY = "memory"  # killed at --max-memory
    CRASH = "crash"  # could not run (or prepare) at all
    PUSH = "push"  # the worker tried to push
    SCOPE = "scope"  # changed paths outside its scope
    HISTORY = "history"  # HEAD no longer descends from the base
    EMPTY = "empty"  # exited 0 and changed nothing
    GIT = "git"  # git failed while judging the attempt
    WORKTREE = "worktree"  # the worktree no longer resolves to itself
    CONFIG = "config"  # changed the repository's git config
    INTERRUPTED = "interrupted"  # Ctrl-C: not the task's fault, not counted
    CANCELLED = "cancelled"  # an item job stopped by an interrupt
    LOST = "lost"  # herd died while it ran (closed by a resume)
    CONFLICT = "conflict"  # its commit conflicted with the stack at landing

    @property
    def not_the_task(self) -> bool:
        """Ended by herd or the machine (a limit, a signal, a crash of herd), not by what
        the task's command did: the report groups these by outcome, not by exit code."""
        return self in (Outcome.TIMEOUT, Outcome.MEMORY, Outcome.INTERRUPTED, Outcome.LOST, Outcome.CANCELLED)
