"""Landing: stack every succeeded task's commit, format, test once, bisect and eject
the commit that broke the tests, push once, close the landed issues.

Exactly once: each step is journaled before it runs, and the `Herd-Task`
trailers already on the target branch are the truth about what landed, so
running `land` again after a crash at any point neither lands a task twice
nor leaves a landed task open.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from herd.engine.events import Message, Phase, TaskEnd
from herd.engine.journal import Journal, TaskState, failpoint
from herd.engine.shutdown import Shutdown
from herd.errors import (
    EXIT_LANDING,
    EXIT_OK,
    EXIT_PARTIAL,
    LandingFailed,
)
from herd.git.repo import Git, GitError, NothingToCommit, WorktreeNotItself
from herd.git.worktree import WorktreeManager
from herd.queue.core import Queue
from herd.queue.landed import close_landed
from herd.queue.model import Status
from herd.run.landing_bisect import Bisecting, tail_of
from herd.run.landing_cmd import Stopped, run_landing_command
from herd.run.landing_push import Pushing
from herd.run.landing_stack import Stacking
from herd.run.landing_types import LandingJson as LandingJson
from herd.run.landing_types import LandingResult as LandingResult
from herd.run.landing_types import Stack as Stack
from herd.run.landing_types import WorkerPhase as WorkerPhase
from herd.units import plural

if TYPE_CHECKING:
    from herd.run.attempts import WorkResult
    from herd.run.batch import LandingOptions
    from herd.run.plan import Plan


class Integrator(Stacking, Bisecting, Pushing):
    """Lands a run's succeeded tasks: the stacking step in landing_stack.py, the test step
    in landing_bisect.py, the push step in landing_push.py."""

    def __init__(
        self,
        queue: Queue,
        git: Git,
        journal: Journal,
        workers: WorkerPhase,
        plan: Plan,
        landing: LandingOptions,
        base: str,
        *,
        worktrees: WorktreeManager,
        grace: float,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.queue = queue
        self.git = git
        self.journal = journal
        self.workers = workers
        self.worktrees = worktrees
        self.grace = grace
        self.shutdown = shutdown or Shutdown()
        self.plan = plan
        self.landing = landing
        self.base = base
        self.run_id = journal.run_id
        self.branch = landing.branch or journal.run()["args"].get("branch") or "main"
        self.ejected: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}  # closed by someone during the run
        self._stack_kept = False
        self.lines: list[str] = []
        self.tests_run = 0
        self._last_test_tail = ""

    # -- the whole landing ---------------------------------------------------

    def land(self, work: WorkResult) -> LandingResult:
        """Land the succeeded tasks. A stop request (SIGINT/SIGTERM, see engine/shutdown.py)
        stops landing before its next step, a running test or format command group and
        all: Interrupted, resumable by `herd resume`."""
        return self._land(work)

    def _land(self, work: WorkResult) -> LandingResult:
        order = [t for wave in self.plan.waves for t in wave if t in work.succeeded]
        commits = {t: work.succeeded[t] for t in order}
        try:
            target = self._target_tip()
        except LandingFailed as exc:
            return self._failure(exc)
        already = self._already_landed(target)
        if already:
            self._say(f"already on {self.branch}: {', '.join(sorted(already))} (not landed again)")
        todo = self._still_wanted([t for t in order if t not in already])
        onto = target or self.base
        if target and target != self.base and self.git.is_ancestor(target, self.base):
            # The tasks were built on local commits the target does not have yet: they
            # travel with the stack (landing without them would break the tasks' commits).
            ahead = self.git.count_between(target, self.base)
            self._say(
                f"{self.branch} here is {ahead} commit{'s' if ahead != 1 else ''} ahead of "
                f"{self.landing.remote}/{self.branch}: they land with the stack"
            )
            onto = self.base
        stack = self._stack(todo, commits, onto)
        exit_code = EXIT_OK
        try:
            stack = self._test_and_eject(stack)
            if self.landing.push:
                stack = self._push(stack)
                if not stack.picks and already and target:
                    # A resume after a crash between the push and the local update.
                    self._update_local_branch(target, pushed=True)
            elif stack.picks and not self._update_local_branch(stack.tip):
                raise LandingFailed(
                    f"nothing was landed: {self.lines[-1]}. Once {self.branch} can be "
                    f"fast-forwarded, `herd resume {self.run_id}` lands the run"
                )
        except (LandingFailed, WorktreeNotItself) as exc:  # the latter: a test broke .git
            self._keep_stack(stack)
            return self._failure(exc)
        landed = {t: sha for t, sha in stack.picks}
        for task_id, sha in already.items():
            landed[task_id] = sha
        failpoint("before-close")
        self._close(landed)
        self._cleanup(landed, stack)
        if self.ejected or self.failed or self.skipped or work.failed or work.deferred:
            exit_code = EXIT_PARTIAL
        return LandingResult(
            exit_code, self.lines, landed, self.ejected, self.failed, self.skipped, self.tests_run
        )

    def _failure(self, exc: LandingFailed | WorktreeNotItself) -> LandingResult:
        self.journal.emit(Message(text=f"landing failed: {exc}"))
        return LandingResult(
            EXIT_LANDING,
            [*self.lines, f"landing failed: {exc}"],
            {},
            self.ejected,
            self.failed,
            self.skipped,
            self.tests_run,
        )

    def _still_wanted(self, order: list[str]) -> list[str]:
        """Drop tasks someone closed while the run was working on them: landing them
        anyway would undo the user's decision behind their back."""
        wanted = []
        for task_id in order:
            if self.queue.get(task_id).get("status") != Status.CLOSED:
                wanted.append(task_id)
                continue
            why = "closed while the run was in progress: not landed"
            self.skipped[task_id] = why
            self.journal.set_task(task_id, state=TaskState.DEFERRED.value, reason=why)
            self.journal.emit(TaskEnd(task=task_id, state=TaskState.DEFERRED, reason=why))
            self._say(f"skipped {task_id}: {why} (its commit stays on herd/{self.run_id}/{task_id})")
        return wanted

    # -- stacking (landing_stack.py) and formatting ---------------------------------

    def _format(self, stack: Stack) -> None:
        assert self.landing.format_cmd is not None
        self._phase("formatting", self.landing.format_cmd)
        with self.journal.step("format", command=self.landing.format_cmd) as step:
            code, tail, _ = self._run_cmd(self.landing.format_cmd, stack.worktree.path, "format")
            step["exit_code"] = code
            if code != 0:
                raise LandingFailed(f"format command exited {code}: {tail.splitlines()[-1:]}")
            try:
                # A commit on the detached tip, whatever the command did to HEAD.
                stack.format_sha = self.git.squash(
                    stack.worktree.path, stack.tip, "herd: format", {"Herd-Run": self.run_id}
                )
            except NothingToCommit:
                stack.format_sha = None

    # -- after landing -------------------------------------------------------------

    def _update_local_branch(self, tip: str, *, pushed: bool = False) -> bool:
        """Move the user's branch to `tip` when that is safe; True when it holds `tip` now.

        A branch checked out in any worktree (this one or another) only moves the way
        `git merge --ff-only` moves it there: a fast-forward of a checkout without
        tracked changes (untracked files are fine unless the fast-forward would
        overwrite one; git refuses then). Otherwise nothing is touched and the caller
        keeps the stack on herd/<run>/stack."""
        branch, stack_ref = self.branch, f"herd/{self.run_id}/stack"
        local = self.git.rev_parse_or_none(f"refs/heads/{branch}")
        if local == tip:
            return True
        if local is not None and not self.git.is_ancestor(local, tip):
            self._say(
                f"{branch} has moved on since the run started: not touched; the stack is on {stack_ref}"
            )
            return False
        checkout = next((wt for wt in self.git.worktrees() if wt.branch == branch), None)
        if checkout is None:
            if local is None and pushed:
                return True  # no local branch of that name: nothing to keep in step
            self.git.update_ref(f"refs/heads/{branch}", tip, local)
            self._say(f"{branch} updated to {tip[:12]} (not checked out)")
            return True
        here = checkout.path.resolve() == self.git.repo.resolve()
        where = "here" if here else f"in {checkout.path}"
        if self.git.has_tracked_changes(checkout.path):
            self._say(
                f"{branch} is checked out {where} with uncommitted changes: not touched; "
                f"the stack is on {stack_ref}"
            )
            return False
        try:
            moved = self.git.merge_ff_only(checkout.path, tip)
        except GitError as exc:
            why = exc.stderr.splitlines()[0] if exc.stderr else str(exc)
            self._say(
                f"{branch} is checked out {where} and cannot be fast-forwarded ({why}): "
                f"not touched; the stack is on {stack_ref}"
            )
            return False
        if not moved:
            self._say(f"{branch} has moved on: not fast-forwarded; the stack is on {stack_ref}")
            return False
        self._say(f"{branch} fast-forwarded to {tip[:12]}" + ("" if here else f" {where}"))
        return True

    def _keep_stack(self, stack: Stack) -> None:
        self._stack_kept = True
        self.git.update_ref(f"refs/heads/herd/{self.run_id}/stack", stack.tip)

    def _close(self, landed: dict[str, str]) -> None:
        self._phase("closing", plural(len(landed), "issue"))
        shorts = self.git.shorts(list(landed.values()))
        close_landed(
            self.queue,
            [
                (
                    task_id,
                    f"landed in {shorts[sha]}",
                    f"herd run {self.run_id}: landed in {shorts[sha]} on {self.branch}",
                )
                for task_id, sha in landed.items()
            ],
        )
        self.journal.set_tasks(
            {task_id: {"state": TaskState.LANDED.value, "landed_sha": sha} for task_id, sha in landed.items()}
        )
        for task_id, sha in landed.items():
            self.journal.emit(TaskEnd(task=task_id, state=TaskState.LANDED, commit=sha))
        parent = self.landing.parent
        if parent:
            record = self.queue.get(parent)
            children = self.queue.children(parent)
            if (
                children
                and all(c.get("status") == Status.CLOSED for c in children)
                and record.get("status") != Status.CLOSED
            ):
                self.queue.close([parent], reason=f"all children landed (herd run {self.run_id})", force=True)
                self._say(f"closed epic {parent}: every child is closed")

    def _cleanup(self, landed: dict[str, str], stack: Stack) -> None:
        # A stack kept by an earlier landing of this run (resumed since) goes now.
        kept_stack = {"stack"} if self._stack_kept else set()
        kept = sorted(set(self.failed) | set(self.ejected) | set(self.skipped) | set(self.workers.failed))
        self.worktrees.remove_run(self.run_id, keep=set(kept) | kept_stack)
        if kept:
            self._say("kept for inspection: " + ", ".join(f"herd/{self.run_id}/{t}" for t in kept))

    # -- helpers -------------------------------------------------------------------

    def _target_tip(self) -> str | None:
        if self.landing.push:
            return self._fetch()
        return self.git.rev_parse_or_none(f"refs/heads/{self.branch}")

    def _fetch(self) -> str | None:
        try:
            return self.git.fetch(self.landing.remote, self.branch)
        except GitError as exc:  # unreachable, refused, or no answer in time
            raise LandingFailed(
                f"fetching {self.landing.remote}/{self.branch} failed: "
                f"{exc.stderr.splitlines()[-1] if exc.stderr else exc}; "
                f"nothing was pushed; `herd resume {self.run_id}` tries "
                "again"
            ) from None

    def _already_landed(self, tip: str | None) -> dict[str, str]:
        """Tasks of this run whose commits are already on the target (trailers are the truth)."""
        if tip is None or tip == self.base:
            return {}
        mine = {t for wave in self.plan.waves for t in wave}
        found = self.git.trailers(f"{self.base}..{tip}", "Herd-Task")
        return {t: sha for t, sha in found.items() if t in mine}

    def _run_cmd(self, command: str, cwd: Path, kind: str) -> tuple[int, str, Path]:
        self._check_signals()
        log = self.journal.run_dir / "tests" / f"{kind}-{self.tests_run + 1}-{time.time_ns()}.log"
        try:
            ran = run_landing_command(
                command,
                kind,
                cwd,
                log,
                timeout=self.landing.test_timeout,
                grace=self.grace,
                shutdown=self.shutdown,
                env={"HERD_RUN_ID": self.run_id},
            )
        except Stopped:
            self._check_signals()
            raise
        return ran.exit_code, tail_of(ran.output), ran.log

    def _check_signals(self) -> None:
        """After SIGINT or SIGTERM: stop before the next step (state is in the journal)."""
        self.shutdown.check("while landing", f"`herd resume {self.run_id}` continues")

    def _phase(self, phase: str, detail: str = "") -> None:
        if phase != "closing":  # once pushed, closing the issues finishes the landing
            self._check_signals()
        self.journal.emit(Phase(phase=phase, detail=detail))

    def _say(self, line: str) -> None:
        self.lines.append(line)
        self.journal.emit(Message(text=line))
