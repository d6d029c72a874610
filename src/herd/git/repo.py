"""The one place in herd that runs git.

Every call is an argv list (never a shell), so task titles and ids reach git
as data. Results that callers branch on (a cherry-pick conflict, a rejected
push) come back as values; anything else unexpected raises `GitError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from herd.errors import BadInput, HerdError, NotFound, Refused
from herd.git import gitdir
from herd.git.gitdir import WorktreeNotItself
from herd.git.results import (
    PickResult,
    PushResult,
    PushStatus,
    WorktreeInfo,
    moved_under_us,
)

__all__ = ["Git", "GitError", "NotDescendant", "NothingToCommit", "PickResult", "PushResult",
           "PushStatus", "RefMoved", "WorktreeInfo", "WorktreeNotItself",
           "format_message", "network_timeout"]

_STDERR_TAIL_LINES = 20
_EXCERPT_LINES = 80
# Variables a git hook (or a parent git command) exports; inherited, they would
# point every call at the wrong repository or index.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "herd",
    "GIT_AUTHOR_EMAIL": "herd@localhost",
    "GIT_COMMITTER_NAME": "herd",
    "GIT_COMMITTER_EMAIL": "herd@localhost",
}
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# Fetch and push give up after this long (seconds; HERD_GIT_TIMEOUT overrides): a remote
# that never answers must not hang landing forever.
NETWORK_TIMEOUT = 300.0


def network_timeout() -> float:
    value = os.environ.get("HERD_GIT_TIMEOUT", "")
    try:
        return float(value) if value else NETWORK_TIMEOUT
    except ValueError:
        raise BadInput(f"HERD_GIT_TIMEOUT={value!r}: use a number of seconds") from None


class GitError(HerdError):
    """A git command failed in a way herd does not handle itself."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, cwd: Path) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = "\n".join(stderr.strip().splitlines()[-_STDERR_TAIL_LINES:])
        self.cwd = cwd
        last = self.stderr.splitlines()[-1] if self.stderr else "no output"
        super().__init__(
            f"`{' '.join(self.argv)}` failed (exit {returncode}) in {cwd}: {last}; "
            "run it there by hand to see the whole error"
        )


class NothingToCommit(Refused):
    """The worker left no change relative to its base."""


class NotDescendant(Refused):
    """The worker's HEAD no longer descends from the base it was given."""


class RefMoved(Refused):
    """A compare-and-swap ref update found a different old value."""


def _checked(value: str, what: str) -> str:
    """Refuse values git would read as options or that cannot be one argument."""
    if not value or value.startswith("-") or "\0" in value or "\n" in value:
        raise BadInput(f"invalid {what} {value!r} for git; use a name without leading '-'")
    return value


def _split_z(output: str) -> list[str]:
    return [item for item in output.split("\0") if item]


class Git:
    """Runs git for one repository; `cwd` arguments select one of its worktrees.

    A command for a worktree other than the repository's own checkout is pinned to
    that worktree's git directory (`--git-dir`/`--work-tree`, found from the
    repository's side, never from the worktree's `.git` file, which a worker can
    change), after checking that the worktree still resolves to itself.
    """

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)
        self._admin_dirs: dict[Path, Path] = {}  # worktree path -> its git directory
        self._common_dir: Path | None = None
        env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"
        # Nothing herd runs should wait for an editor; messages always come via -F/-m.
        env["GIT_EDITOR"] = "true"
        self._env = env
        has_email = self._run("config", "user.email", check=False).returncode == 0
        if not has_email:
            self._env.update(_FALLBACK_IDENTITY)

    # -- creating repositories (the demo, tests) ----------------------------------

    @classmethod
    def init(cls, path: Path, *, bare: bool = False, branch: str = "main") -> Git:
        path.mkdir(parents=True, exist_ok=True)
        argv = ["git", "init", "--quiet", f"--initial-branch={_checked(branch, 'branch')}"]
        if bare:
            argv.append("--bare")
        subprocess.run([*argv, str(path)], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        return cls(path)

    def add_remote(self, name: str, url: str) -> None:
        self._run("remote", "add", _checked(name, "remote"), _checked(url, "url"))

    def push_upstream(self, remote: str, branch: str) -> None:
        """First push of a new repository's branch, setting its upstream."""
        self._run("push", "--quiet", "-u", _checked(remote, "remote"), _checked(branch, "branch"))

    # -- running -------------------------------------------------------------

    def _run(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        stdin: str | None = None,
        ok_codes: tuple[int, ...] = (0,),
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        where = Path(cwd) if cwd is not None else self.repo
        argv = ["git", *self._pin(where), *args]
        if timeout is not None:
            proc = self._run_with_timeout(argv, where, timeout)
        else:
            proc = subprocess.run(
                argv,
                cwd=where,
                env=self._env,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="surrogateescape",
            )
        if check and proc.returncode not in ok_codes:
            raise GitError(argv, proc.returncode, proc.stderr, where)
        return proc

    def _run_with_timeout(self, argv: list[str], where: Path,
                          timeout: float) -> subprocess.CompletedProcess[str]:
        """A network command: its own session, so a timeout kills ssh or a remote helper
        with it (killing git alone would leave them holding the pipes open)."""
        proc = subprocess.Popen(argv, cwd=where, env=self._env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="surrogateescape",
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # the timeout, or Ctrl-C: nothing of the command may outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
            raise GitError(argv, -signal.SIGKILL, f"no answer after {timeout:g}s (killed; "
                           "HERD_GIT_TIMEOUT sets the limit)", where) from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def _pin(self, where: Path) -> list[str]:
        """`--git-dir`/`--work-tree` for a linked worktree; nothing for the repository itself."""
        if where == self.repo:
            return []
        path = where.resolve()
        if path == self.repo.resolve():
            return []
        admin = self._admin_dirs.get(path) or self._find_admin_dir(path)
        gitdir.check_worktree(path, admin)
        return [f"--git-dir={admin}", f"--work-tree={path}"]

    def common_dir(self) -> Path:
        """The git directory every worktree of the repository shares (config, refs)."""
        if self._common_dir is None:
            common = self._out("rev-parse", "--path-format=absolute", "--git-common-dir")
            self._common_dir = Path(common)
        return self._common_dir

    def _find_admin_dir(self, path: Path) -> Path:
        admin = gitdir.registered_admin_dir(self.common_dir(), path)
        if admin is None:
            raise WorktreeNotItself(f"{path} is not a worktree of {self.repo} (git has no "
                                    "record of it); herd runs no git there")
        self._admin_dirs[path] = admin
        return admin

    def _out(self, *args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
        return self._run(*args, cwd=cwd, stdin=stdin).stdout.strip()

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
        if not self.is_ancestor(base_sha, head):
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
        self._run("symbolic-ref", "HEAD", ref, cwd=cwd)
        return sha

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

    def config_get(self, key: str) -> str | None:
        proc = self._run("config", "--get", _checked(key, "config key"), check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def config_set(self, key: str, value: str) -> None:
        """Set `key` in this repository's own config (not the user's global one)."""
        self._run("config", "--local", _checked(key, "config key"), value)

    def merge_ff_only(self, cwd: Path, rev: str) -> bool:
        """Fast-forward `cwd` to `rev`; False (and nothing changed) when that is not possible."""
        if not self.is_ancestor(self.head(cwd), rev):
            return False
        self._run("merge", "--ff-only", "--quiet", _checked(rev, "revision"), cwd=cwd)
        return True

    # -- remotes and bundles -------------------------------------------------

    def fetch(self, remote: str, branch: str) -> str | None:
        """Fetch `branch` from `remote`; its tip sha, or None when the remote has no such branch."""
        ref = f"refs/heads/{_checked(branch, 'branch')}"
        listed = self._run("ls-remote", "--exit-code", _checked(remote, "remote"), ref,
                           ok_codes=(0, 2), timeout=network_timeout())
        if listed.returncode == 2:
            return None
        # A herd-owned ref keeps the fetched commits reachable and is safe to
        # overwrite; FETCH_HEAD would be shared by concurrent fetches.
        local = f"refs/herd/fetched/{branch}"
        self._run("fetch", "--quiet", "--no-tags", remote, f"+{ref}:{local}",
                  timeout=network_timeout())
        return self._out("rev-parse", "--verify", local)

    def push(self, cwd: Path, remote: str, src_sha: str, branch: str) -> PushResult:
        """Push `src_sha` to `branch` on `remote`, never forcing.

        Runs from the repository's top level whatever `cwd` is: a remote given as a
        relative path (`../remote.git`) means relative to the repository, and a worktree
        under .herd/ would resolve it somewhere else. The commit is in the shared store.
        """
        del cwd
        ref = f"refs/heads/{_checked(branch, 'branch')}"
        try:
            proc = self._run("push", "--porcelain", _checked(remote, "remote"),
                             f"{_checked(src_sha, 'revision')}:{ref}", check=False,
                             timeout=network_timeout())
        except GitError as exc:  # timed out
            return PushResult(PushStatus.ERROR, exc.stderr)
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or not parts[1].endswith(f":{ref}"):
                continue
            flag, summary = parts[0], parts[2]
            if flag == "!" and moved_under_us(summary):
                return PushResult(PushStatus.REJECTED, summary)
            if flag != "!" and proc.returncode == 0:
                return PushResult(PushStatus.OK, summary)
            return PushResult(PushStatus.ERROR, summary)
        tail = proc.stderr.strip().splitlines()
        detail = tail[-1] if tail else f"git push exited {proc.returncode}"
        return PushResult(PushStatus.ERROR, detail)

    def bundle_create(self, path: Path, rev_spec: str | Sequence[str]) -> None:
        """Write a bundle of `rev_spec` (it must name at least one ref, e.g. 'base..branch')."""
        specs = [rev_spec] if isinstance(rev_spec, str) else list(rev_spec)
        self._run("bundle", "create", "--quiet", str(path),
                  *(_checked(s, "revision") for s in specs))

    def fetch_bundle(self, bundle_path: Path, sha: str, into_ref: str) -> None:
        """Fetch the ref in the bundle whose tip is `sha` into `into_ref`."""
        heads = self._out("bundle", "list-heads", str(bundle_path))
        names = [line.split(" ", 1)[1] for line in heads.splitlines()
                 if " " in line and line.split(" ", 1)[0] == sha]
        if not names:
            raise NotFound(
                f"bundle {bundle_path} has no ref at {sha[:12]}; recreate it from the branch"
            )
        self._run("fetch", "--quiet", "--no-tags", str(bundle_path),
                  f"+{names[0]}:{_checked(into_ref, 'ref')}")

    # -- checks before a run starts ---------------------------------------------

    def branch_name_ok(self, name: str) -> bool:
        """Whether `name` is a valid branch name (`git check-ref-format --branch`)."""
        if not name or name.startswith("-"):
            return False
        return self._run("check-ref-format", "--branch", name, check=False).returncode == 0

    def remote_problem(self, remote: str, timeout: float = 30.0) -> str | None:
        """Why a push to `remote` cannot work, found before any worker starts; None when the
        remote is known and answers `git ls-remote` within `timeout` seconds."""
        if not remote or remote.startswith("-"):
            return f"invalid remote name {remote!r}"
        if self.config_get(f"remote.{remote}.url") is None:
            known = self._out("remote").split()
            return (f"no remote {remote!r} in this repository (remotes: "
                    f"{', '.join(known) or 'none'}); add it with `git remote add` or pick one "
                    "with --remote")
        # Supervised like fetch and push: a silent remote's ssh or upload-pack dies with git.
        timeout = min(timeout, network_timeout())
        try:
            proc = self._run_with_timeout(["git", "ls-remote", "--exit-code", remote, "HEAD"],
                                          self.repo, timeout)
        except GitError:
            return (f"remote {remote!r} did not answer within {timeout:g}s "
                    "(HERD_GIT_TIMEOUT sets the limit)")
        if proc.returncode not in (0, 2):  # 2: reachable, but it has no HEAD (an empty remote)
            lines = proc.stderr.strip().splitlines()
            return f"remote {remote!r} is not reachable: {lines[0] if lines else proc.returncode}"
        return None


def format_message(message: str, trailers: Mapping[str, str]) -> str:
    """`message`, a blank line, then one `Key: value` line per trailer."""
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.fullmatch(key):
            raise BadInput(f"invalid trailer key {key!r}; use letters, digits and '-'")
        if "\n" in value or not value.strip():
            raise BadInput(f"invalid value {value!r} for trailer {key}; use one non-empty line")
        lines.append(f"{key}: {value.strip()}")
    body = message.strip("\n").rstrip()
    if not lines:
        return body + "\n"
    return f"{body}\n\n" + "\n".join(lines) + "\n"


def _with_newline(message: str) -> str:
    return message if message.endswith("\n") else message + "\n"


def user_identity(repo: Path) -> str | None:
    """The identity the user's own git commits with in `repo` ("Name <email>", from config or
    GIT_AUTHOR_*/GIT_COMMITTER_* in the environment), or None when git would refuse to commit.

    Asked without herd's fallback identity: a worker commits with the user's git, so a run
    needs a real one, checked before anything starts."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    idents = []
    for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        proc = subprocess.run(["git", "var", var], cwd=repo, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            return None
        idents.append(proc.stdout)
    # "Name <email> 1700000000 +0000": drop the timestamp.
    return idents[0].rsplit(" ", 2)[0]


def no_identity_message(repo: Path) -> str:
    return (f"git has no user identity to commit with in {repo} (the workers commit there); "
            "set one: git config --global user.name 'Your Name' && "
            "git config --global user.email you@example.com")


def enclosing_repository(path: Path) -> Path | None:
    """The top of the git work tree that `path` (or, when it does not exist yet, its nearest
    existing parent) lies in; None outside any repository."""
    probe = Path(path).absolute()
    while not probe.is_dir() and probe != probe.parent:
        probe = probe.parent
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=probe, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
