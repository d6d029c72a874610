"""`herd map` end to end against xargs -P and GNU parallel.

    python bench/bench_map.py [--quick]

Every herd number is the real CLI (`python -m herd map`) as a subprocess, start-up,
store creation and journal included, with the store in a fresh temporary
XDG_STATE_HOME. Peak memory is the herd process's own max RSS, from wait4()'s
rusage of that process (exact, no polling). Each bar is a ratio against a
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


Run = tuple[float, float, float]
"""Wall seconds, peak RSS in MB, CPU seconds."""


def run(
    cmd: list[str], items: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, float, float]:
    """Wall seconds, the process's own peak RSS in MB, and the CPU seconds of it and the
    children it reaped (the jobs)."""
    with tempfile.TemporaryFile() as stdin:
        stdin.write(items.encode())
        stdin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} failed ({proc.returncode}): {err[-500:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def herd(
    jobs: int, argv: list[str], items: str, workdir: str, options: tuple[str, ...] = ()
) -> tuple[float, float, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_STATE_HOME": workdir}
    env.pop("HERD_DB", None)
    return run(
        [sys.executable, "-m", "herd", "map", "--from", "-", "-j", str(jobs), *options, "--", *argv],
        items,
        env=env,
        cwd=workdir,
    )


def compiled(src: Path) -> None:
    """Byte-compile herd first, as an installed herd is: with PYTHONDONTWRITEBYTECODE set
    (these sessions set it) every timed start would otherwise compile every module again,
    about 0.3 s of CPU that no user pays."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def print_runs(what: str, herds: list[Run], name: str, baselines: list[Run]) -> None:
    """Every run's wall and CPU seconds, herd's then the baseline's, on stderr."""

    def times(runs: list[Run], index: int) -> str:
        return " ".join(f"{r[index]:.2f}" for r in runs)

    print(
        f"{what}, wall herd {times(herds, 0)} / {name} {times(baselines, 0)}; "
        f"CPU herd {times(herds, 2)} / {name} {times(baselines, 2)}",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Smaller sizes.")
    parser.add_argument(
        "--repeat", type=int, default=5, help="alternating herd/xargs runs of the 1,000-job row (medians)"
    )
    parser.add_argument(
        "--only-xargs", action="store_true", help="only the rows against xargs (issue 16's bar)"
    )
    args = parser.parse_args()
    compiled(Path(__file__).resolve().parents[1] / "src")
    small, sleeps, big = (200, 20, 10_000) if args.quick else (1000, 40, 100_000)
    rows: list[tuple[str, str, str, str, str, bool]] = []
    parallel = shutil.which("parallel")
    with tempfile.TemporaryDirectory() as workdir:
        lines = "".join(f"{n}\n" for n in range(small))
        # Alternating runs, medians compared: on a shared machine one run of each is noise.
        herds, xargses = [], []
        for _ in range(args.repeat):
            herds.append(herd(4, ["true"], lines, workdir))
            xargses.append(run(["xargs", "-P", "4", "-n", "1", "true"], lines))
        t_herd = statistics.median(h[0] for h in herds)
        t_xargs = statistics.median(x[0] for x in xargses)
        c_herd = statistics.median(h[2] for h in herds)
        c_xargs = statistics.median(x[2] for x in xargses)
        print_runs(f"{small:,} x true -j4", herds, "xargs", xargses)
        ratio = t_herd / t_xargs
        rows.append(
            (
                f"{small:,} x true -j4",
                f"{t_herd:.2f} s",
                f"xargs {t_xargs:.2f} s",
                f"{ratio:.2f}x",
                "<= 1.2x",
                ratio <= 1.2,
            )
        )
        ratio = c_herd / c_xargs
        rows.append(
            (
                f"{small:,} x true -j4, CPU",
                f"{c_herd:.2f} s",
                f"xargs {c_xargs:.2f} s",
                f"{ratio:.2f}x",
                "<= 1.2x",
                ratio <= 1.2,
            )
        )
        if parallel and not args.only_xargs:
            t_par, _, _ = run([parallel, "-j", "4", "true"], lines)
            ratio = t_herd / t_par
            rows.append(
                (
                    f"{small:,} x true -j4",
                    f"{t_herd:.2f} s",
                    f"parallel {t_par:.2f} s",
                    f"{ratio:.2f}x",
                    "<= 0.5x",
                    ratio <= 0.5,
                )
            )
        if parallel and not args.only_xargs:
            # The same items 20 to a command line: issue 16 keeps herd <= 0.6x parallel -N20.
            batched, pars = [], []
            for _ in range(args.repeat):
                batched.append(herd(4, ["true"], lines, workdir, ("--batch-size", "20")))
                pars.append(run([parallel, "-j", "4", "-N20", "true"], lines))
            print_runs(f"{small:,} x true --batch-size 20 -j4", batched, "parallel -N20", pars)
            t_batched = statistics.median(h[0] for h in batched)
            t_par_n = statistics.median(p[0] for p in pars)
            ratio = t_batched / t_par_n
            rows.append(
                (
                    f"{small:,} x true --batch-size 20 -j4",
                    f"{t_batched:.2f} s",
                    f"parallel -N20 {t_par_n:.2f} s",
                    f"{ratio:.2f}x",
                    "<= 0.6x",
                    ratio <= 0.6,
                )
            )
        if not args.only_xargs:
            per_job_small = t_herd / small

            ideal = sleeps * 0.2 / 4
            bar = ideal + 0.3
            t_sleep, _, _ = herd(4, ["sleep", "0.2"], "0\n" * sleeps, workdir)  # `sleep 0.2 0`
            rows.append(
                (
                    f"{sleeps} x sleep 0.2 -j4",
                    f"{t_sleep:.2f} s",
                    f"ideal {ideal:.2f} s",
                    f"{t_sleep / ideal:.2f}x",
                    f"<= {bar:.1f} s",
                    t_sleep <= bar,
                )
            )

            # -j4 as the contract (#13): 100,000 items stay <= 40 MB peak RSS.
            t_big, rss, _ = herd(4, ["true"], "".join(f"{n}\n" for n in range(big)), workdir)
            rows.append((f"{big:,} x true -j4", f"{rss:.1f} MB", "peak RSS", "", "<= 40 MB", rss <= 40))
            per_job_big = t_big / big
            ratio = per_job_big / per_job_small
            rows.append(
                (
                    f"{big:,} x true -j4",
                    f"{per_job_big * 1000:.3f} ms/job",
                    f"{small:,} -j4: {per_job_small * 1000:.3f}",
                    f"{ratio:.2f}x",
                    "<= 1.0x",
                    ratio <= 1.0,
                )
            )

    head = ("measurement", "herd", "baseline", "ratio", "bar", "result")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(head, [*widths, 6], strict=False)))
    for r in rows:
        cells = [str(c).ljust(w) for c, w in zip(r[:5], widths, strict=True)]
        print("  ".join([*cells, "PASS" if r[5] else "FAIL"]))
    print(f"({os.cpu_count()} CPUs, load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
