"""`herd plan --ready` on 1,000 scoped tasks in a repository of 10,000 files.

Bars: <= 2 s end to end; and issue 16's row: <= 0.4 s (it was 0.82 s, with `herd ready`
at 0.19 s). `herd ready` on the same store, which lists the same tasks without checking
them, is printed beside it with the ratio.
Baselines in the same run: `herd ready`, `git ls-files` alone (the floor any plan pays), and
the naive approach the issue rules out: every task's compiled pathspec matched over every
tracked file. Runs of the two herd commands alternate; each time is the best of --repeat,
wall clock and CPU (user + sys: steadier on a loaded machine).

    python bench/bench_plan.py [--tasks 1000] [--files 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pathspec

SRC = Path(__file__).resolve().parents[1] / "src"


def build(root: Path, files: int, tasks: int) -> tuple[Path, list[str]]:
    rng = random.Random(1)
    repo = root / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    packages = [f"pkg{n}" for n in range(100)]
    paths = []
    for n in range(files):
        pkg = packages[n % len(packages)]
        kind = rng.choice(["src", "src", "tests", "docs"])
        ext = ".md" if kind == "docs" else ".py"
        paths.append(f"{kind}/{pkg}/mod{n % 17}/file_{n}{ext}")
    for path in paths:
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-qm", "tree"], cwd=repo, check=True
    )
    records, scopes = [], []
    for n in range(tasks):
        pkg = packages[n % len(packages)]
        mod = (n // len(packages)) % 17
        shape = n % 10
        if shape < 6:
            scope = [f"src/{pkg}/mod{mod}/*.py", f"tests/{pkg}/mod{mod}/**"]
        elif shape < 8:
            scope = [f"src/{pkg}/mod{mod}/file_{n}.py"]
        elif shape < 9:
            scope = [f"docs/{pkg}/**/*.md"]
        else:
            scope = [f"src/{pkg}/**", f"!src/{pkg}/mod0/**"] if n % 20 == 9 else [f"src/{pkg}/**/*.py"]
        scopes.append(scope)
        records.append(
            {
                "id": f"b-{n:04d}",
                "title": f"task {n}",
                "acceptance_criteria": "1. ok",
                "status": "open",
                "priority": n % 5,
                "issue_type": "task",
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "metadata": {"herd": {"scope": scope, "out_of_scope": []}},
            }
        )
    jsonl = root / "tasks.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run(
        [sys.executable, "-m", "herd", "init", "--prefix", "b"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "herd", "import", str(jsonl)],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    return repo, [" ".join(s) for s in scopes]


def timed_cpu(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo, scopes = build(Path(tmp), args.files, args.tasks)
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC)], check=True)
        plan_runs, ready_runs = [], []
        for _ in range(args.repeat):
            *plan_times, out = timed_cpu(
                [sys.executable, "-m", "herd", "plan", "--ready", "--json"], repo, env
            )
            plan_runs.append(plan_times)
            *ready_times, listed = timed_cpu(
                [sys.executable, "-m", "herd", "ready", "--json", "--limit", "0"], repo, env
            )
            ready_runs.append(ready_times)
        plan = json.loads(out)
        assert len(json.loads(listed)) == args.tasks, "herd ready must list every task"
        git_time = min(timed_cpu(["git", "ls-files", "-z"], repo)[0] for _ in range(args.repeat))
        files = subprocess.run(
            ["git", "ls-files"], cwd=repo, capture_output=True, text=True
        ).stdout.splitlines()
        started = time.perf_counter()
        for scope in scopes:
            spec = pathspec.PathSpec.from_lines("gitwildmatch", scope.split())
            list(spec.match_files(files))
        naive = time.perf_counter() - started
    best = min(wall for wall, _ in plan_runs)
    plan_cpu = min(cpu for _, cpu in plan_runs)
    ready_wall = min(wall for wall, _ in ready_runs)
    ready_cpu = min(cpu for _, cpu in ready_runs)
    print(
        f"herd plan --ready: {args.tasks} tasks, {args.files} files -> "
        f"{len(plan['waves'])} waves, {len(plan['conflicts'])} conflicting pairs"
    )
    print(
        f"  herd plan (end to end, best of {args.repeat}) : {best:6.2f} s   "
        f"bar <= 2 s   {'PASS' if best <= 2 else 'FAIL'}   cpu {plan_cpu:.2f} s"
    )
    print(f"  herd ready (baseline, same store)   : {ready_wall:6.2f} s   cpu {ready_cpu:.2f} s")
    print(
        f"  plan / ready                        : {best / ready_wall:6.2f}x wall   "
        f"{plan_cpu / ready_cpu:.2f}x cpu"
    )
    print(
        f"  issue 16 goal: plan --ready <= 0.4 s: {'PASS' if best <= 0.4 else 'FAIL'} "
        f"(was 0.82 s with herd ready at 0.19 s)"
    )
    print(f"  git ls-files alone                  : {git_time:6.3f} s   (herd plan = {best / git_time:.0f}x)")
    print(f"  naive spec-per-task over all files  : {naive:6.2f} s   (herd plan = {best / naive:.2f}x of it)")


if __name__ == "__main__":
    main()
