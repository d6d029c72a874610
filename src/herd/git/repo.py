"""The one place in herd that runs git: `Git`, one repository and its worktrees.

Every call is an argv list (never a shell), so task titles and ids reach git
as data. Results that callers branch on (a cherry-pick conflict, a rejected
push) come back as values; anything else unexpected raises `GitError`.
Running git lives in runner.py, remotes in remote.py, messages in messages.py;
the names callers use are all importable from here.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from herd.errors import BadInput, NotFound, Refused
from herd.git import gitdir
from herd.git.gitdir import WorktreeNotItself
from herd.git.messages import (
    _TRAILER_KEY,
    _with_newline,
    enclosing_repository,
    format_message,
    no_identity_message,
    user_identity,
)
from herd.git.remote import RemoteOps
from herd.git.results import (
    PickResult,
    PushResult,
    PushStatus,
    WorktreeInfo,
)
from herd.git.runner import (
    _EXCERPT_LINES,
    GitError,
    NotDescendant,
    NothingToCommit,
    RefMoved,
    _checked,
    _split_z,
    network_timeout,
)

__all__ = ["Git", "GitError", "NotDescendant", "NothingToCommit", "PickResult", "PushResult",
           "PushStatus", "RefMoved", "WorktreeInfo", "WorktreeNotItself",
           "enclosing_repository", "format_message", "network_timeout", "no_identity_message",
           "user_identity"]


class Git(RemoteOps):
    """Runs git for one repository; `cwd` arguments select one of its worktrees.

    A command for a worktree other than the repository's own checkout is pinned to
    that worktree's git directory (`--git-dir`/`--work-tree`, found from the
    repository's side, never from the worktree's `.git` file, which a worker can
    change), after checking that the worktree still resolves to itself.
    """

    @classmethod
    def init(cls, path: Path, *, bare: bool = False, branch: str = "main") -> Git:
        path.mkdir(parents=True, exist_ok=True)
        argv = ["git", "init", "--quiet", f"--initial-branch={_checked(branch, 'branch')}"]
        if bare:
            argv.append("--bare")
        subprocess.run([*argv, str(path)], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        return cls(path)

    # -- inspection ----------------------------------------------------------

    def toplevel(self) -> Path:
        return Path(self._out("rev-parse", "--show-toplevel"))

    def head(self, cwd: Path | None = None) -> str:
        return self._out("rev-parse", "--verify", "HEAD", cwd=cwd)

    def rev_parse(self, rev: str, cwd: Path | None = None) -> str:
        proc = self._run("rev-parse", "--verify", "--quiet", _checked(rev, "revision"),
                         cwd=cwd, check=False)
        if proc.returncode != 0:
            raise NotFound(f"no git revision {rev!r} in {cwd or self.repo}; check the name")
        return proc.stdout.strip()

    def rev_parse_or_none(self, rev: str) -> str | None:
        """The sha `rev` names, or None when it names nothing (an absent branch)."""
        proc = self._run("rev-parse", "--verify", "--quiet", _checked(rev, "revision"),
                         check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def hooks_dir(self) -> Path | None:
        """Where this repository's hooks live (core.hooksPath or .git/hooks)."""
        path = self._out("rev-parse", "--git-path", "hooks")
        return (self.repo / path).resolve() if path else None

    def short(self, sha: str) -> str:
        return self._out("rev-parse", "--short", _checked(sha, "revision"))

    def current_branch(self, cwd: Path | None = None) -> str | None:
        proc = self._run("symbolic-ref", "--quiet", "--short", "HEAD", cwd=cwd, ok_codes=(0, 1))
        return proc.stdout.strip() or None

    def is_clean(self, cwd: Path | None = None) -> bool:
        status = self._out("status", "--porcelain=v1", "-z", "--untracked-files=normal", cwd=cwd)
        return status == ""

    def has_tracked_changes(self, cwd: Path | None = None) -> bool:
        """Staged or unstaged changes to tracked files (untracked files do not count)."""
        status = self._out("status", "--porcelain=v1", "-z", "--untracked-files=no", cwd=cwd)
        return status != ""

    def ls_files(self, cwd: Path | None = None) -> list[str]:
        return _split_z(self._run("ls-files", "-z", cwd=cwd).stdout)

    def is_ancestor(self, a: str, b: str) -> bool:
        proc = self._run("merge-base", "--is-ancestor", _checked(a, "revision"),
                         _checked(b, "revision"), ok_codes=(0, 1))
        return proc.returncode == 0

    def count_between(self, base: str, rev: str) -> int:
        """How many commits `rev` has that `base` does not."""
        return int(self._out("rev-list", "--count",
                             f"{_checked(base, 'revision')}..{_checked(rev, 'revision')}"))

    def changed_paths(self, base: str, rev: str) -> list[str]:
        """Paths that differ between two commits; a rename counts as both its names."""
        out = self._run("diff-tree", "-r", "-z", "--name-only", "--no-renames",
                        _checked(base, "revision"), _checked(rev, "revision")).stdout
        return _split_z(out)

    def added_blobs(self, rev: str) -> list[tuple[str, str, str, int]]:
        """(path, mode, blob sha, size) of every file `rev` adds or changes relative to its
        first parent; deletions and submodules are left out."""
        out = self._run("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id",
                        f"{_checked(rev, 'revision')}^", rev).stdout
        fields = out.split("\0")
        entries: list[tuple[str, str, str]] = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.lstrip(":").split()
            if len(parts) >= 5 and parts[4] != "D" and parts[1] != "160000":
                entries.append((path, parts[1], parts[3]))
        if not entries:
            return []
        sizes = self._out("cat-file", "--batch-check=%(objectsize)",
                          stdin="".join(f"{sha}\n" for _, _, sha in entries)).split()
        return [(path, mode, sha, int(size))
                for (path, mode, sha), size in zip(entries, sizes, strict=True)]

    def read_blob(self, sha: str) -> bytes:
        proc = subprocess.run(["git", "cat-file", "blob", _checked(sha, "blob")], cwd=self.repo,
                              env=self._env, capture_output=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise GitError(["git", "cat-file", "blob", sha], proc.returncode,
                           proc.stderr.decode(errors="replace"), self.repo)
        return proc.stdout

    def trailers(self, rev_range: str, key: str) -> dict[str, str]:
        """Trailer value -> sha of the newest commit in `rev_range` carrying `key`."""
        if not _TRAILER_KEY.fullmatch(key):
            raise BadInput(f"invalid trailer key {key!r}; use letters, digits and '-'")
        fmt = f"%H%x1f%(trailers:key={key},valueonly,separator=%x1f)%x1e"
        out = self._run("log", f"--format={fmt}", _checked(rev_range, "revision range")).stdout
        found: dict[str, str] = {}
        for record in out.split("\x1e"):
            sha, *values = record.strip("\n").split("\x1f")
            for value in values:
                if sha and value.strip():
                    found.setdefault(value.strip(), sha)
        return found

    # -- worktrees and branches ----------------------------------------------

    def worktrees(self) -> list[WorktreeInfo]:
        out = self._run("worktree", "list", "--porcelain", "-z").stdout
        result: list[WorktreeInfo] = []
        for block in out.split("\0\0"):
            fields: dict[str, str] = {}
            for line in block.split("\0"):
                key, _, value = line.partition(" ")
                if key:
                    fields[key] = value
            if "worktree" not in fields:
                continue
            branch = fields.get("branch") or None
            if branch and branch.startswith("refs/heads/"):
                branch = branch[len("refs/heads/"):]
            result.append(WorktreeInfo(Path(fields["worktree"]), fields.get("HEAD"), branch))
        return result

    def worktree_add(self, path: Path, branch: str | None, base: str) -> None:
        """Check out `base` at `path`, on `branch` reset to `base` (or detached when None).

        Leftovers of a crashed attempt (the directory, a stale registration, the
        branch checked out in another worktree) are removed first.
        """
        path = Path(path)
        if path.exists():
            self._discard_worktree_dir(path)
        self._admin_dirs.pop(path.resolve(), None)
        args = ["worktree", "add", "--quiet"]
        args += ["--detach"] if branch is None else ["--no-track", "-B", _checked(branch, "branch")]
        args += [str(path), _checked(base, "revision")]
        try:
            self._run(*args)
        except GitError:
            # Slow path only on failure: a stale registration or the branch held
            # by another worktree. Clean up and try once more.
            self.worktree_prune()
            for wt in self.worktrees():
                if wt.path == path.resolve() or (branch is not None and wt.branch == branch):
                    self._discard_worktree_dir(wt.path)
            self.worktree_prune()
            self._run(*args)

    def _discard_worktree_dir(self, path: Path) -> None:
        if path.resolve() == self.toplevel().resolve():
            raise Refused(f"refusing to remove the main worktree {path}; pick another path")
        self.worktree_remove(path, force=True)
        if path.exists():
            if not (path / ".git").is_file() and any(path.iterdir()):
                raise Refused(
                    f"{path} exists and is not a git worktree; move it away and retry"
                )
            shutil.rmtree(path)

    def worktree_remove(self, path: Path, force: bool = True) -> None:
        path = Path(path)
        admin = self._admin_dirs.pop(path.resolve(), None)
        args = ["worktree", "remove"] + (["--force", "--force"] if force else []) + [str(path)]
        proc = self._run(*args, check=False)
        if proc.returncode != 0:
            registered = any(wt.path == path.resolve() for wt in self.worktrees())
            if registered and path.exists():
                if not force or not self._tampered(path, admin):
                    raise GitError(["git", *args], proc.returncode, proc.stderr, self.repo)
                # git refuses to remove a worktree whose .git a worker broke; it is herd's
                # own directory (rmtree never follows a symlink out of it).
                shutil.rmtree(path)
            self.worktree_prune()

    def _tampered(self, path: Path, admin: Path | None) -> bool:
        try:
            gitdir.check_worktree(path.resolve(), admin or self._find_admin_dir(path.resolve()))
        except WorktreeNotItself:
            return True
        return False

    def worktree_prune(self) -> None:
        self._run("worktree", "prune")

    def branch_delete(self, name: str, force: bool = True) -> None:
        proc = self._run("branch", "-D" if force else "-d", _checked(name, "branch"), check=False)
        if proc.returncode != 0 and self.branches(name):
            raise GitError(["git", "branch", "-D", name], proc.returncode, proc.stderr, self.repo)

    def branches(self, pattern: str) -> list[str]:
        """Local branch names matching `pattern` (fnmatch, or a prefix ending at '/')."""
        out = self._run("for-each-ref", "--format=%(refname:short)",
                        f"refs/heads/{_checked(pattern, 'branch pattern')}").stdout
        return out.split()

    # -- commits -------------------------------------------------------------

    def commit_all(self, cwd: Path, message: str) -> str | None:
        """Commit every change in `cwd` (honouring .gitignore); None when nothing changed."""
        self._run("add", "--all", cwd=cwd)
        staged = self._run("diff", "--cached", "--quiet", cwd=cwd, ok_codes=(0, 1))
        if staged.returncode == 0:
            return None
        # --cleanup=whitespace keeps lines such as "#12 fixed" that the default would strip;
        # hooks are skipped because herd runs the project's format and test commands itself.
        self._run("commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-F", "-",
                  cwd=cwd, stdin=_with_newline(message))
        return self.head(cwd)

    def squash(
        self, cwd: Path, base: str, message: str, trailers: Mapping[str, str],
        *, branch: str | None = None,
    ) -> str:
        """Make everything on top of `base` in `cwd` one commit whose parent is `base`.

        Commits the worker made and uncommitted changes are both included. `branch`
        (the worktree's own) is set to the new commit and HEAD attached to it; without
        it HEAD is detached there. Whatever branch a worker pointed HEAD at never moves:
        it may be the user's.
        """
        head, base_sha, base_tree = self._out(
            "rev-parse", "HEAD", f"{_checked(base, 'revision')}^{{commit}}",
            f"{base}^{{tree}}", cwd=cwd,
        ).split()
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
        sha = self._out("commit-tree", tree, "-p", base_sha, "-F", "-", cwd=cwd,
                        stdin=format_message(message, trailers))
        if branch is None:
            self._run("update-ref", "--no-deref", "-m", "herd: squash", "HEAD", sha, head,
                      cwd=cwd)
            return sha
        ref = f"refs/heads/{_checked(branch, 'branch')}"
        self._run("update-ref", "-m", "herd: squash", ref, sha, cwd=cwd)
        if not self._head_is(cwd, ref):
            self._run("symbolic-ref", "HEAD", ref, cwd=cwd)
        return sha

    def _head_is(self, cwd: Path, ref: str) -> bool:
        """Whether HEAD in the linked worktree `cwd` is already the symbolic ref `ref`, read
        from the worktree's git directory as the repository registered it (never through
        the worktree's `.git` file). False whenever that is not plain to see: git decides."""
        admin = self._admin_dirs.get(Path(cwd).resolve())
        if admin is None:
            return False
        try:
            return (admin / "HEAD").read_text(encoding="utf-8") == f"ref: {ref}\n"
        except (OSError, UnicodeDecodeError):
            return False

    def cherry_pick(self, cwd: Path, sha: str) -> PickResult:
        """Apply one commit on `cwd`'s HEAD; on conflict abort, leaving the old tip clean.

        A commit whose change is already present is kept as an empty commit so its
        trailers still record that the task landed.
        """
        proc = self._run("cherry-pick", "--no-edit", "--allow-empty", "--keep-redundant-commits",
                         _checked(sha, "commit"), cwd=cwd, check=False)
        if proc.returncode == 0:
            return PickResult(ok=True, sha=self.head(cwd))
        in_progress = self._run("rev-parse", "--quiet", "--verify", "CHERRY_PICK_HEAD",
                                cwd=cwd, check=False).returncode == 0
        if not in_progress:
            raise GitError(["git", "cherry-pick", sha], proc.returncode, proc.stderr, Path(cwd))
        conflicts = _split_z(
            self._run("diff", "--name-only", "-z", "--diff-filter=U", cwd=cwd).stdout
        )
        diff = self._run("diff", "--no-color", "--no-ext-diff", cwd=cwd).stdout
        excerpt = "\n".join(diff.splitlines()[:_EXCERPT_LINES])
        self._run("cherry-pick", "--abort", cwd=cwd)
        return PickResult(ok=False, conflicts=conflicts, excerpt=excerpt)

    def reset_hard(self, cwd: Path, rev: str, clean: bool = False) -> None:
        self._run("reset", "--hard", "--quiet", _checked(rev, "revision"), cwd=cwd)
        if clean:
            self._run("clean", "-d", "--force", "--quiet", cwd=cwd)

    def checkout_detached(self, cwd: Path, rev: str) -> None:
        self._run("checkout", "--quiet", "--detach", _checked(rev, "revision"), cwd=cwd)

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        """Set `ref` to `new`; with `old`, only if it still points there (RefMoved if not)."""
        args = ["update-ref", "-m", "herd", _checked(ref, "ref"), _checked(new, "revision")]
        if old is not None:
            args.append(_checked(old, "revision"))
        proc = self._run(*args, check=False)
        if proc.returncode == 0:
            return
        current = self._run("rev-parse", "--verify", "--quiet", ref, check=False).stdout.strip()
        if old is not None and current != old:
            raise RefMoved(
                f"{ref} is at {current[:12] or 'nothing'}, expected {old[:12]}; re-read and retry"
            )
        raise GitError(["git", *args], proc.returncode, proc.stderr, self.repo)

    def delete_ref(self, ref: str) -> None:
        """Remove `ref` (a herd-owned scratch ref); nothing happens when it does not exist."""
        self._run("update-ref", "-d", _checked(ref, "ref"), check=False)

    def merge_ff_only(self, cwd: Path, rev: str) -> bool:
        """Fast-forward `cwd` to `rev`; False (and nothing changed) when that is not possible."""
        if not self.is_ancestor(self.head(cwd), rev):
            return False
        self._run("merge", "--ff-only", "--quiet", _checked(rev, "revision"), cwd=cwd)
        return True
