"""Landing's test step: test the stack once (and once more: flaky?), then bisect the
task commits, eject the one that broke the tests and test the rest."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from herd.engine.events import TaskEnd
from herd.engine.executor.output import last_lines
from herd.engine.journal import TaskState
from herd.errors import LandingFailed
from herd.units import plural

if TYPE_CHECKING:
    from pathlib import Path

    from herd.engine.journal import Journal
    from herd.git.repo import Git
    from herd.queue.core import Queue
    from herd.run.batch import LandingOptions
    from herd.run.landing_types import Stack, WorkerPhase

TEST_TAIL = 60


class Bisecting:
    """A part of `Integrator` (run/landing.py), which provides what is declared here."""

    if TYPE_CHECKING:
        git: Git
        journal: Journal
        queue: Queue
        workers: WorkerPhase
        landing: LandingOptions
        run_id: str
        ejected: dict[str, str]
        failed: dict[str, str]
        tests_run: int
        _last_test_tail: str

        def _phase(self, phase: str, detail: str = "") -> None: ...
        def _say(self, line: str) -> None: ...
        def _format(self, stack: Stack) -> None: ...
        def _run_cmd(self, command: str, cwd: Path, kind: str) -> tuple[int, str, Path]: ...

    def _test_and_eject(self, stack: Stack) -> Stack:
        if not self.landing.test_cmd or not stack.picks:
            return stack
        self._phase("testing", plural(len(stack.picks), "commit"))
        if self._test(stack, stack.tip, len(stack.picks), "stack"):
            return stack
        if self._test(stack, stack.tip, len(stack.picks), "rerun"):
            self._say("tests failed once then passed on the same stack (flaky?)")
            return stack
        base_ok: bool | None = None
        while stack.picks:
            self._phase("bisecting", plural(len(stack.picks), "commit"))
            good, bad = 0, len(stack.picks)  # prefix lengths: good passes (or is the base)
            bad_tail = self._last_test_tail
            while bad - good > 1:
                mid = (good + bad) // 2
                if self._test(stack, stack.picks[mid - 1][1], mid, "bisect"):
                    good = mid
                else:
                    bad, bad_tail = mid, self._last_test_tail
            if bad == 1 and base_ok is None:
                base_ok = self._test(stack, stack.onto, 0, "base")
                if not base_ok:
                    raise LandingFailed(
                        f"the tests fail on the base commit {stack.onto[:12]} itself; fix them "
                        f"first (nothing was landed; `herd resume {self.run_id}` retries)"
                    )
            culprit = stack.picks[bad - 1][0]
            self._eject(culprit, bad_tail)
            stack = self._rebuild(stack, culprit)
            if not stack.picks:
                break
            self._phase("testing", f"{plural(len(stack.picks), 'commit')} after ejecting {culprit}")
            if self._test(stack, stack.tip, len(stack.picks), "stack"):
                return stack
        return stack

    def _test(self, stack: Stack, commit: str, prefix: int, purpose: str) -> bool:
        assert self.landing.test_cmd is not None
        self.git.checkout_detached(stack.worktree.path, commit)
        started = time.monotonic()
        code, tail, _ = self._run_cmd(self.landing.test_cmd, stack.worktree.path, "test")
        duration = time.monotonic() - started
        self.tests_run += 1
        picks = [t for t, _ in stack.picks[:prefix]]
        self.journal.record_test(purpose, self.landing.test_cmd, picks, code, duration, tail)
        self._last_test_tail = tail
        self.git.checkout_detached(stack.worktree.path, stack.tip)
        return code == 0

    def _eject(self, task_id: str, tail: str) -> None:
        reason = "broke the combined tests (found by bisection)"
        self.ejected[task_id] = reason
        self.journal.set_task(task_id, state=TaskState.EJECTED.value, reason=reason)
        self.queue.release(
            task_id,
            f"herd run {self.run_id}: ejected: {reason}. Test output tail:\n```\n{tail_of(tail)}\n```",
        )
        self.journal.emit(TaskEnd(task=task_id, state=TaskState.EJECTED, reason=reason))

    def _rebuild(self, stack: Stack, without: str) -> Stack:
        commits = {t: sha for t, sha in stack.picks if t != without}
        self.git.reset_hard(stack.worktree.path, stack.onto)
        fresh = dataclasses.replace(stack, picks=[], format_sha=None)  # no import cycle
        for task_id, sha in commits.items():
            picked = self.git.cherry_pick(stack.worktree.path, sha)
            if picked.ok and picked.sha is not None:
                fresh.picks.append((task_id, picked.sha))
            else:
                self.failed[task_id] = "conflicted after an ejection: " + ", ".join(picked.conflicts)
                self.workers.give_back(task_id, self.failed[task_id], picked.excerpt)
        if self.landing.format_cmd and fresh.picks:
            self._format(fresh)
        return fresh


def tail_of(text: str) -> str:
    return last_lines(text, TEST_TAIL)
