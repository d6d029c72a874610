"""Landing's push step: push once; when the remote moved, fetch, replay the stack on it,
test again and push again, a few times before giving up."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from herd.engine.journal import failpoint
from herd.errors import LandingFailed
from herd.git.repo import PushStatus
from herd.units import plural

if TYPE_CHECKING:
    from herd.engine.journal import Journal
    from herd.git.repo import Git
    from herd.run.batch import LandingOptions
    from herd.run.landing_types import Stack, WorkerPhase

PUSH_TRIES = 1 + 3  # the push, then up to 3 fetch-rebase-test rounds after rejections


class Pushing:
    """A part of `Integrator` (run/landing.py), which provides what is declared here."""

    if TYPE_CHECKING:
        git: Git
        journal: Journal
        workers: WorkerPhase
        landing: LandingOptions
        run_id: str
        branch: str
        failed: dict[str, str]

        def _phase(self, phase: str, detail: str = "") -> None: ...
        def _say(self, line: str) -> None: ...
        def _format(self, stack: Stack) -> None: ...
        def _fetch(self) -> str | None: ...
        def _already_landed(self, tip: str | None) -> dict[str, str]: ...
        def _test_and_eject(self, stack: Stack) -> Stack: ...
        def _update_local_branch(self, tip: str, *, pushed: bool = False) -> bool: ...
        def _keep_stack(self, stack: Stack) -> None: ...

    def _push(self, stack: Stack) -> Stack:
        remote, branch = self.landing.remote, self.branch
        for attempt in range(1, PUSH_TRIES + 1):
            remote_tip = self._fetch()
            if remote_tip and remote_tip != stack.onto and not self.git.is_ancestor(remote_tip, stack.onto):
                stack = self._rebase(stack, remote_tip)
            if not stack.picks:
                return stack
            self._phase("pushing", f"{stack.tip[:12]} to {remote}/{branch}")
            with self.journal.step(
                "push", remote=remote, branch=branch, sha=stack.tip, attempt=attempt
            ) as step:
                pushed = self.git.push(stack.worktree.path, remote, stack.tip, branch)
                step["ok"] = pushed.ok
            if pushed.ok:
                failpoint("after-push")
                # What went out: the picks, the format commit, local commits under them.
                sent = (
                    self.git.count_between(remote_tip, stack.tip)
                    if remote_tip
                    else len(stack.picks) + bool(stack.format_sha)
                )
                self._say(f"pushed {plural(sent, 'commit')} to {remote}/{branch} ({stack.tip[:12]})")
                if not self._update_local_branch(stack.tip, pushed=True):
                    self._keep_stack(stack)
                return stack
            if pushed.status is not PushStatus.REJECTED:
                raise LandingFailed(f"push to {remote}/{branch} failed: {pushed.detail}")
            self._say(f"push rejected ({remote}/{branch} moved); fetching and trying again")
        raise LandingFailed(
            f"push to {remote}/{branch} was rejected {PUSH_TRIES} times (the "
            f"remote keeps moving); the stack is kept on herd/{self.run_id}/stack;"
            f" `herd resume {self.run_id}` tries again"
        )

    def _rebase(self, stack: Stack, remote_tip: str) -> Stack:
        """The remote moved: replay the stack on top of it and test again."""
        already = self._already_landed(remote_tip)
        self._phase("rebasing", f"onto {remote_tip[:12]}")
        self.git.reset_hard(stack.worktree.path, remote_tip)
        fresh = dataclasses.replace(stack, onto=remote_tip, picks=[], format_sha=None)
        for task_id, sha in stack.picks:
            if task_id in already:
                continue
            picked = self.git.cherry_pick(stack.worktree.path, sha)
            if picked.ok and picked.sha is not None:
                fresh.picks.append((task_id, picked.sha))
            else:
                reason = "conflicted with new commits on the remote: " + ", ".join(picked.conflicts)
                self.failed[task_id] = reason
                self.workers.give_back(task_id, reason, picked.excerpt)
        if self.landing.format_cmd and fresh.picks:
            self._format(fresh)
        return self._test_and_eject(fresh)
