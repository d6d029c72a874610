"""Per-task worktrees: `<root>/<run>/<task>-a<attempt>` on branch `herd/<run>/<task>`."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from herd.errors import BadInput, Refused
from herd.git.repo import Git

INTEGRATION_DIR = "_integration"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA = re.compile(r"[0-9a-f]{40}")
_ATTEMPT_DIR = re.compile(r"(?P<task>.+)-a(?P<attempt>\d+)")


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str | None  # None for the detached integration worktree
    base: str  # full sha the worktree started from


def branch_name(run_id: str, task_id: str) -> str:
    return f"herd/{run_id}/{task_id}"


def _safe(value: str, what: str) -> str:
    """Ids become path components and ref names; refuse anything that is not plain."""
    if not _SAFE_ID.fullmatch(value) or ".." in value or value.endswith((".", ".lock")):
        raise BadInput(f"{what} {value!r} cannot name a worktree; use letters, digits, '.-_'")
    return value


class WorktreeManager:
    def __init__(self, git: Git, root: Path) -> None:
        self.git = git
        self.root = Path(root)

    def _run_dir(self, run_id: str) -> Path:
        return self.root / _safe(run_id, "run id")

    def _prepare_root(self) -> None:
        # The root sits inside the repository's own working tree: ignore it
        # there, or `git status` in the main checkout would list every worktree.
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")

    def _resolve(self, base: str) -> str:
        return base if _SHA.fullmatch(base) else self.git.rev_parse(f"{base}^{{commit}}")

    def create(self, run_id: str, task_id: str, attempt: int, base: str) -> Worktree:
        """A fresh worktree for one attempt; earlier attempts of the task are removed
        and the task branch is reset to `base`."""
        run_dir = self._run_dir(run_id)
        _safe(task_id, "task id")
        if attempt < 1:
            raise BadInput(f"attempt {attempt} for task {task_id} must be 1 or more")
        self._prepare_root()
        run_dir.mkdir(exist_ok=True)
        for old in self._attempt_dirs(run_dir, task_id):
            self.git.worktree_remove(old, force=True)
        branch = branch_name(run_id, task_id)
        path = run_dir / f"{task_id}-a{attempt}"
        base_sha = self._resolve(base)
        self.git.worktree_add(path, branch, base_sha)
        return Worktree(path, branch, base_sha)

    def integration(self, run_id: str, base: str) -> Worktree:
        """A detached worktree at `root/<run>/_integration`, replaced if it exists."""
        run_dir = self._run_dir(run_id)
        self._prepare_root()
        run_dir.mkdir(exist_ok=True)
        base_sha = self._resolve(base)
        path = run_dir / INTEGRATION_DIR
        self.git.worktree_add(path, None, base_sha)
        return Worktree(path, None, base_sha)

    def stack_commits(self, run_id: str, name: str, base: str, commits: list[str]) -> str:
        """Cherry-pick `commits` onto `base` in a scratch worktree; the resulting tip.
        Later waves start from it so they see the work they depend on."""
        run_dir = self._run_dir(run_id)
        self._prepare_root()
        run_dir.mkdir(exist_ok=True)
        path = run_dir / _safe(name, "worktree name")
        self.git.worktree_add(path, None, self._resolve(base))
        try:
            tip = self._resolve(base)
            for sha in commits:
                picked = self.git.cherry_pick(path, sha)
                if not picked.ok or picked.sha is None:
                    raise Refused(
                        f"commits of earlier waves conflict with each other in "
                        f"{', '.join(picked.conflicts)}; cannot start the next wave"
                    )
                tip = picked.sha
            # A ref keeps the stacked commits reachable after the scratch worktree goes.
            self.git.update_ref(f"refs/herd/{run_id}/{name}", tip)
            return tip
        finally:
            self.git.worktree_remove(path, force=True)

    def remove(self, wt: Worktree, delete_branch: bool = False) -> None:
        """Remove the checkout; the branch stays (it holds the task's commit) unless asked."""
        self.git.worktree_remove(wt.path, force=True)
        if delete_branch and wt.branch is not None:
            self.git.branch_delete(wt.branch, force=True)

    def remove_run(self, run_id: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Remove a run's worktrees and task branches, except those of tasks in `keep`."""
        run_dir = self._run_dir(run_id)
        if run_dir.is_dir():
            for child in sorted(run_dir.iterdir()):
                if not child.is_dir():
                    continue
                match = _ATTEMPT_DIR.fullmatch(child.name)
                if match and match["task"] in keep:
                    continue
                self.git.worktree_remove(child, force=True)
                if child.exists():  # a directory git no longer knew about
                    shutil.rmtree(child)
        prefix = branch_name(run_id, "")
        self.git.branches_delete(
            [branch for branch in self.git.branches(prefix.rstrip("/")) if branch[len(prefix) :] not in keep]
        )
        self.git.worktree_prune()
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()

    @staticmethod
    def _attempt_dirs(run_dir: Path, task_id: str) -> list[Path]:
        return [
            child
            for child in run_dir.iterdir()
            if (m := _ATTEMPT_DIR.fullmatch(child.name)) and m["task"] == task_id
        ]
