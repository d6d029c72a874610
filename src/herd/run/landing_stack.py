"""Landing's stacking step: every succeeded task's commit picked onto the target, in one
git call when none conflicts; a conflicting one goes back to its worker."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from herd.engine.events import Message
from herd.engine.journal import failpoint
from herd.run.landing_types import Stack, large_file_limit
from herd.units import plural

if TYPE_CHECKING:
    from herd.engine.journal import Journal
    from herd.git.repo import Git
    from herd.git.worktree import WorktreeManager
    from herd.run.batch import LandingOptions
    from herd.run.landing_types import WorkerPhase
    from herd.store.journal import StepDetail


class Stacking:
    """A part of `Integrator` (run/landing.py), which provides what is declared here."""

    if TYPE_CHECKING:
        git: Git
        journal: Journal
        workers: WorkerPhase
        worktrees: WorktreeManager
        landing: LandingOptions
        run_id: str
        failed: dict[str, str]

        def _phase(self, phase: str, detail: str = "") -> None: ...
        def _say(self, line: str) -> None: ...
        def _format(self, stack: Stack) -> None: ...

    def _stack(self, order: list[str], commits: dict[str, str], onto: str) -> Stack:
        self._phase("stacking", f"{plural(len(order), 'commit')} onto {onto[:12]}")
        worktree = self.worktrees.integration(self.run_id, onto)
        stack = Stack(worktree, onto)
        blobs = self.git.added_blobs_many([commits[t] for t in order])
        for task_id in order:
            self._warn_about(task_id, blobs[commits[task_id]])
        if len(order) > 1 and self._stack_at_once(stack, order, commits):
            order = []
        for n, task_id in enumerate(order):
            with self.journal.step("pick", task=task_id, commit=commits[task_id]) as step:
                picked = self.git.cherry_pick(worktree.path, commits[task_id])
                step["ok"] = picked.ok
            if n == 0:
                failpoint("mid-stack")
            if picked.ok:
                assert picked.sha is not None
                stack.picks.append((task_id, picked.sha))
                continue
            self._conflict(stack, task_id, picked)
        if self.landing.format_cmd and stack.picks:
            self._format(stack)
        return stack

    def _stack_at_once(self, stack: Stack, order: list[str], commits: dict[str, str]) -> bool:
        """Pick every commit in one git call, each pick journaled as a step (in one
        transaction before, one after). False, with nothing picked, when a pick conflicts:
        then they are picked one by one, which finds the conflict and handles it."""
        details: list[StepDetail] = [{"task": t, "commit": commits[t], "at_once": True} for t in order]
        with self.journal.step_batch("pick", details) as steps:
            picked = self.git.cherry_pick_many(stack.worktree.path, [commits[t] for t in order])
            for step in steps:
                step["ok"] = picked is not None
        if picked is None:
            return False
        failpoint("mid-stack")
        stack.picks.extend(zip(order, picked, strict=True))
        return True

    def _warn_about(self, task_id: str, added: list[tuple[str, str, str, int]]) -> None:
        """Say when a task's commit adds a symlink that leads out of the repository or a
        file over the size limit: legal, but rarely what a task meant to land."""
        for path, mode, blob, size in added:
            if mode == "120000":
                target = self.git.read_blob(blob).decode(errors="replace")
                inside = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
                if target.startswith("/") or inside == ".." or inside.startswith("../"):
                    self._say(
                        f"warning: {task_id} adds a symlink {path} -> {target}, which "
                        "points outside the repository"
                    )
            elif size > large_file_limit():
                self._say(
                    f"warning: {task_id} adds {path}, {size / 2**20:.1f} MiB (over "
                    f"{large_file_limit() / 2**20:g} MiB; HERD_LARGE_FILE sets the limit)"
                )

    def _conflict(self, stack: Stack, task_id: str, picked: Any) -> None:
        """A pick that conflicts goes back to its worker for its retry, on top of the
        current tip, with the conflict in its context."""
        paths = ", ".join(picked.conflicts) or "(unknown paths)"
        evidence = (
            f"Your commit conflicted with the work already stacked (on top of "
            f"{stack.tip[:12]}) in: {paths}\n\n```\n{picked.excerpt}\n```\n"
            "Redo the task on top of the current code."
        )
        self.journal.emit(Message(text=f"{task_id} conflicts with the stack in {paths}"))
        sha = self.workers.rerun(task_id, stack.tip, evidence)
        if sha is None:
            self.failed[task_id] = f"conflicted with the stack in {paths}"
            return
        picked = self.git.cherry_pick(stack.worktree.path, sha)
        if picked.ok and picked.sha is not None:
            stack.picks.append((task_id, picked.sha))
        else:
            reason = f"conflicted with the stack again in {', '.join(picked.conflicts)}"
            self.failed[task_id] = reason
            self.workers.give_back(task_id, reason, picked.excerpt)
