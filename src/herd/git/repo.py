"""The one place in herd that runs git: `Git`, one repository and its worktrees.

Every call is an argv list (never a shell), so task titles and ids reach git
as data. Results that callers branch on (a cherry-pick conflict, a rejected
push) come back as values; anything else unexpected raises `GitError`.
Running git lives in runner.py, remotes in remote.py, messages in messages.py,
commits (squash, cherry-pick) in commits.py;
the names callers use are all importable from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from herd.errors import HerdError, NotFound, Refused
from herd.git import gitdir
from herd.git.commits import CommitOps
from herd.git.gitdir import WorktreeNotItself
from herd.git.messages import (
    enclosing_repository,
    format_message,
    no_identity_message,
    user_identity,
)
from herd.git.results import (
    PickResult,
    PushResult,
    PushStatus,
    WorktreeInfo,
)
from herd.git.runner import (
    FULL_SHA,
    GitError,
    NotDescendant,
    NothingToCommit,
    RefMoved,
    _checked,
    network_timeout,
)

__all__ = [
    "Git",
    "GitError",
    "NotDescendant",
    "NothingToCommit",
    "PickResult",
    "PushResult",
    "PushStatus",
    "RefMoved",
    "WorktreeInfo",
    "WorktreeNotItself",
    "enclosing_repository",
    "format_message",
    "network_timeout",
    "no_identity_message",
    "user_identity",
]


class Git(CommitOps):
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
        subprocess.run([*argv, str(path)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
        return cls(path)

    # -- inspection ----------------------------------------------------------

    def toplevel(self) -> Path:
        return Path(self._out("rev-parse", "--show-toplevel"))

    def rev_parse(self, rev: str, cwd: Path | None = None) -> str:
        proc = self._run("rev-parse", "--verify", "--quiet", _checked(rev, "revision"), cwd=cwd, check=False)
        if proc.returncode != 0:
            raise NotFound(f"no git revision {rev!r} in {cwd or self.repo}; check the name")
        return proc.stdout.strip()

    def rev_parse_or_none(self, rev: str) -> str | None:
        """The sha `rev` names, or None when it names nothing (an absent branch)."""
        proc = self._run("rev-parse", "--verify", "--quiet", _checked(rev, "revision"), check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def hooks_dir(self) -> Path | None:
        """Where this repository's hooks live (core.hooksPath or .git/hooks)."""
        path = self._out("rev-parse", "--git-path", "hooks")
        return (self.repo / path).resolve() if path else None

    def short(self, sha: str) -> str:
        return self._out("rev-parse", "--short", _checked(sha, "revision"))

    def shorts(self, shas: Sequence[str]) -> dict[str, str]:
        """`short` of each full sha, in one git call (landing names every landed commit)."""
        unique = list(dict.fromkeys(shas))
        if not unique:
            return {}
        out = self._out(
            "log", "--no-walk=unsorted", "--format=%H %h", *(_checked(sha, "revision") for sha in unique)
        )
        found = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        return {sha: found.get(sha) or self.short(sha) for sha in unique}

    def current_branch(self, cwd: Path | None = None) -> str | None:
        proc = self._run("symbolic-ref", "--quiet", "--short", "HEAD", cwd=cwd, ok_codes=(0, 1))
        return proc.stdout.strip() or None

    def is_clean(self, cwd: Path | None = None) -> bool:
        status = self._out("status", "--porcelain=v1", "-z", "--untracked-files=normal", cwd=cwd)
        return status == ""

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
                branch = branch[len("refs/heads/") :]
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
        self._forget_worktree(path)
        if self._add_worktree_directly(path, branch, base):
            return
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

    def _add_worktree_directly(self, path: Path, branch: str | None, base: str) -> bool:
        """`git worktree add` with one git process instead of four (`worktree add` runs
        `branch`, `symbolic-ref` and `reset --hard`, each a git of its own): the worktree's
        git directory is registered as git registers one (gitrepository-layout(5):
        `gitdir`, `commondir`, `HEAD`; `locked` while it is being made, so no `git worktree
        prune` takes it half-made), then one `git checkout --force` fills it and sets the
        branch. False, with nothing of it left, when anything does not work out (the branch
        checked out elsewhere, say): then `git worktree add` does it all."""
        registry = self.common_dir() / "worktrees"
        if not FULL_SHA.fullmatch(base) or (branch is not None and self._checked_out(branch, registry)):
            return False  # git 2.39's `checkout -B` would take a branch another worktree has
        if not self._plain_layout():
            return False
        target = path.parent.resolve() / path.name
        admin: Path | None = None
        made = False
        try:
            registry.mkdir(exist_ok=True)
            for n in range(100):  # the name git would take: the directory's, numbered if taken
                candidate = registry / (path.name if n == 0 else f"{path.name}{n}")
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                admin = candidate.resolve()
                break
            if admin is None:
                return False
            (admin / "locked").write_text("initializing\n", encoding="utf-8")
            target.mkdir()
            made = True
            (admin / "gitdir").write_text(f"{target / '.git'}\n", encoding="utf-8")
            (admin / "commondir").write_text("../..\n", encoding="utf-8")
            (admin / "HEAD").write_text(f"{base}\n", encoding="utf-8")
            (target / ".git").write_text(f"gitdir: {admin}\n", encoding="utf-8")
            self._admin_dirs[target] = admin
            args = ["checkout", "--quiet", "--force", "--no-recurse-submodules"]
            args += (
                ["--detach", base]
                if branch is None
                else ["--no-track", "-B", _checked(branch, "branch"), base]
            )
            if self._run(*args, cwd=target, check=False).returncode == 0:
                (admin / "locked").unlink()
                return True
        except (OSError, HerdError):
            pass
        self._forget_worktree(target)
        if made:
            shutil.rmtree(target, ignore_errors=True)
        if admin is not None:
            shutil.rmtree(admin, ignore_errors=True)
        return False

    def _plain_layout(self) -> bool:
        """Whether a worktree registered by hand is exactly what `git worktree add` would
        make here: not when the repository's config could ask git for more (sparse
        checkout, per-worktree config, relative worktree paths, included config files)
        or it has sparse-checkout patterns. Read from the config file as text, not parsed:
        any mention of those words sends the worktree to git, which is always right."""
        common = self.common_dir()
        try:
            config = (common / "config").read_text(encoding="utf-8", errors="replace").lower()
        except OSError:
            return False
        words = ("sparse", "worktreeconfig", "relativeworktrees", "include", "extensions")
        return (
            not any(word in config for word in words) and not (common / "info" / "sparse-checkout").exists()
        )

    @staticmethod
    def _checked_out(branch: str, registry: Path) -> bool:
        """Whether a worktree of the repository (its own checkout included) has `branch` as
        HEAD, read from their HEAD files."""
        wanted = f"ref: refs/heads/{branch}"
        heads = [registry.parent / "HEAD"] + (list(registry.glob("*/HEAD")) if registry.is_dir() else [])
        for head in heads:
            try:
                if head.read_text(encoding="utf-8").strip() == wanted:
                    return True
            except (OSError, UnicodeDecodeError):
                continue
        return False

    def _discard_worktree_dir(self, path: Path) -> None:
        if path.resolve() == self.toplevel().resolve():
            raise Refused(f"refusing to remove the main worktree {path}; pick another path")
        self.worktree_remove(path, force=True)
        if path.exists():
            if not (path / ".git").is_file() and any(path.iterdir()):
                raise Refused(f"{path} exists and is not a git worktree; move it away and retry")
            shutil.rmtree(path)

    def worktree_remove(self, path: Path, force: bool = True) -> None:
        path = Path(path)
        admin = self._forget_worktree(path)
        if force and admin is not None and self._remove_directly(path, admin):
            return
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

    def _remove_directly(self, path: Path, admin: Path) -> bool:
        """`git worktree remove --force --force` without a git process, for a worktree herd
        registered and pinned (its git directory known): what git does, the checkout
        deleted, then its git directory. Only when the worktree is still plainly itself
        (its `.git` names that git directory, which names it back); False to let git do
        it (and judge a tampered one) otherwise, or when a file will not go."""
        target = path.resolve()
        try:
            gitdir.check_worktree(target, admin)
            registered = (admin / "gitdir").read_text(encoding="utf-8").strip()
        except (WorktreeNotItself, OSError, UnicodeDecodeError):
            return False
        if registered != f"{target}/.git" or target.is_symlink():
            return False
        try:  # `.git` last: until everything else is gone, git can still take over
            for child in os.scandir(target):
                if child.name == ".git":
                    continue
                if child.is_dir(follow_symlinks=False):
                    shutil.rmtree(child.path)
                else:
                    os.unlink(child.path)
        except OSError:
            return False
        shutil.rmtree(target)
        shutil.rmtree(admin, ignore_errors=True)
        return True

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

    def branches_delete(self, names: Sequence[str]) -> None:
        """`branch_delete(force=True)` of many branches, one git call per 200 of them."""
        for start in range(0, len(names), 200):
            chunk = [_checked(name, "branch") for name in names[start : start + 200]]
            proc = self._run("branch", "-D", *chunk, check=False)
            if proc.returncode == 0:
                continue
            left = self._out(
                "for-each-ref", "--format=%(refname:short)", *(f"refs/heads/{name}" for name in chunk)
            ).split()
            if left:
                raise GitError(["git", "branch", "-D", *left], proc.returncode, proc.stderr, self.repo)

    def branches(self, pattern: str) -> list[str]:
        """Local branch names matching `pattern` (fnmatch, or a prefix ending at '/')."""
        out = self._run(
            "for-each-ref", "--format=%(refname:short)", f"refs/heads/{_checked(pattern, 'branch pattern')}"
        ).stdout
        return out.split()

    # -- refs and checkouts ----------------------------------------------------

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
            raise RefMoved(f"{ref} is at {current[:12] or 'nothing'}, expected {old[:12]}; re-read and retry")
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
