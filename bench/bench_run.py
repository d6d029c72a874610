"""How fast is `herd run`? The real CLI as a subprocess, a real repo, a real worker command.

1. Makespan: 16 tasks that each sleep 1 s and edit one file, -j 4, --no-integrate.
   Ideal: 4 s (16 x 1 s over 4 workers). Bar: within 1.3x, worktree creation included.
2. Overhead: 200 tasks that edit one file at once, -j 4, --no-integrate.
   herd's own cost per task = wall time / 200 (nothing subtracted). Bar: <= 50 ms.

Issues are created through the library (fast) in a small repo of a few dozen files;
only the `herd run` itself is timed. Usage: PYTHONPATH=src python bench/bench_run.py
[--tasks-overhead 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 40

# The worker: sleeps, then edits the one file its context names as scope (herd commits it).
# A shell script, so the measurement is herd and not a Python interpreter starting per task.
WORKER = r'''#!/bin/sh
[ "$1" = 0 ] || sleep "$1"
path=$(sed -n 's/^\*\*Scope\*\*: \([^ ]*\).*/\1/p' "$HERD_CONTEXT_FILE")
echo "$HERD_TASK_ID" >> "$path"
'''


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_project(root: Path, tasks: int) -> tuple[Path, list[str]]:
    from herd.queue import core as queue_mod

    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Bench")
    git(repo, "config", "user.email", "bench@example.invalid")
    (repo / "src").mkdir()
    for n in range(FILES):
        (repo / "src" / f"mod{n}.py").write_text(f"# module {n}\n" + "x = 1\n" * 20)
    (repo / "README.md").write_text("bench\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bench project")
    store = queue_mod.init(repo, "b")
    queue = queue_mod.Queue(store, actor="bench")
    ids = []
    for n in range(tasks):
        # Each task's scope is its own new file, so all of them fit in one wave.
        issue = queue.create(f"bench task {n}", description="edit one file",
                             criteria=["the file is edited"], scope=[f"src/new{n}.txt"])
        ids.append(issue["id"])
    store.close()
    return repo, ids


def run_herd(repo: Path, ids: list[str], worker: Path, delay: float, jobs: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = str(src)
    argv = [sys.executable, "-m", "herd", "run", "--ready", "--cmd", f"{worker} {delay:g}",
            "-j", str(jobs), "--no-integrate"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"  {len(ids)} tasks: {elapsed:.2f} s wall, {cpu:.2f} s CPU (herd, git and workers; "
          f"{cpu / len(ids) * 1000:.1f} ms/task)", file=sys.stderr)
    if proc.returncode != 0:
        sys.exit(f"herd run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    done = proc.stdout.splitlines()[0]
    if f"{len(ids)} succeeded" not in done:
        sys.exit(f"not every task succeeded: {done}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks-overhead", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the repos here and keep them")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the best counts (the machine is shared)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    root = args.keep or Path(tempfile.mkdtemp(prefix="herd-bench-run-"))
    worker = root / "worker.py"
    root.mkdir(parents=True, exist_ok=True)
    worker.write_text(WORKER)
    worker.chmod(0o755)

    def best(name: str, tasks: int, delay: float) -> float:
        times = []
        for n in range(args.repeat):
            repo, ids = make_project(root / f"{name}{n}", tasks)
            times.append(run_herd(repo, ids, worker, delay, 4))
        print(f"{name}: " + ", ".join(f"{t:.2f}" for t in times) + " s", file=sys.stderr)
        return min(times)

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
          file=sys.stderr)
    rows = []
    makespan = best("makespan", 16, 1.0)
    rows.append(("makespan, 16 x 1 s tasks, -j 4", f"{makespan:.2f} s", "4.00 s (ideal)",
                 makespan / 4.0, 1.3))

    n = args.tasks_overhead
    wall = best("overhead", n, 0.0)
    per_task = wall / n * 1000
    rows.append((f"overhead, {n} x 0 s tasks, -j 4", f"{per_task:.1f} ms/task",
                 "50 ms/task (bar)", per_task / 50.0, 1.0))

    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    header = ("measurement", "herd", "ideal/baseline", "ratio", "bar", "result")
    table = [header] + [(m, v, b, f"{r:.2f}x", f"<= {bar:g}x", "PASS" if r <= bar else "FAIL")
                        for m, v, b, r, bar in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r <= bar for *_, r, bar in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
