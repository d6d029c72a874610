"""The git side of one attempt, run in the hypervisor's small thread pool: before it, a
fresh worktree, the context file and the job; after it, the verdict (squashed to one
commit, still a descendant of its base, inside its scope) and the clean-up. It touches
no shared state but the attempt's own fields; the hypervisor's loop journals."""

from __future__ import annotations

import threading
from collections.abc import Callable

from herd.engine.executor import JobResult, JobSpec
from herd.engine.executor.local import kill_by_env
from herd.engine.journal import Journal
from herd.engine.policies import Policies, judge
from herd.engine.states import Outcome
from herd.git.repo import Git, GitError, NotDescendant, NothingToCommit, WorktreeNotItself
from herd.git.worktree import WorktreeManager
from herd.run import agents, context, push_guard
from herd.run.attempts import RunOptions, TaskRun, Verdict, worker_log_limit
from herd.run.config_guard import ConfigGuard
from herd.run.scope import path_outside
from herd.units import plural


class Workbench:
    def __init__(
        self,
        git: Git,
        journal: Journal,
        worktrees: WorktreeManager,
        options: RunOptions,
        policies: Policies,
        retry: Callable[[TaskRun, Outcome], bool],
    ) -> None:
        self.git = git
        self.journal = journal
        self.run_id = journal.run_id
        self.worktrees = worktrees
        self.options = options
        self.policies = policies
        self.retry = retry
        self.hooks_dir = journal.run_dir / "hooks"
        self.config: ConfigGuard | None = None  # set when work starts
        # `git worktree add` and `remove` read every worktree's admin files; run side by
        # side, one can read another's half-written entry and fail ("failed to read
        # .git/worktrees/X/commondir"). Squashing and diffing need no lock.
        self.worktree_lock = threading.Lock()

    def install(self) -> None:
        """Before the first worker: the push guard and the watch on the repository's config."""
        push_guard.install(self.hooks_dir, self.git.hooks_dir())
        self.config = ConfigGuard(self.git.common_dir() / "config")

    def prepare(self, run: TaskRun) -> JobSpec:
        """In the git pool: a fresh worktree and context file; the job that runs the worker.
        Touches no shared state but the run's own fields."""
        task_dir = self.journal.run_dir / run.id
        context_path = context.write(task_dir / f"context-{run.attempt}.md", run.task, run.evidence)
        log_path = task_dir / f"attempt-{run.attempt}.log"
        with self.worktree_lock:
            run.worktree = self.worktrees.create(self.run_id, run.id, run.attempt, run.base)
        push_marker = task_dir / f"push-attempted-{run.attempt}"
        push_marker.unlink(missing_ok=True)
        values = {"id": run.id, "context": str(context_path), "worktree": str(run.worktree.path)}
        argv = agents.build_argv(self.options.agent.argv, values)
        env = {
            "HERD_TASK_ID": run.id,
            "HERD_CONTEXT_FILE": str(context_path),
            "HERD_RUN_ID": self.run_id,
            "HERD_WORKER": f"w{run.slot}",
            "HERD_ATTEMPT": str(run.attempt),
            **push_guard.worker_env(self.hooks_dir, push_marker),
            # A worker's git never looks above its worktree for a repository: after an
            # accidental `rm .git` it fails instead of committing into the user's checkout.
            "GIT_CEILING_DIRECTORIES": str(run.worktree.path.parent.resolve()),
        }
        return self.policies.prepare(
            JobSpec(
                key=run.key,
                argv=tuple(argv),
                cwd=run.worktree.path,
                env=env,
                log_path=log_path,
                log_limit=worker_log_limit(),
                inputs=(context_path,),
            )
        )

    def examine(self, run: TaskRun, job: JobResult) -> Verdict:
        """In the git pool: squash and check the attempt; remove its worktree unless it is
        the task's last failure (kept for inspection)."""
        assert run.worktree is not None
        # A daemon the worker started in a session of its own escaped the kill of the
        # worker's process group; it must not go on writing while herd judges and cleans up.
        kill_by_env("HERD_RUN_ID", self.run_id, HERD_TASK_ID=run.id, HERD_ATTEMPT=str(run.attempt))
        try:
            changed = self.config.restore_if_changed() if self.config else ""
            verdict = Verdict(Outcome.CONFIG, changed, None) if changed else Verdict(*self._verdict(run, job))
        except WorktreeNotItself as exc:
            verdict = Verdict(Outcome.WORKTREE, str(exc), None)
        except GitError as exc:
            verdict = Verdict(Outcome.GIT, f"git failed while judging the attempt: {exc}", None)
        if verdict.sha is not None or self.retry(run, verdict.outcome):
            with self.worktree_lock:
                self.worktrees.remove(run.worktree)
        return verdict

    def _verdict(self, run: TaskRun, job: JobResult) -> tuple[Outcome, str, str | None]:
        """(outcome, reason, commit sha when it succeeded)."""
        assert run.worktree is not None
        if (self.journal.run_dir / run.id / f"push-attempted-{run.attempt}").exists():
            return Outcome.PUSH, "the worker tried to push (workers commit locally; herd pushes)", None
        outcome, reason = judge(job, timeout=self.options.timeout, max_memory=self.options.max_memory)
        if outcome != Outcome.OK:
            return outcome, reason, None
        title = " ".join(str(run.task.get("title", "")).split())  # a subject is one line
        try:
            # The task branch is set explicitly: a worker that switched to another branch
            # (or detached HEAD) would leave it at the base.
            sha = self.git.squash(
                run.worktree.path,
                run.base,
                f"{title} ({run.id})",
                {"Herd-Task": run.id, "Herd-Run": self.run_id},
                branch=run.worktree.branch,
            )
        except NothingToCommit:
            return Outcome.EMPTY, "the worker exited 0 but changed nothing", None
        except NotDescendant:
            return (
                Outcome.HISTORY,
                (
                    "the worker's HEAD is not a descendant of the base commit "
                    f"{run.base[:12]} (history was rewritten)"
                ),
                None,
            )
        changed = self.git.changed_paths(run.base, sha)
        outside = path_outside(run.scope, changed)
        if outside:
            shown = ", ".join(outside[:10]) + (" …" if len(outside) > 10 else "")
            return Outcome.SCOPE, f"changed paths outside its scope: {shown}", None
        return Outcome.OK, f"committed {sha[:12]} ({plural(len(changed), 'path')})", sha

    def cost(self, job: JobResult) -> float | None:
        """What the attempt's agent reported it cost (USD), read from its log."""
        if not self.options.agent.cost_field:
            return None
        log = self.journal.run_dir / job.key.split("#")[0] / f"attempt-{job.key.split('#')[1]}.log"
        try:
            text = log.read_text(errors="replace")[-1_000_000:]
        except OSError:
            text = job.tail
        cost = agents.read_cost(self.options.agent, text)
        return cost
