"""Per-task worktree overhead: herd (create + squash + remove) vs the raw git shell sequence.

Usage: PYTHONPATH=src python bench/bench_worktree.py [--files 2000] [--tasks 16] [--rounds 3]

Both sides do the same work per task on the same ~2,000-file repository: check
out a worktree at base on a new branch, change one file, commit, remove the
worktree. Reports the median per-task time and herd/raw ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from herd.git.repo import Git
from herd.git.worktree import WorktreeManager

RAW_SEQUENCE = """
set -e
git worktree add -q -b "$BRANCH" "$WT" "$BASE"
echo "task $TASK" > "$WT/task_output.txt"
git -C "$WT" add -A
git -C "$WT" commit -q -m "task $TASK"
git worktree remove --force "$WT"
"""


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    for i in range(files):
        path = repo / f"pkg{i % 40:02d}" / f"mod{i:04d}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"# module {i}\n" + "x = 1\n" * 30)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "seed"], cwd=repo, check=True)
    return repo


def herd_round(repo: Path, run: str, tasks: int) -> list[float]:
    git = Git(repo)
    manager = WorktreeManager(git, repo / ".herd" / "worktrees")
    base = git.head()
    times = []
    for i in range(tasks):
        start = time.perf_counter()
        wt = manager.create(run, f"t{i}", 1, base)
        (wt.path / "task_output.txt").write_text(f"task {i}\n")
        git.squash(wt.path, base, f"task {i}", {"Herd-Task": f"t{i}", "Herd-Run": run})
        manager.remove(wt)
        times.append(time.perf_counter() - start)
    return times


def raw_round(repo: Path, run: str, tasks: int) -> list[float]:
    base = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    times = []
    for i in range(tasks):
        env = {
            "BRANCH": f"raw/{run}/t{i}",
            "WT": str(repo.parent / f"raw-{run}-{i}"),
            "BASE": base,
            "TASK": str(i),
        }
        start = time.perf_counter()
        subprocess.run(["bash", "-c", RAW_SEQUENCE], cwd=repo, check=True, env={**os.environ, **env})
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        repo = make_repo(Path(tmp), args.files)
        herd_times: list[float] = []
        raw_times: list[float] = []
        for r in range(args.rounds):
            # Alternate which side goes first so page-cache warmth does not favour one.
            sides = [("herd", herd_round), ("raw", raw_round)]
            for name, fn in sides if r % 2 == 0 else reversed(sides):
                (herd_times if name == "herd" else raw_times).extend(fn(repo, f"b{r}", args.tasks))
        files = len(
            subprocess.run(
                ["git", "ls-files"], cwd=repo, check=True, capture_output=True, text=True
            ).stdout.splitlines()
        )

    herd_ms = statistics.median(herd_times) * 1000
    raw_ms = statistics.median(raw_times) * 1000
    print(f"repo: {files} files; {args.tasks} tasks x {args.rounds} rounds per side")
    print(
        f"herd create+squash+remove  median {herd_ms:7.1f} ms/task  "
        f"total {sum(herd_times) / args.rounds:6.2f} s/round"
    )
    print(
        f"raw  git worktree add+commit+remove median {raw_ms:7.1f} ms/task  "
        f"total {sum(raw_times) / args.rounds:6.2f} s/round"
    )
    print(f"ratio herd/raw: {herd_ms / raw_ms:.2f}")


if __name__ == "__main__":
    main()
