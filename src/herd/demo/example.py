"""`herd demo`: the built-in example, end to end on a fresh machine.

It builds a small sample repository with a bare remote and a dozen scoped
tasks, runs them with the built-in deterministic worker (no agent needed),
tests the combined result once, pushes once, and closes the issues.
"""

from __future__ import annotations

import sys
from pathlib import Path

from herd.git.repo import Git, user_identity
from herd.queue import core as queue_mod
from herd.store import Store

FALLBACK_NAME, FALLBACK_EMAIL = "herd", "herd@localhost"

MODULES = (
    "auth",
    "billing",
    "catalog",
    "checkout",
    "email",
    "inventory",
    "orders",
    "payments",
    "search",
    "shipping",
    "users",
    "reports",
)

CHECK = '''"""The sample project's test suite: every module imports and no function is broken."""
import importlib
import pathlib
import sys

sys.path.insert(0, "src")
failed = 0
for path in sorted(pathlib.Path("src").glob("*.py")):
    module = importlib.import_module(path.stem)
    for name in dir(module):
        if name.startswith("f_") and getattr(module, name)() is None:
            print(f"FAIL {path}: {name}() returned None")
            failed += 1
print(f"{'FAILED' if failed else 'ok'}: {failed} broken functions")
sys.exit(1 if failed else 0)
'''


def build(root: Path, *, with_failures: bool = False) -> tuple[Path, list[str]]:
    """The sample repository (with `origin`, a bare remote) and its tasks' ids."""
    repo, remote = root / "repo", root / "remote.git"
    if repo.exists() or remote.exists():
        from herd.errors import BadInput

        raise BadInput(f"{root} already holds a demo; pass another directory or remove it")
    Git.init(remote, bare=True)
    git = Git.init(repo)
    if user_identity(repo) is None:
        # A fresh container or CI runner: the sample's commits (the workers' too, since
        # worktrees share this config) need an author; the user's own config stays untouched.
        git.config_set("user.name", FALLBACK_NAME)
        git.config_set("user.email", FALLBACK_EMAIL)
    (repo / "src").mkdir()
    for name in MODULES:
        (repo / "src" / f"{name}.py").write_text(f'"""The {name} module."""\n')
    (repo / "check.py").write_text(CHECK)
    (repo / "README.md").write_text("# sample shop\n")
    git.commit_all(repo, "sample project")
    git.add_remote("origin", str(remote))
    git.push_upstream("origin", "main")
    store: Store = queue_mod.init(repo, "shop")
    queue = queue_mod.Queue(store, actor="demo")
    ids = []
    for n, name in enumerate(MODULES):
        title = f"Add a helper to the {name} module"
        if n == 3:
            title += " (flaky worker: fails once, retried)"
        if with_failures and n == 7:
            title += " — breaks the tests"
        issue = queue.create(
            title,
            description=f"Add one function to src/{name}.py.",
            scope=[f"src/{name}.py"],
            criteria=[f"src/{name}.py gains a function", "python check.py passes"],
        )
        ids.append(issue["id"])
    store.close()
    return repo, ids


def worker_command() -> str:
    """The `--cmd` for the built-in worker: this interpreter running herd.demo.worker."""
    import shlex

    return shlex.join([sys.executable, "-m", "herd.demo.worker"])
