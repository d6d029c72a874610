"""Git operations that talk to a remote or a bundle, and the checks made before a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from herd.errors import NotFound
from herd.git.results import PushResult, PushStatus, moved_under_us
from herd.git.runner import GitError, GitRunner, _checked, network_timeout


class RemoteOps(GitRunner):
    def add_remote(self, name: str, url: str) -> None:
        self._run("remote", "add", _checked(name, "remote"), _checked(url, "url"))

    def push_upstream(self, remote: str, branch: str) -> None:
        """First push of a new repository's branch, setting its upstream."""
        self._run("push", "--quiet", "-u", _checked(remote, "remote"), _checked(branch, "branch"))

    def fetch(self, remote: str, branch: str) -> str | None:
        """Fetch `branch` from `remote`; its tip sha, or None when the remote has no such branch."""
        ref = f"refs/heads/{_checked(branch, 'branch')}"
        listed = self._run(
            "ls-remote",
            "--exit-code",
            _checked(remote, "remote"),
            ref,
            ok_codes=(0, 2),
            timeout=network_timeout(),
        )
        if listed.returncode == 2:
            return None
        # A herd-owned ref keeps the fetched commits reachable and is safe to
        # overwrite; FETCH_HEAD would be shared by concurrent fetches.
        local = f"refs/herd/fetched/{branch}"
        self._run("fetch", "--quiet", "--no-tags", remote, f"+{ref}:{local}", timeout=network_timeout())
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
            proc = self._run(
                "push",
                "--porcelain",
                _checked(remote, "remote"),
                f"{_checked(src_sha, 'revision')}:{ref}",
                check=False,
                timeout=network_timeout(),
            )
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
        self._run("bundle", "create", "--quiet", str(path), *(_checked(s, "revision") for s in specs))

    def fetch_bundle(self, bundle_path: Path, sha: str, into_ref: str) -> None:
        """Fetch the ref in the bundle whose tip is `sha` into `into_ref`."""
        heads = self._out("bundle", "list-heads", str(bundle_path))
        names = [
            line.split(" ", 1)[1]
            for line in heads.splitlines()
            if " " in line and line.split(" ", 1)[0] == sha
        ]
        if not names:
            raise NotFound(f"bundle {bundle_path} has no ref at {sha[:12]}; recreate it from the branch")
        self._run(
            "fetch", "--quiet", "--no-tags", str(bundle_path), f"+{names[0]}:{_checked(into_ref, 'ref')}"
        )

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
            return (
                f"no remote {remote!r} in this repository (remotes: "
                f"{', '.join(known) or 'none'}); add it with `git remote add` or pick one "
                "with --remote"
            )
        # Supervised like fetch and push: a silent remote's ssh or upload-pack dies with git.
        timeout = min(timeout, network_timeout())
        try:
            proc = self._run_with_timeout(
                ["git", "ls-remote", "--exit-code", remote, "HEAD"], self.repo, timeout
            )
        except GitError:
            return f"remote {remote!r} did not answer within {timeout:g}s (HERD_GIT_TIMEOUT sets the limit)"
        if proc.returncode not in (0, 2):  # 2: reachable, but it has no HEAD (an empty remote)
            lines = proc.stderr.strip().splitlines()
            return f"remote {remote!r} is not reachable: {lines[0] if lines else proc.returncode}"
        return None
