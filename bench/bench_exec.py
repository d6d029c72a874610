"""Local executor throughput against xargs -P and GNU parallel.

    python bench/bench_exec.py [--quick] [--mode capture|tail|log]

Every row is the wall time of a whole command, interpreter start-up included:
the herd side runs as `python -c DRIVER`, a minimal coordinator loop that
submits up to `slots` jobs and refills as completions arrive. The driver
reports its own peak RSS (getrusage(RUSAGE_SELF) from inside it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src"

DRIVER = """
import json, resource, sys, time
from pathlib import Path
from typing import Any
from herd.engine.executor import JobSpec, LocalExecutor

count, slots, mode, logdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
item, argv = sys.argv[5], tuple(sys.argv[6:])
capture = mode == "capture"
t0 = time.perf_counter()
ok = done = 0
tenth = max(1, count // 10)
marks = [t0]  # time at each tenth of the jobs done: is the pool slower late than early?
with LocalExecutor(slots) as ex:
    submitted = 0
    while submitted < count or ex.outstanding:
        while submitted < count and ex.outstanding < slots:
            log = Path(logdir, f"{submitted % (4 * slots)}.log") if mode == "log" else None
            job = JobSpec(str(submitted), (*argv, item), log_path=log, capture_stdout=capture)
            ex.submit(job)
            submitted += 1
        for result in ex.wait():
            ok += result.ok
            done += 1
            if done % tenth == 0:
                marks.append(time.perf_counter())
elapsed = time.perf_counter() - t0
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
deciles = [(b - a) / tenth * 1000 for a, b in zip(marks, marks[1:])]
print(json.dumps({"ok": ok, "loop_s": elapsed, "rss_mb": rss_kib / 1024, "deciles": deciles}))
"""


def timed(cmd: list[str], stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=True)
    return time.perf_counter() - start, proc.stdout.decode()


def xargs(count: int, slots: int, argv: list[str], item: str) -> float:
    items = (item + "\n").encode() * count
    # The brief's baseline: `xargs -P N -n 1 CMD`, so each job also gets one item argument.
    return timed(["xargs", "-P", str(slots), "-n", "1", *argv], stdin=items)[0]


def gnu_parallel(count: int, slots: int, argv: list[str], item: str) -> float | None:
    if shutil.which("parallel") is None:
        return None
    items = (item + "\n").encode() * count
    return timed(["parallel", "--will-cite", "-j", str(slots), *argv], stdin=items)[0]


def herd(count: int, slots: int, argv: list[str], item: str, mode: str) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory() as logdir:
        cmd = [sys.executable, "-c", DRIVER, str(count), str(slots), mode, logdir, item, *argv]
        wall, out = timed(cmd, env=env)
    stats = json.loads(out)
    if stats["ok"] != count:
        raise SystemExit(f"herd driver: only {stats['ok']} of {count} jobs succeeded")
    return wall, stats


def compiled(src: Path) -> None:
    """Byte-compile herd first, as an installed herd is: with PYTHONDONTWRITEBYTECODE set
    (these sessions set it) every timed start would otherwise compile every module again,
    about 0.3 s of CPU that no user pays."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each small case (best kept)")
    parser.add_argument(
        "--mode",
        choices=["capture", "tail", "log"],
        default="capture",
        help="herd output handling: capture stdout (herd map), keep a tail, or a log file",
    )
    args = parser.parse_args()
    compiled(Path(__file__).resolve().parents[1] / "src")

    scenarios = [
        ("true", 200 if args.quick else 1_000, 4, ["true"], "x"),
        ("sleep 0.2", 40, 4, ["sleep"], "0.2"),
        # Same slots as the big run, so its ms/job has a like-for-like reference.
        ("true", 200 if args.quick else 1_000, 8, ["true"], "x"),
        ("true", 5_000 if args.quick else 100_000, 8, ["true"], "x"),
    ]
    python_start, _ = timed(
        [sys.executable, "-c", "import herd.engine.executor"], env={**os.environ, "PYTHONPATH": str(SRC)}
    )
    print(
        f"herd output mode: {args.mode}; python + import herd.engine.executor: {python_start * 1000:.0f} ms"
    )
    print(
        f"{'jobs':>16} {'slots':>5} | {'xargs':>8} {'parallel':>14} {'herd':>8} | "
        f"{'herd/xargs':>10} {'herd/par':>8} {'ms/job':>7} {'herd RSS':>9}"
    )
    last_deciles: list[float] = []
    for label, count, slots, argv, item in scenarios:
        # Small runs are repeated and the best wall time kept: a shared machine adds noise.
        runs = 1 if count > 10_000 else args.repeat
        base = min(xargs(count, slots, argv, item) for _ in range(runs))
        # GNU parallel needs ~3 ms a job; 100,000 of them would dominate the run.
        pars = [gnu_parallel(count, slots, argv, item) for _ in range(runs if count <= 10_000 else 0)]
        par = min((p for p in pars if p is not None), default=None)
        wall, stats = min(
            (herd(count, slots, argv, item, args.mode) for _ in range(runs)), key=lambda run: run[0]
        )
        per_job = stats["loop_s"] / count * 1000
        if shutil.which("parallel") is None:
            par_text, par_ratio = "not installed", "-"
        elif par is None:
            par_text, par_ratio = "skipped", "-"
        else:
            par_text, par_ratio = f"{par:.2f} s", f"{wall / par:.2f}x"
        print(
            f"{count:>7,} x {label:<8} {slots:>5} | {base:>6.2f} s {par_text:>14} {wall:>6.2f} s | "
            f"{wall / base:>9.2f}x {par_ratio:>8} {per_job:>7.3f} {stats['rss_mb']:>6.1f} MB"
        )
        last_deciles = stats["deciles"]
    print("herd ms/job per tenth of the last run: " + " ".join(f"{d:.3f}" for d in last_deciles))
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
