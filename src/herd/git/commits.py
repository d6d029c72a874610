"""Making commits: a worker's work squashed to one commit, commits picked onto a stack.

Part of `Git` (repo.py), which callers use; split out to keep each module readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from herd.git.messages import _with_newline, format_message
from herd.git.reading import ReadOps
from herd.git.results import PickResult
from herd.git.runner import (
    _EXCERPT_LINES,
    FULL_SHA,
    GitError,
    NotDescendant,
    NothingToCommit,
    _checked,
    _split_z,
)

# A pick keeps a commit whose change is already there, as an empty commit (its trailers
# still record that the task landed).
_PICK = ("cherry-pick", "--no-edit", "--allow-empty", "--keep-redundant-commits")


class CommitOps(ReadOps):
    """The part of `Git` that makes commits in a worktree: commit, squash, cherry-pick."""

    def head(self, cwd: Path | None = None) -> str:
        return self._out("rev-parse", "--verify", "HEAD", cwd=cwd)

    def is_ancestor(self, a: str, b: str) -> bool:
        proc = self._run(
            "merge-base", "--is-ancestor", _checked(a, "revision"), _checked(b, "revision"), ok_codes=(0, 1)
        )
        return proc.returncode == 0

    def commit_all(self, cwd: Path, message: str) -> str | None:
        """Commit every change in `cwd` (honouring .gitignore); None when nothing changed."""
        self._run("add", "--all", cwd=cwd)
        staged = self._run("diff", "--cached", "--quiet", cwd=cwd, ok_codes=(0, 1))
        if staged.returncode == 0:
            return None
        # --cleanup=whitespace keeps lines such as "#12 fixed" that the default would strip;
        # hooks are skipped because herd runs the project's format and test commands itself.
        self._run(
            "commit",
            "--quiet",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            "-",
            cwd=cwd,
            stdin=_with_newline(message),
        )
        return self.head(cwd)

    def squash(
        self,
        cwd: Path,
        base: str,
        message: str,
        trailers: Mapping[str, str],
        *,
        branch: str | None = None,
    ) -> str:
        """Make everything on top of `base` in `cwd` one commit whose parent is `base`.

        Commits the worker made and uncommitted changes are both included. `branch`
        (the worktree's own) is set to the new commit and HEAD attached to it; without
        it HEAD is detached there. Whatever branch a worker pointed HEAD at never moves:
        it may be the user's.
        """
        head, base_sha, base_tree = self._squash_start(cwd, _checked(base, "revision"))
        # A worker that only edited files leaves HEAD at the base: no ancestry to ask git.
        if head != base_sha and not self.is_ancestor(base_sha, head):
            raise NotDescendant(
                f"HEAD {head[:12]} in {cwd} does not descend from base {base_sha[:12]}; "
                "the worker rewrote history, retry the task"
            )
        self._run("add", "--all", cwd=cwd)
        tree = self._out("write-tree", cwd=cwd)
        if tree == base_tree:
            raise NothingToCommit(f"no changes on top of {base_sha[:12]} in {cwd}; nothing to land")
        sha = self._out(
            "commit-tree", tree, "-p", base_sha, "-F", "-", cwd=cwd, stdin=format_message(message, trailers)
        )
        if branch is None:
            self._run("update-ref", "--no-deref", "-m", "herd: squash", "HEAD", sha, head, cwd=cwd)
            return sha
        ref = f"refs/heads/{_checked(branch, 'branch')}"
        self._run("update-ref", "-m", "herd: squash", ref, sha, cwd=cwd)
        if not self._head_is(cwd, ref):
            self._run("symbolic-ref", "HEAD", ref, cwd=cwd)
        return sha

    def _squash_start(self, cwd: Path, base: str) -> tuple[str, str, str]:
        """(HEAD, base commit, base tree) for `squash`. The common case asks git nothing: HEAD
        read from the worktree's registered git directory and its branch's loose ref, the
        base already a full commit sha whose tree was read before (a wave shares one base);
        anything else (a packed ref, an abbreviated base) is one `git rev-parse`."""
        self._pin(Path(cwd))  # the worktree still resolves to itself, its admin dir known
        head = self._head_sha(cwd)
        tree = self._trees.get(base) if FULL_SHA.fullmatch(base) else None
        if head is not None and tree is not None:
            return head, base, tree
        head, base_sha, tree = self._out(
            "rev-parse", "HEAD", f"{base}^{{commit}}", f"{base}^{{tree}}", cwd=cwd
        ).split()
        self._trees[base_sha] = tree
        return head, base_sha, tree

    def _head_sha(self, cwd: Path) -> str | None:
        """The commit HEAD of the linked worktree `cwd` names, from files: its HEAD (detached,
        or `ref: refs/heads/...`) and that branch's loose ref in the common directory. None
        when either is not plainly there (packed, a symbolic ref, another ref store)."""
        text = (self._head_file(cwd) or "").strip()
        if FULL_SHA.fullmatch(text):
            return text
        ref = text.removeprefix("ref: ")
        if ref == text or not ref.startswith("refs/heads/") or ".." in ref:
            return None
        try:
            sha = (self.common_dir() / ref).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return sha if FULL_SHA.fullmatch(sha) else None

    def _head_is(self, cwd: Path, ref: str) -> bool:
        """Whether HEAD in the linked worktree `cwd` is already the symbolic ref `ref`."""
        return self._head_file(cwd) == f"ref: {ref}\n"

    def _detached_head(self, cwd: Path) -> str | None:
        """The sha a detached HEAD in the linked worktree `cwd` holds (the integration
        worktree's, after each pick), or None when HEAD is not plainly a sha."""
        text = (self._head_file(cwd) or "").strip()
        return text if FULL_SHA.fullmatch(text) else None

    def _head_file(self, cwd: Path) -> str | None:
        """HEAD of the linked worktree `cwd`, read from its git directory as the repository
        registered it (never through the worktree's `.git` file), sparing a git process;
        None when there is no such plain file: then git is asked."""
        admin = self._admin_dirs.get(self._resolved(Path(cwd)))
        if admin is None:
            return None
        try:
            return (admin / "HEAD").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def cherry_pick(self, cwd: Path, sha: str) -> PickResult:
        """Apply one commit on `cwd`'s HEAD; on conflict abort, leaving the old tip clean.

        A commit whose change is already present is kept as an empty commit so its
        trailers still record that the task landed.
        """
        proc = self._run(*_PICK, _checked(sha, "commit"), cwd=cwd, check=False)
        if proc.returncode == 0:
            return PickResult(ok=True, sha=self._detached_head(cwd) or self.head(cwd))
        in_progress = (
            self._run("rev-parse", "--quiet", "--verify", "CHERRY_PICK_HEAD", cwd=cwd, check=False).returncode
            == 0
        )
        if not in_progress:
            raise GitError(["git", "cherry-pick", sha], proc.returncode, proc.stderr, Path(cwd))
        conflicts = _split_z(self._run("diff", "--name-only", "-z", "--diff-filter=U", cwd=cwd).stdout)
        diff = self._run("diff", "--no-color", "--no-ext-diff", cwd=cwd).stdout
        excerpt = "\n".join(diff.splitlines()[:_EXCERPT_LINES])
        self._run("cherry-pick", "--abort", cwd=cwd)
        return PickResult(ok=False, conflicts=conflicts, excerpt=excerpt)

    def cherry_pick_many(self, cwd: Path, shas: Sequence[str]) -> list[str] | None:
        """`cherry_pick` of each of `shas` in order, in one git process (landing stacks a
        run's commits): the new commits' shas, one per pick, in order. None when a pick
        stops (a conflict) or a commit is named twice: the whole sequence is aborted, `cwd`
        is back at its old tip and clean, and the caller picks one by one."""
        if not shas:
            return []
        if len(set(shas)) != len(shas):
            return None  # git would pick a commit named twice once
        start = self._detached_head(cwd) or self.head(cwd)
        proc = self._run(*_PICK, *(_checked(sha, "commit") for sha in shas), cwd=cwd, check=False)
        if proc.returncode == 0:
            # Each pick made exactly one commit (empty ones are kept), so the chain from the
            # old tip is the picks in order.
            new = self._out("rev-list", "--reverse", f"{start}..HEAD", cwd=cwd).split()
            if len(new) == len(shas):
                return new
        # A conflict (or anything else): back to the old tip, as if nothing was picked.
        self._run("cherry-pick", "--abort", cwd=cwd, check=False)
        if (self._detached_head(cwd) or self.head(cwd)) != start or self.has_tracked_changes(cwd):
            self._run("reset", "--hard", "--quiet", start, cwd=cwd)
        return None

    def has_tracked_changes(self, cwd: Path | None = None) -> bool:
        """Staged or unstaged changes to tracked files (untracked files do not count)."""
        status = self._out("status", "--porcelain=v1", "-z", "--untracked-files=no", cwd=cwd)
        return status != ""
