"""Git worktrees travelling to Dask workers and back.

A job whose `cwd` is a linked git worktree gets the worktree's HEAD sent as a
bundle (once per base commit, sent with each of its tasks); its commits come back as
a bundle that is fetched into the worktree, whose branch is then reset to them.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from herd.engine.executor.remote_job import RemoteOutcome, RepoShipment
from herd.git.repo import Git


class WorktreeShipper:
    """Bundles of the base commits jobs start from, made once per base."""

    def __init__(self) -> None:
        self._bases: dict[str, bytes] = {}  # base sha -> its bundle
        self._identities: dict[str, tuple[str, str] | None] = {}

    def ship(self, cwd: Path | None) -> tuple[RepoShipment | None, bytes | None]:
        """A linked worktree (its `.git` is a file) travels as its HEAD's bundle. A main
        checkout never does: bringing a result back resets the directory to it."""
        if cwd is None or not (cwd / ".git").is_file():
            return None, None
        git = Git(cwd)
        base = git.head(cwd)
        if base not in self._bases:
            # Sent as a plain argument of each task, not scattered: Dask forgets scattered
            # data when a task that depends on it fails with KilledWorker, which would
            # cancel the retry of the very task whose worker died.
            self._bases[base] = _bundle_of(git, base)
            self._identities[base] = _identity(git)
        return RepoShipment(str(cwd), base, self._identities[base]), self._bases[base]


def bring_back(repo: RepoShipment | None, cwd: Path | None, outcome: RemoteOutcome) -> None:
    """Make the local worktree what the job left on the node: fetch its commits and
    reset the worktree's branch to them."""
    if repo is None or cwd is None or outcome.head is None or outcome.head == repo.base:
        return
    git = Git(cwd)
    if outcome.bundle is None:
        git.reset_hard(cwd, outcome.head)
        return
    ref = f"refs/herd/dask/{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="herd-bundle-") as tmp:
        path = Path(tmp) / "result.bundle"
        path.write_bytes(outcome.bundle)
        git.fetch_bundle(path, outcome.head, ref)
    try:
        git.reset_hard(cwd, outcome.head)
    finally:
        git.delete_ref(ref)


def _bundle_of(git: Git, base: str) -> bytes:
    ref = f"refs/herd/dask-base/{base}"
    git.update_ref(ref, base)
    try:
        with tempfile.TemporaryDirectory(prefix="herd-bundle-") as tmp:
            path = Path(tmp) / "base.bundle"
            git.bundle_create(path, ref)
            return path.read_bytes()
    finally:
        git.delete_ref(ref)


def _identity(git: Git) -> tuple[str, str] | None:
    name, email = git.config_get("user.name"), git.config_get("user.email")
    return (name, email) if name and email else None
