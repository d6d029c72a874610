"""How fast is `herd run`? The real CLI as a subprocess, a real repo, a real worker command.

1. Makespan: 16 tasks that each sleep 1 s and edit one file, -j 4, --no-integrate.
   Ideal: 4 s (16 x 1 s over 4 workers). Bar: within 1.3x, worktree creation included.
2. Overhead: 200 tasks that edit one file at once, -j 4, --no-integrate.
   herd's own cost per task = wall time / 200 (nothing subtracted). Bar: <= 50 ms.
3. Against plain git (issue 16): 50 tasks that each write one file, -j 4, against a shell
   loop doing the same work 4-way (`git worktree add` / the same worker script / `git add`
   + `git commit` / `git worktree remove`). With --no-integrate, bar <= 1.15x; with landing
   (stack + fast-forward of main), against the same loop + 50 cherry-picks + `merge
   --ff-only`, bar <= 1.3x. herd and the loop alternate, each on a fresh copy of the same
   repository; the medians are compared.

Issues are created through the library (fast) in a small repo of a few dozen files;
only the `herd run` itself is timed. Usage: PYTHONPATH=src python bench/bench_run.py
[--tasks-overhead 200] [--keep DIR] [--only shell]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 40

# The worker: sleeps, then edits the one file its context names as scope (herd commits it).
# A shell script, so the measurement is herd and not a Python interpreter starting per task.
WORKER = r"""#!/bin/sh
[ "$1" = 0 ] || sleep "$1"
path=$(sed -n 's/^\*\*Scope\*\*: \([^ ]*\).*/\1/p' "$HERD_CONTEXT_FILE")
echo "$HERD_TASK_ID" >> "$path"
"""


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
        issue = queue.create(
            f"bench task {n}",
            description="edit one file",
            criteria=["the file is edited"],
            scope=[f"src/new{n}.txt"],
        )
        ids.append(issue["id"])
    store.close()
    return repo, ids


def run_herd(
    repo: Path, ids: list[str], worker: Path, delay: float, jobs: int, integrate: bool = False
) -> tuple[float, float]:
    """Wall and CPU seconds (herd, git and the workers) of one `herd run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = str(src)
    argv = [
        sys.executable,
        "-m",
        "herd",
        "run",
        "--ready",
        "--cmd",
        f"{worker} {delay:g}",
        "-j",
        str(jobs),
        *([] if integrate else ["--no-integrate"]),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=out, stderr=err)
        # wait4: herd's own peak RSS and the CPU of herd, git and the workers it reaped.
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"  {len(ids)} tasks: {elapsed:.2f} s wall, {cpu:.2f} s CPU (herd, git and workers; "
        f"{cpu / len(ids) * 1000:.1f} ms/task), herd peak RSS {usage.ru_maxrss / 1024:.0f} MB",
        file=sys.stderr,
    )
    if proc.returncode != 0:
        sys.exit(f"herd run failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    done = stdout.splitlines()[0]
    if f"{len(ids)} succeeded" not in done:
        sys.exit(f"not every task succeeded: {done}")
    return elapsed, cpu


# The baseline: the same worker script per task, with a context file naming its scope, in a
# worktree made and removed by plain git; N of these at once through xargs -P. Adding and
# removing worktrees take a lock, as herd does: concurrent `git worktree add`s read each
# other's half-made admin directories ("failed to read .git/worktrees/t13/commondir").
SHELL_TASK = r"""
set -e
n=$1
wt="$ROOT/wt/t$n"
flock "$ROOT/wt.lock" git worktree add -q -b "t$n" "$wt" main
cd "$wt"
HERD_TASK_ID="t$n" HERD_CONTEXT_FILE="$ROOT/ctx/$n.md" "$WORKER" 0
git add -A
git commit -q -m "task $n"
cd "$REPO"
flock "$ROOT/wt.lock" git worktree remove --force "$wt"
"""

SHELL_LAND = r"""
set -e
git worktree add -q --detach "$ROOT/wt/stack" main
for n in $(seq 0 $(($TASKS - 1))); do git -C "$ROOT/wt/stack" cherry-pick "t$n" >/dev/null; done
git merge -q --ff-only "$(git -C "$ROOT/wt/stack" rev-parse HEAD)"
git worktree remove --force "$ROOT/wt/stack"
"""


def run_shell(repo: Path, tasks: int, worker: Path, jobs: int, land: bool) -> tuple[float, float]:
    """Wall and CPU seconds (shells, git and the workers) of the plain-git loop."""
    root = repo.parent
    (root / "ctx").mkdir(exist_ok=True)
    (root / "wt").mkdir(exist_ok=True)
    for n in range(tasks):
        (root / "ctx" / f"{n}.md").write_text(f"**Scope**: src/new{n}.txt (can modify)\n")
    env = {**os.environ, "ROOT": str(root), "REPO": str(repo), "WORKER": str(worker), "TASKS": str(tasks)}
    script = root / "task.sh"
    script.write_text(SHELL_TASK)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", str(jobs), "-n", "1", "sh", str(script)],
        input="".join(f"{n}\n" for n in range(tasks)),
        text=True,
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    if land:
        subprocess.run(["sh", "-c", SHELL_LAND], cwd=repo, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    count = subprocess.run(
        ["git", "rev-list", "--count", "main"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()
    if int(count) != (tasks + 1 if land else 1):
        sys.exit(f"shell baseline: main has {count} commits")
    return elapsed, cpu


def against_shell(
    root: Path, worker: Path, tasks: int, repeat: int, land: bool
) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds of herd and of the shell loop, alternating on fresh
    repos: (herd wall, shell wall, herd CPU, shell CPU)."""
    herd_times, shell_times, herd_cpu, shell_cpu = [], [], [], []
    for n in range(repeat):
        repo, ids = make_project(root / f"{'land' if land else 'noint'}-herd{n}", tasks)
        wall, cpu = run_herd(repo, ids, worker, 0.0, 4, integrate=land)
        herd_times.append(wall)
        herd_cpu.append(cpu)
        repo, _ = make_project(root / f"{'land' if land else 'noint'}-shell{n}", tasks)
        wall, cpu = run_shell(repo, tasks, worker, 4, land)
        shell_times.append(wall)
        shell_cpu.append(cpu)
    what = "with landing" if land else "--no-integrate"
    print(
        f"{what}: herd "
        + ", ".join(f"{t:.2f}" for t in herd_times)
        + " s; shell "
        + ", ".join(f"{t:.2f}" for t in shell_times)
        + " s; CPU herd "
        + ", ".join(f"{t:.2f}" for t in herd_cpu)
        + " s, shell "
        + ", ".join(f"{t:.2f}" for t in shell_cpu)
        + " s",
        file=sys.stderr,
    )
    return (
        statistics.median(herd_times),
        statistics.median(shell_times),
        statistics.median(herd_cpu),
        statistics.median(shell_cpu),
    )


def compiled(src: Path) -> None:
    """Byte-compile herd first, as an installed herd is: with PYTHONDONTWRITEBYTECODE set
    (these sessions set it) every timed start would otherwise compile every module again,
    about 0.3 s of CPU that no user pays."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks-overhead", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the repos here and keep them")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the best counts (the machine is shared)"
    )
    parser.add_argument("--only", choices=["shell"], help="only the rows against the plain-git shell loop")
    args = parser.parse_args()
    compiled(Path(__file__).resolve().parents[1] / "src")
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
            times.append(run_herd(repo, ids, worker, delay, 4)[0])
        print(f"{name}: " + ", ".join(f"{t:.2f}" for t in times) + " s", file=sys.stderr)
        return min(times)

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", file=sys.stderr)
    rows = []
    if args.only is None:
        makespan = best("makespan", 16, 1.0)
        rows.append(
            ("makespan, 16 x 1 s tasks, -j 4", f"{makespan:.2f} s", "4.00 s (ideal)", makespan / 4.0, 1.3)
        )

        n = args.tasks_overhead
        wall = best("overhead", n, 0.0)
        per_task = wall / n * 1000
        rows.append(
            (
                f"overhead, {n} x 0 s tasks, -j 4",
                f"{per_task:.1f} ms/task",
                "50 ms/task (bar)",
                per_task / 50.0,
                1.0,
            )
        )

    for land, bar in ((False, 1.15), (True, 1.3)):
        herd_s, shell_s, herd_cpu, shell_cpu = against_shell(root, worker, 50, max(args.repeat, 3), land)
        what = "50 tasks, landing (stack + ff)" if land else "50 tasks, --no-integrate"
        loop = "shell loop + picks + ff" if land else "shell loop"
        rows.append((f"{what}, -j 4", f"{herd_s:.2f} s", f"{loop} {shell_s:.2f} s", herd_s / shell_s, bar))
        # CPU is what a loaded machine shares out: the same ratio, less noise.
        rows.append(
            (f"{what}, CPU", f"{herd_cpu:.2f} s", f"{loop} {shell_cpu:.2f} s", herd_cpu / shell_cpu, bar)
        )

    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    header = ("measurement", "herd", "ideal/baseline", "ratio", "bar", "result")
    table = [header] + [
        (m, v, b, f"{r:.2f}x", f"<= {bar:g}x", "PASS" if r <= bar else "FAIL") for m, v, b, r, bar in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r <= bar for *_, r, bar in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
