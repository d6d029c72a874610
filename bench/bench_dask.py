"""Dask executor overhead against the local executor: many tiny jobs at the same concurrency.

    python bench/bench_dask.py [--jobs 1000] [--slots 4] [--job-ms 10]

Runs `--jobs` jobs of `sleep 0.01` through the local executor with `--slots` slots,
then through a DaskExecutor joined to a `dask scheduler` with 2 `dask worker`
processes (`--slots`/2 threads each), all on 127.0.0.1. The loop is timed from the
first submit to the last result (cluster start-up and connection are not in it,
they are reported apart). Two coordinator loops:

- refill: keep at most `slots` jobs outstanding and submit one per completion, as the
  hypervisor does;
- all-at-once: submit every job, then collect (a `herd map` that hands Dask the batch).

Per-job overhead = (wall - ideal) / jobs, ideal = jobs * job time / slots. The bar:
Dask's overhead per job within 5 ms of the local executor's. CPU per job counts this
process and the jobs it reaped, plus (Dask rows) the scheduler's and workers' processes
and the jobs they reaped: on a shared machine it moves less than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from herd.engine.executor import Executor, JobSpec, LocalExecutor  # noqa: E402

LOOPBACK = "127.0.0.1"


def refill(ex: Executor, jobs: list[JobSpec], slots: int) -> int:
    ok = submitted = 0
    while submitted < len(jobs) or ex.outstanding:
        while submitted < len(jobs) and ex.outstanding < slots:
            ex.submit(jobs[submitted])
            submitted += 1
        ok += sum(r.ok for r in ex.wait())
    return ok


def all_at_once(ex: Executor, jobs: list[JobSpec], slots: int) -> int:
    for job in jobs:
        ex.submit(job)
    return sum(r.ok for r in ex.results())


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User+system CPU of this process, of the processes under `procs` (the scheduler, the
    worker nannies and their workers) and of the children each of them reaped."""
    import psutil  # distributed's own dependency

    own = os.times()
    total = own.user + own.system + own.children_user + own.children_system
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in tree:
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def timed(
    make: Callable[[], Executor],
    loop: Callable[[Executor, list[JobSpec], int], int],
    jobs: list[JobSpec],
    slots: int,
    cluster: list[subprocess.Popen[bytes]],
) -> tuple[float, float, float]:
    """(seconds to start the executor, seconds for the loop, CPU seconds for the loop)."""
    t0 = time.perf_counter()
    with make() as ex:  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        cpu0 = cpu_seconds(cluster)
        ok = loop(ex, jobs, slots)
        t2 = time.perf_counter()
        cpu = cpu_seconds(cluster) - cpu0
    assert ok == len(jobs), f"{len(jobs) - ok} jobs failed"
    return t1 - t0, t2 - t1, cpu


def start_cluster(tmp: Path, threads: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    scheduler_file = tmp / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "scheduler",
                "--host",
                LOOPBACK,
                "--port",
                "0",
                "--no-dashboard",
                "--dashboard-address",
                f"{LOOPBACK}:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    ]
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        time.sleep(0.05)
    address = json.loads(scheduler_file.read_text())["address"]
    for n in range(2):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dask",
                    "worker",
                    address,
                    "--host",
                    LOOPBACK,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    str(threads),
                    "--no-dashboard",
                    "--dashboard-address",
                    f"{LOOPBACK}:0",
                    "--local-directory",
                    str(tmp / f"w{n}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        )
    from distributed import Client

    with Client(address, set_as_default=False, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address, procs


def herd_map(tmp: Path, count: int, slots: int, job_s: float, extra: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(SRC), "HERD_DB": str(tmp / "map.db")}
    items = "\n".join(f"{job_s:g}" for _ in range(count)) + "\n"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "herd", "map", "--from", "-", "-j", str(slots), *extra, "--", "sleep"],
        input=items.encode(),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
    )
    return time.perf_counter() - started


def compiled(src: Path) -> None:
    """Byte-compile herd first, as an installed herd is: with PYTHONDONTWRITEBYTECODE set
    (these sessions set it) every worker's first task and every `herd map` would otherwise
    compile herd's modules again, CPU that no user pays."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--job-ms", type=float, default=10.0)
    args = parser.parse_args()
    compiled(SRC)
    from herd.engine.executor.dask import DaskExecutor

    count, slots, job_s = args.jobs, args.slots, args.job_ms / 1000
    jobs = [JobSpec(str(n), ("sleep", f"{job_s:g}")) for n in range(count)]
    ideal = count * job_s / slots
    print(
        f"{count} jobs of `sleep {job_s:g}`, {slots} slots, ideal {ideal:.2f}s; "
        f"Dask: 2 workers x {slots // 2} threads on {LOOPBACK}; cores here: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory(prefix="herd-bench-dask-") as tmp:
        started = time.perf_counter()
        address, procs = start_cluster(Path(tmp), max(1, slots // 2))
        print(f"cluster up (scheduler + 2 workers) in {time.perf_counter() - started:.2f}s")
        try:
            rows = []
            for loop in (refill, all_at_once):
                for name, make in (
                    ("local", lambda: LocalExecutor(slots)),
                    ("dask", lambda: DaskExecutor(slots, scheduler=address)),
                ):
                    setup, wall, cpu = timed(make, loop, jobs, slots, procs if name == "dask" else [])
                    overhead = (wall - ideal) / count * 1000
                    rows.append((loop.__name__, name, setup, wall, overhead))
                    print(
                        f"{loop.__name__:<12} {name:<6} connect {setup:5.2f}s  wall "
                        f"{wall:6.2f}s  overhead/job {overhead:6.2f} ms  "
                        f"cpu/job {cpu / count * 1000:5.2f} ms",
                        flush=True,
                    )
            # The same items through the real `herd map` CLI, start-up included.
            for name, extra in (("local", []), ("dask", ["--executor", "dask", "--scheduler", address])):
                cpu0 = cpu_seconds(procs if extra else [])
                wall = herd_map(Path(tmp), count, slots, job_s, extra)
                cpu = cpu_seconds(procs if extra else []) - cpu0
                overhead = (wall - ideal) / count * 1000
                rows.append(("herd_map", name, 0.0, wall, overhead))
                print(
                    f"{'herd_map':<12} {name:<6} (CLI)        wall {wall:6.2f}s  overhead/job "
                    f"{overhead:6.2f} ms  cpu/job {cpu / count * 1000:5.2f} ms",
                    flush=True,
                )
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait()
    for loop_name in ("refill", "all_at_once", "herd_map"):
        local = next(r for r in rows if r[0] == loop_name and r[1] == "local")
        dask = next(r for r in rows if r[0] == loop_name and r[1] == "dask")
        diff = dask[4] - local[4]
        verdict = "within" if diff <= 5.0 else "OVER"
        print(f"{loop_name:<12} dask - local = {diff:+.2f} ms/job ({verdict} the 5 ms bar)")


if __name__ == "__main__":
    main()
