"""The repository's git config, kept as the user had it while workers run.

`git config` in a linked worktree writes the config every worktree shares, the
user's own: a worker setting `core.hooksPath` or `user.email` there would change
the user's repository for good. The guard remembers the file when work starts;
after each attempt a change is put back and reported, so that attempt fails.
"""

from __future__ import annotations

import threading
from pathlib import Path


class ConfigGuard:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved = path.read_bytes()
        self._lock = threading.Lock()  # attempts are judged in a thread pool

    def restore_if_changed(self) -> str:
        """Put the saved config back if it changed; what changed ("" when nothing did)."""
        with self._lock:
            now = self.path.read_bytes()
            if now == self._saved:
                return ""
            self.path.write_bytes(self._saved)
        old, new = (set(b.decode(errors="replace").splitlines()) for b in (self._saved, now))
        shown = "; ".join(sorted(line.strip() for line in new ^ old))[:300]
        return (
            f"the worker changed the repository's git config ({self.path}: {shown}); "
            "herd put it back. Workers must not run `git config`"
        )
