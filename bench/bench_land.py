"""Landing 50 one-commit task branches with a no-op test: herd's stack-and-push against a
plain shell loop of `git cherry-pick` + one `git push` on the same kind of repository.

herd's side is read from its own event log: from the `stacking` phase to the push done
(the workers' time is not landing). The baseline makes 50 equivalent one-file commits on
branches with plain git, then times the shell loop and the push.

    python bench/bench_land.py [--tasks 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
AGENT = """import os, subprocess
name = os.environ["HERD_TASK_ID"]
open(f"src/{name}.txt", "w").write(name + "\\n")
subprocess.run(["git", "add", "-A"], check=True)
subprocess.run(["git", "commit", "-qm", name], check=True)
"""


def sh(cwd: Path, *argv: str) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def make(root: Path) -> tuple[Path, Path]:
    remote, repo = root / "remote.git", root / "repo"
    sh(root, "git", "init", "-q", "--bare", "-b", "main", str(remote))
    sh(root, "git", "init", "-q", "-b", "main", str(repo))
    sh(repo, "git", "config", "user.email", "b@example.invalid")
    sh(repo, "git", "config", "user.name", "bench")
    (repo / "src").mkdir()
    for n in range(200):
        (repo / "src" / f"f{n}.py").write_text(f"x = {n}\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "base")
    sh(repo, "git", "remote", "add", "origin", str(remote))
    sh(repo, "git", "push", "-q", "origin", "main")
    return repo, remote


def herd_landing(tasks: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, _ = make(root)
        agent = root / "agent.py"
        agent.write_text(AGENT)
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        herd = [sys.executable, "-m", "herd"]
        subprocess.run([*herd, "init", "--prefix", "b"], cwd=repo, env=env, check=True, capture_output=True)
        ids = []
        for n in range(tasks):
            out = subprocess.run(
                [*herd, "create", f"task {n}", "--criteria", "ok"],
                cwd=repo,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            ids.append(out)
        subprocess.run(
            [
                *herd,
                "run",
                *ids,
                "--cmd",
                f"{sys.executable} {agent}",
                "-j",
                "2",
                "--test-cmd",
                "true",
                "--push",
            ],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
        )
        runs = json.loads(
            subprocess.run(
                [*herd, "runs", "--json"], cwd=repo, env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        events = [
            json.loads(line)
            for line in (repo / ".herd" / "runs" / runs[0]["id"] / "events.jsonl").read_text().splitlines()
        ]
        start = next(e["ts"] for e in events if e.get("phase") == "stacking")
        pushed = next(
            e["ts"]
            for e in events
            if e["event"] == "message" and str(e.get("text", "")).startswith("pushed ")
        )
        landed = sh(root / "remote.git", "git", "rev-list", "--count", "main")
        assert int(landed) == tasks + 1, landed
        return float(pushed - start)


def shell_landing(tasks: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, _ = make(root)
        for n in range(tasks):
            sh(repo, "git", "checkout", "-q", "-b", f"t{n}", "main")
            (repo / "src" / f"t{n}.txt").write_text(f"{n}\n")
            sh(repo, "git", "add", "-A")
            sh(repo, "git", "commit", "-qm", f"t{n}")
        sh(repo, "git", "checkout", "-q", "main")
        script = (
            f"for n in $(seq 0 {tasks - 1}); do git cherry-pick t$n >/dev/null || "
            "exit 1; done; true; git push -q origin main"
        )
        started = time.perf_counter()
        subprocess.run(["bash", "-c", script], cwd=repo, check=True, capture_output=True)
        return time.perf_counter() - started


def compiled(src: Path) -> None:
    """Byte-compile herd first, as an installed herd is: with PYTHONDONTWRITEBYTECODE set
    (these sessions set it) every timed start would otherwise compile every module again,
    about 0.3 s of CPU that no user pays."""
    import compileall

    compileall.compile_dir(str(src), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compiled(Path(__file__).resolve().parents[1] / "src")
    herd = [herd_landing(args.tasks) for _ in range(args.repeat)]
    shell = [shell_landing(args.tasks) for _ in range(args.repeat)]
    h, s = statistics.median(herd), statistics.median(shell)
    ratio = h / s
    print(f"landing {args.tasks} one-commit tasks, no-op test (median of {args.repeat})")
    print(f"  herd stack+test+push : {h:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in herd)})")
    print(f"  shell cherry-pick loop + push: {s:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in shell)})")
    print(f"  ratio herd/shell: {ratio:.2f}x   bar <= 2x   {'PASS' if ratio <= 2 else 'FAIL'}")


if __name__ == "__main__":
    main()
