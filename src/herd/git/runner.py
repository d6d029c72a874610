"""Running git: the environment, the argv, the pinning to one worktree, the errors.

Every call is an argv list (never a shell), so task titles and ids reach git
as data. Anything unexpected raises `GitError`; `Git` (repo.py) builds the
operations on top of `GitRunner._run`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from herd.errors import BadInput, HerdError, Refused
from herd.git import gitdir
from herd.git.gitdir import WorktreeNotItself

_STDERR_TAIL_LINES = 20
_EXCERPT_LINES = 80
#: A commit named by its full object name (SHA-1, or SHA-256 in a repository using it).
FULL_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
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


class GitRunner:
    """Runs git for one repository; `cwd` arguments select one of its worktrees.
    (`Git` in repo.py is the class callers use; this is the part every operation shares.)

    A command for a worktree other than the repository's own checkout is pinned to
    that worktree's git directory (`--git-dir`/`--work-tree`, found from the
    repository's side, never from the worktree's `.git` file, which a worker can
    change), after checking that the worktree still resolves to itself.
    """

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)
        self._admin_dirs: dict[Path, Path] = {}  # worktree path -> its git directory
        self._trees: dict[str, str] = {}  # commit sha -> its tree sha (squash's bases)
        self._canonical: dict[Path, Path] = {}  # a known worktree's absolute path -> resolved
        self._repo_real: Path | None = None  # self.repo resolved, once
        self._common_dir: Path | None = None
        env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
        env["GIT_TERMINAL_PROMPT"] = "0"
        # Nothing herd runs should wait for an editor; messages always come via -F/-m.
        env["GIT_EDITOR"] = "true"
        self._env = env
        # git found once, as the child would find it on this PATH: each spawn otherwise
        # walks PATH again (an encoded path and a failed execve per directory before git's).
        found = shutil.which("git", path=env.get("PATH", os.defpath))
        self._git = os.path.abspath(found) if found else None
        has_email = self._run("config", "user.email", check=False).returncode == 0
        if not has_email:
            self._env.update(_FALLBACK_IDENTITY)

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
                executable=self._git,
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

    def _run_with_timeout(
        self, argv: list[str], where: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """A network command: its own session, so a timeout kills ssh or a remote helper
        with it (killing git alone would leave them holding the pipes open)."""
        proc = subprocess.Popen(
            argv,
            executable=self._git,
            cwd=where,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # the timeout, or Ctrl-C: nothing of the command may outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
                raise
            raise GitError(
                argv,
                -signal.SIGKILL,
                f"no answer after {timeout:g}s (killed; HERD_GIT_TIMEOUT sets the limit)",
                where,
            ) from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def _pin(self, where: Path) -> list[str]:
        """`--git-dir`/`--work-tree` for a linked worktree; nothing for the repository itself."""
        if where == self.repo:
            return []
        path = self._resolved(where)
        if path == self._repo_resolved():
            return []
        admin = self._admin_dirs.get(path) or self._find_admin_dir(path)
        gitdir.check_worktree(path, admin)
        if where.is_absolute():
            self._canonical[where] = path
        return [f"--git-dir={admin}", f"--work-tree={path}"]

    def _resolved(self, where: Path) -> Path:
        """`where.resolve()`; for a worktree pinned before, the path it resolved to then (a
        realpath walks every component, a few times per git call otherwise). The worktree's
        `.git` file is still read and checked on every call (`gitdir.check_worktree`)."""
        return self._canonical.get(where) or where.resolve()

    def _forget_worktree(self, path: Path) -> Path | None:
        """Drop what is remembered about the worktree at `path` (it is being removed or made
        again); its git directory as it was registered, if known."""
        resolved = self._canonical.pop(path, None) or path.resolve()
        return self._admin_dirs.pop(resolved, None)

    def _repo_resolved(self) -> Path:
        if self._repo_real is None:
            self._repo_real = self.repo.resolve()
        return self._repo_real

    def common_dir(self) -> Path:
        """The git directory every worktree of the repository shares (config, refs)."""
        if self._common_dir is None:
            common = self._out("rev-parse", "--path-format=absolute", "--git-common-dir")
            self._common_dir = Path(common)
        return self._common_dir

    def _find_admin_dir(self, path: Path) -> Path:
        admin = gitdir.registered_admin_dir(self.common_dir(), path)
        if admin is None:
            raise WorktreeNotItself(
                f"{path} is not a worktree of {self.repo} (git has no record of it); herd runs no git there"
            )
        self._admin_dirs[path] = admin
        return admin

    def _out(self, *args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
        return self._run(*args, cwd=cwd, stdin=stdin).stdout.strip()

    def config_get(self, key: str) -> str | None:
        proc = self._run("config", "--get", _checked(key, "config key"), check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def config_set(self, key: str, value: str) -> None:
        """Set `key` in this repository's own config (not the user's global one)."""
        self._run("config", "--local", _checked(key, "config key"), value)
