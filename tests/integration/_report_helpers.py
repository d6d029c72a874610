"""Real runs to report on and watch: the built-in demo, and a repo whose fake agent
(a small script that really edits and commits) is slow and fails some tasks on purpose."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _queue_helpers import herd, herd_json
from conftest import git, make_repo

WORKER = '''"""Fake agent: prints progress, edits its one scoped file and commits.
A title with "doomed" fails like a network error, "full disk" like a disk error."""
import os, subprocess, sys, time
task = os.environ["HERD_TASK_ID"]
context = open(os.environ["HERD_CONTEXT_FILE"]).read()
steps = int(os.environ.get("FAKE_STEPS", "2"))
for n in range(steps):
    print(f"step {n + 1}/{steps}: working on {task}", flush=True)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0.05")))
if "doomed" in context:
    print(f"Error: cannot reach api.example.invalid for {task} (pid {os.getpid()})", flush=True)
    sys.exit(3)
if "full disk" in context:
    print(f"OSError: [Errno 28] No space left on device: '/tmp/{task}/out.bin'", flush=True)
    sys.exit(1)
scope = [l for l in context.splitlines() if l.startswith("**Scope**")][0].split()[1]
with open(scope, "a") as handle:
    handle.write(f"# done by {task}\\n")
subprocess.run(["git", "add", scope], check=True)
subprocess.run(["git", "commit", "-qm", f"work on {task}"], check=True)
print(f"committed {task}")
'''

# Eight tasks: five succeed, two fail the same way (different ids and pids), one otherwise.
TITLES = [
    "Module 1",
    "Module 2",
    "Module 3 (doomed)",
    "Module 4",
    "Module 5",
    "Module 6 (doomed)",
    "Module 7 (full disk)",
    "Module 8",
]


def task_repo(tmp: Path, titles: list[str] = TITLES) -> tuple[Path, list[str], Path]:
    """A repo with one scoped task per title; returns (repo, task ids, worker script)."""
    repo, _ = make_repo(tmp)
    for n in range(1, len(titles) + 1):
        (repo / "src" / f"m{n}.py").write_text(f"# module {n}\n")
    git(repo, "add", "src")
    git(repo, "commit", "--quiet", "-m", "modules")
    herd("init", "--prefix", "app", cwd=repo)
    ids = [
        herd_json("create", title, "--scope", f"src/m{n}.py", "--criteria", "done", cwd=repo)["id"]
        for n, title in enumerate(titles, 1)
    ]
    worker = tmp / "worker.py"
    worker.write_text(WORKER)
    return repo, ids, worker


def run_args(worker: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--ready",
        "--cmd",
        f"{sys.executable} -S {worker}",
        "--retries",
        "0",
        "--test-cmd",
        "true",
        *extra,
    ]


def demo_repo(tmp: Path) -> Path:
    """`herd demo --with-failures`: a flaky task, a bisection and an ejection."""
    herd("demo", str(tmp / "demo"), "--with-failures", cwd=tmp, check=1, timeout=180)
    return tmp / "demo" / "repo"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
