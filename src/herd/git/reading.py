"""Reading history: what a commit changed, the blobs it adds, the trailers on a range."""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

from herd.errors import BadInput
from herd.git.messages import _TRAILER_KEY
from herd.git.remote import RemoteOps
from herd.git.runner import FULL_SHA, GitError, _checked, _split_z


def _added(entries: list[tuple[str, str, str]], meta: str, path: str) -> None:
    """Add (path, mode, blob) of one `git diff-tree -z` entry unless it deletes a file or is
    a submodule."""
    parts = meta.lstrip(":").split()
    if len(parts) >= 5 and parts[4] != "D" and parts[1] != "160000":
        entries.append((path, parts[1], parts[3]))


class ReadOps(RemoteOps):
    """The part of `Git` that reads commits and trees and changes nothing."""

    def ls_files(self, cwd: Path | None = None) -> list[str]:
        return _split_z(self._run("ls-files", "-z", cwd=cwd).stdout)

    def count_between(self, base: str, rev: str) -> int:
        """How many commits `rev` has that `base` does not."""
        return int(
            self._out("rev-list", "--count", f"{_checked(base, 'revision')}..{_checked(rev, 'revision')}")
        )

    def changed_paths(self, base: str, rev: str) -> list[str]:
        """Paths that differ between two commits; a rename counts as both its names."""
        out = self._run(
            "diff-tree",
            "-r",
            "-z",
            "--name-only",
            "--no-renames",
            _checked(base, "revision"),
            _checked(rev, "revision"),
        ).stdout
        return _split_z(out)

    def added_blobs(self, rev: str) -> list[tuple[str, str, str, int]]:
        """(path, mode, blob sha, size) of every file `rev` adds or changes relative to its
        first parent; deletions and submodules are left out."""
        out = self._run(
            "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", f"{_checked(rev, 'revision')}^", rev
        ).stdout
        fields = out.split("\0")
        entries: list[tuple[str, str, str]] = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            _added(entries, meta, path)
        return self._with_sizes({rev: entries})[rev]

    def added_blobs_many(self, revs: Sequence[str]) -> dict[str, list[tuple[str, str, str, int]]]:
        """`added_blobs` of each of `revs` (commits), with one `git diff-tree --stdin` for
        all of them (landing looks at every commit it stacks)."""
        unique = list(dict.fromkeys(_checked(rev, "commit") for rev in revs))
        if not unique:
            return {}
        if not all(FULL_SHA.fullmatch(rev) for rev in unique):
            # --stdin reads object names only (it copies anything else through).
            return {rev: self.added_blobs(rev) for rev in unique}
        # --always: a header for a commit that changes nothing too; first-parent: as above.
        out = self._run(
            "diff-tree",
            "--stdin",
            "-r",
            "-z",
            "--no-renames",
            "--always",
            "--diff-merges=first-parent",
            stdin="".join(f"{rev}\n" for rev in unique),
        ).stdout
        found: dict[str, list[tuple[str, str, str]]] = {}
        fields = out.split("\0")
        current: list[tuple[str, str, str]] | None = None
        n = 0
        while n < len(fields):
            field = fields[n]
            if field.startswith(":") and current is not None and n + 1 < len(fields):
                _added(current, field, fields[n + 1])
                n += 2
                continue
            if field.strip():
                current = found.setdefault(field.split()[0], [])  # a commit's header: its sha
            n += 1
        if any(rev not in found for rev in unique):  # a root commit, say
            return {rev: self.added_blobs(rev) for rev in unique}
        return self._with_sizes(found)

    def _with_sizes(
        self, entries: dict[str, list[tuple[str, str, str]]]
    ) -> dict[str, list[tuple[str, str, str, int]]]:
        """Each (path, mode, blob) with the blob's size: from the loose objects' headers, or
        one `git cat-file --batch-check` for all of them."""
        blobs = [sha for listed in entries.values() for _, _, sha in listed]
        if not blobs:
            return {rev: [] for rev in entries}
        sizes = self._loose_blob_sizes(blobs)
        if sizes is None:
            sizes = [
                int(size)
                for size in self._out(
                    "cat-file", "--batch-check=%(objectsize)", stdin="".join(f"{sha}\n" for sha in blobs)
                ).split()
            ]
        by_blob = iter(sizes)
        return {rev: [(*entry, next(by_blob)) for entry in listed] for rev, listed in entries.items()}

    def _loose_blob_sizes(self, shas: list[str]) -> list[int] | None:
        """Sizes of blobs stored as loose objects, from each object's zlib header
        (`blob <size>\\0`) - a task's fresh commit has only loose blobs, and landing asked
        a `git cat-file` per task for them. None when any of them is not a plain loose
        blob here (packed, in an alternate): then git answers."""
        objects = self.common_dir() / "objects"
        sizes = []
        for sha in shas:
            try:
                with open(objects / sha[:2] / sha[2:], "rb") as f:
                    # A large, very compressible blob can need a few hundred bytes of
                    # deflate stream before its first output byte.
                    head = zlib.decompressobj().decompress(f.read(65536), 64)
            except (OSError, zlib.error):
                return None
            kind, _, rest = head.partition(b" ")
            size, nul, _ = rest.partition(b"\0")
            if kind != b"blob" or not nul or not size.isdigit():
                return None
            sizes.append(int(size))
        return sizes

    def read_blob(self, sha: str) -> bytes:
        proc = subprocess.run(
            ["git", "cat-file", "blob", _checked(sha, "blob")],
            cwd=self.repo,
            env=self._env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise GitError(
                ["git", "cat-file", "blob", sha],
                proc.returncode,
                proc.stderr.decode(errors="replace"),
                self.repo,
            )
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
