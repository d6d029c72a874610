"""Which git directory a worktree belongs to, and whether it still resolves to it.

A worktree's `.git` file is the worker's to break: removed, git looks upward
and finds the user's repository; rewritten, it names any repository at all.
So herd finds a worktree's git directory from the repository's own registry
(`<common dir>/worktrees/*/gitdir`) and checks the `.git` file against it
before running git there.
"""

from __future__ import annotations

from pathlib import Path

from herd.errors import Refused


class WorktreeNotItself(Refused):
    """A worktree's `.git` file no longer leads to the worktree's own git directory (a
    worker removed or rewrote it): herd runs no git there, or it would act on the
    repository the file now names (the user's, when `.git` is simply gone)."""


def registered_admin_dir(common_dir: Path, path: Path) -> Path | None:
    """The git directory the repository registered for the worktree at `path`."""
    registry = common_dir / "worktrees"
    # git names the directory after the worktree's (with a number when that name is taken):
    # that one first, then every other.
    likely = registry / path.name
    for admin in [likely, *sorted(registry.iterdir())] if registry.is_dir() else []:
        try:
            gitfile = (admin / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        # git writes the absolute path; anything else is resolved relative to admin.
        if Path(gitfile).parent == path or (admin / gitfile).resolve().parent == path:
            return admin.resolve()
    return None


def check_worktree(path: Path, admin: Path) -> None:
    """Raise WorktreeNotItself unless `path/.git` is a file naming `admin`."""
    gitfile = path / ".git"
    try:
        text = gitfile.read_text(encoding="utf-8") if not gitfile.is_symlink() else ""
    except (OSError, UnicodeDecodeError):
        text = ""
    target = text.strip().removeprefix("gitdir:").strip() if text.startswith("gitdir:") else ""
    if target and target == str(admin) and admin.is_absolute():
        return  # what git writes, naming the admin dir as herd resolved it: nothing to resolve
    if not target or (path / target).resolve() != admin.resolve():
        what = (
            "is gone"
            if not gitfile.exists() and not gitfile.is_symlink()
            else (f"now points at {target}" if target else "is no longer a git file")
        )
        raise WorktreeNotItself(
            f"worktree {path} no longer resolves to itself: its .git {what}; a worker "
            "must not change .git (herd ran no git there)"
        )
