"""`herd map` through the real CLI in a subprocess: real jobs, a real SQLite store in tmp_path,
real signals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from _cli import run_herd

SRC = Path(__file__).resolve().parents[2] / "src"
PY = sys.executable


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HERD_DB"}
    env.update(PYTHONPATH=str(SRC), XDG_STATE_HOME=str(tmp_path / "state"), **extra)
    return env


def herd(
    tmp_path: Path, *args: str, stdin: str | None = None, check_code: int | None = 0, **extra: str
) -> subprocess.CompletedProcess[str]:
    done = run_herd(args, cwd=tmp_path, env=env_for(tmp_path, **extra), input=stdin, timeout=120)
    if check_code is not None:
        assert done.returncode == check_code, done.stderr
    return done


def db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "state" / "herd" / "herd.db")


def latest_run(tmp_path: Path) -> dict[str, Any]:
    with db(tmp_path) as conn:
        row = conn.execute(
            "SELECT id, kind, state, exit_code, args, summary FROM runs ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    return {
        "id": row[0],
        "kind": row[1],
        "state": row[2],
        "exit_code": row[3],
        "args": json.loads(row[4]),
        "summary": json.loads(row[5]) if row[5] else None,
    }


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_batches_of_ten_each_item_its_own_argument(tmp_path: Path) -> None:
    argv_dump = script(tmp_path, "dump.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    items = "\n".join(f"item {n}" for n in range(95)) + "\n"
    done = herd(
        tmp_path,
        "map",
        "--from",
        "-",
        "--batch-size",
        "10",
        "-j",
        "3",
        "--joblog",
        "log.tsv",
        "--",
        PY,
        str(argv_dump),
        stdin=items,
    )
    calls = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(len(c) for c in calls) == [5] + [10] * 9
    assert sorted(i for c in calls for i in c) == sorted(f"item {n}" for n in range(95))
    lines = (tmp_path / "log.tsv").read_text().splitlines()
    assert lines[0] == "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 10 and all(len(r) == 9 for r in rows)
    assert sorted(int(r[0]) for r in rows) == list(range(1, 11))
    for r in rows:
        assert r[1] == ":" and r[4] == "0" and r[6] == "0" and r[7] == "0"
        assert len(r[2].split(".")[1]) == 3 and len(r[3].strip().split(".")[1]) == 3
        assert r[8].startswith(f"{PY} {argv_dump} item ")


@pytest.mark.skipif(
    shutil.which("parallel") is None,
    reason="GNU parallel not installed (apt-get install parallel; .ci/run installs it)",
)
def test_joblog_matches_gnu_parallel_layout(tmp_path: Path) -> None:
    subprocess.run(
        ["parallel", "--joblog", str(tmp_path / "gnu.tsv"), "-j2", "echo", ":::", "a", "b"],
        check=True,
        capture_output=True,
    )
    herd(tmp_path, "map", "a", "b", "-j", "2", "--joblog", "herd.tsv", "--", "echo")

    def shape(path: Path) -> list[tuple[Any, ...]]:
        out = []
        for line in sorted(path.read_text().splitlines()[1:]):
            f = line.split("\t")
            out.append((f[0], f[1], len(f[2]), len(f[3]), f[4], f[5], f[6], f[7], f[8]))
        return out

    gnu, ours = tmp_path / "gnu.tsv", tmp_path / "herd.tsv"
    assert gnu.read_text().splitlines()[0] == ours.read_text().splitlines()[0]
    assert shape(gnu) == shape(ours)


def test_placeholder_substitution_and_appending(tmp_path: Path) -> None:
    done = herd(tmp_path, "map", "x", "y", "-j", "1", "--keep-order", "--", "echo", "<{}>", "{}", "end")
    assert done.stdout.splitlines() == ["<x> x end", "<y> y end"]
    done = herd(tmp_path, "map", "x", "y", "-j", "1", "--keep-order", "--", "echo", "pre")
    assert done.stdout.splitlines() == ["pre x", "pre y"]


def test_items_are_passed_literally_never_through_a_shell(tmp_path: Path) -> None:
    dump = script(tmp_path, "dump.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    tricky = ["a b", "it's", '"quoted"', "$(touch pwned)", "`touch pwned2`", "; rm -rf x", "*"]
    done = herd(tmp_path, "map", *tricky, "-j", "2", "--keep-order", "--", PY, str(dump), "{}")
    assert [json.loads(line)[0] for line in done.stdout.splitlines()] == tricky
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_items_from_file_stdin_and_glob(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text("one\n\ntwo\n")
    (tmp_path / "d").mkdir()
    for name in ("p.txt", "q.txt", "r.md"):
        (tmp_path / "d" / name).write_text("")
    done = herd(
        tmp_path,
        "map",
        "zero",
        "--from",
        "list.txt",
        "--glob",
        "d/*.txt",
        "-j",
        "2",
        "--keep-order",
        "--",
        "echo",
    )
    assert done.stdout.splitlines() == ["zero", "one", "two", "d/p.txt", "d/q.txt"]
    done = herd(tmp_path, "map", "--from", "-", "--keep-order", "--", "echo", stdin="s1\ns2\n")
    assert done.stdout.splitlines() == ["s1", "s2"]


def test_failing_then_fixed_map_resumes_only_failed_items(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("3\n7\n")
    worker = script(
        tmp_path,
        "work.sh",
        'echo "$1" >> ran.txt\nif grep -qx "$1" bad.txt; then echo "bad $1" >&2; exit 3; fi\n',
    )
    done = herd(tmp_path, "map", *map(str, range(1, 11)), "-j", "3", "--", "sh", str(worker), check_code=1)
    run = latest_run(tmp_path)
    assert run["kind"] == "map" and run["state"] == "partial" and run["exit_code"] == 1
    assert f"herd map --resume {run['id']}" in done.stderr
    ran = (tmp_path / "ran.txt").read_text().split()
    # No retry by default, as GNU parallel: a retry would repeat the job's side effects.
    assert sorted(ran, key=int) == list(map(str, range(1, 11)))
    assert "(retries: 0)" in done.stderr
    assert "3\tbad 3" in (tmp_path / "state" / "herd" / "runs" / run["id"] / "stderr.log").read_text()
    bad.write_text("")
    (tmp_path / "ran.txt").write_text("")
    herd(tmp_path, "map", "--resume", run["id"])
    assert sorted((tmp_path / "ran.txt").read_text().split()) == ["3", "7"]
    again = latest_run(tmp_path)
    assert again["id"] == run["id"] and again["state"] == "done" and again["exit_code"] == 0
    with db(tmp_path) as conn:
        states = dict(
            conn.execute("SELECT task_id, state FROM run_tasks WHERE run_id = ?", (run["id"],)).fetchall()
        )
        attempts = dict(
            conn.execute(
                "SELECT task_id, count(*) FROM attempts WHERE run_id = ? GROUP BY task_id", (run["id"],)
            ).fetchall()
        )
    assert set(states.values()) == {"succeeded"}
    assert attempts["3"] == 2 and attempts["1"] == 1
    listed = herd(tmp_path, "runs", "--json", "--db", str(tmp_path / "state" / "herd" / "herd.db"))
    assert run["id"] in [r["id"] for r in json.loads(listed.stdout)]


def test_retry_once_then_success_has_two_attempts(tmp_path: Path) -> None:
    flaky = script(tmp_path, "flaky.sh", 'if [ ! -e "seen-$1" ]; then touch "seen-$1"; exit 1; fi\n')
    herd(tmp_path, "map", "a", "--retries", "1", "--", "sh", str(flaky))
    run = latest_run(tmp_path)
    with db(tmp_path) as conn:
        rows = conn.execute(
            "SELECT attempt, exit_code, outcome FROM attempts WHERE run_id = ? ORDER BY attempt", (run["id"],)
        ).fetchall()
        state = conn.execute(
            "SELECT state, attempts FROM run_tasks WHERE run_id = ?", (run["id"],)
        ).fetchone()
    assert rows == [(1, 1, "failed"), (2, 0, "ok")]
    assert state == ("succeeded", 2) and run["exit_code"] == 0


def test_exit_codes_zero_and_one(tmp_path: Path) -> None:
    herd(tmp_path, "map", "0", "0", "--", "sh", "-c", "exit $0", check_code=0)
    herd(tmp_path, "map", "0", "5", "--retries", "0", "--", "sh", "-c", "exit $0", check_code=1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cancels_children_and_saves_state(tmp_path: Path, sig: signal.Signals) -> None:
    marker = f"herd-marker-{os.getpid()}-{sig}"
    proc = subprocess.Popen(
        [PY, "-m", "herd", "map", *map(str, range(20)), "-j", "3", "--", "sh", "-c", "sleep 30", marker],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 20

    def jobs() -> list[int]:
        return [pid for pid in _marked(marker) if pid != proc.pid]

    while time.time() < deadline and len(jobs()) < 3:
        time.sleep(0.1)
    assert len(jobs()) == 3
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    run = latest_run(tmp_path)
    assert f"herd map --resume {run['id']}" in err
    assert run["state"] == "interrupted"
    time.sleep(0.2)
    assert _marked(marker) == []
    with db(tmp_path) as conn:
        states = {s for (s,) in conn.execute("SELECT state FROM run_tasks WHERE run_id = ?", (run["id"],))}
    assert states == {"queued"}


def _marked(marker: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if marker in (p.info["cmdline"] or []):
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def test_keep_order_output_follows_input(tmp_path: Path) -> None:
    items = [str(n) for n in range(12)]
    # Later items finish first: without ordering the output would be reversed-ish.
    done = herd(
        tmp_path,
        "map",
        *items,
        "-j",
        "6",
        "--keep-order",
        "--",
        "sh",
        "-c",
        'sleep "0.$((11 - $0))"; echo "$0"',
    )
    assert done.stdout.split() == items


def test_stdout_of_concurrent_jobs_is_never_interleaved(tmp_path: Path) -> None:
    chatty = script(
        tmp_path,
        "chatty.py",
        "import sys, time\nfor i in range(400):\n"
        "    print(f'{sys.argv[1]} line {i}', flush=True)\n"
        "    if i % 50 == 0: time.sleep(0.01)\n",
    )
    done = herd(tmp_path, "map", *[f"job{n}" for n in range(8)], "-j", "4", "--", PY, str(chatty))
    lines = done.stdout.splitlines()
    assert len(lines) == 8 * 400
    for block in range(8):
        chunk = lines[block * 400 : (block + 1) * 400]
        owner = chunk[0].split()[0]
        assert chunk == [f"{owner} line {i}" for i in range(400)]


def test_dry_run_prints_batches_and_workers(tmp_path: Path) -> None:
    done = herd(
        tmp_path,
        "--json",
        "map",
        *map(str, range(95)),
        "--batch-size",
        "10",
        "-j",
        "4",
        "--dry-run",
        "--",
        "echo",
    )
    plan = json.loads(done.stdout)
    assert plan["invocations"] == 10 and plan["workers"] == "4"
    assert plan["batches"][-1] == ["echo", *map(str, range(90, 95))]
    auto = json.loads(
        herd(
            tmp_path,
            "map",
            "--json",
            *map(str, range(2000)),
            "--batch-size",
            "auto",
            "-j",
            "4",
            "--dry-run",
            "--",
            "echo",
        ).stdout
    )
    assert 10 <= auto["batch_size"] <= 20
    few = json.loads(
        herd(
            tmp_path, "map", "--json", "a", "b", "c", "--batch-size", "auto", "--dry-run", "--", "echo"
        ).stdout
    )
    assert few["batch_size"] == 1
    text = herd(tmp_path, "map", "a", "b", "-j", "auto", "--dry-run", "--", "echo").stdout
    assert "workers: auto" in text
    assert not (tmp_path / "state").exists()  # a dry run writes nothing


def _auto_choice(tmp_path: Path, items: int, *cmd: str) -> dict[str, Any]:
    done = herd(tmp_path, "map", "--json", *(["0"] * items), "-j", "auto", "--", *cmd)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events[-2:]] == ["map_end", "run_end"]
    scaling = events[-2]["scaling"]
    assert scaling, "no scaling decision recorded"
    assert latest_run(tmp_path)["summary"]["scaling"] == scaling
    final: dict[str, Any] = scaling[-1]
    return final


def test_auto_workers_stop_at_cores_for_cpu_bound_jobs(tmp_path: Path) -> None:
    final = _auto_choice(tmp_path, 16, PY, "-c", "x = 0\nfor i in range(3_000_000): x += i")
    assert final["workers"] <= (os.cpu_count() or 1)
    assert "CPU-bound" in final["jobs"]
    assert final["reason"]


def test_auto_workers_grow_for_waiting_jobs(tmp_path: Path) -> None:
    final = _auto_choice(tmp_path, 80, "sleep", "0.2")
    assert 2 < final["workers"] <= 8
    assert "waiting" in final["jobs"] and final["reason"]


def test_json_streams_events_and_a_failure_shows_its_stderr(tmp_path: Path) -> None:
    job = script(
        tmp_path,
        "job.py",
        "import sys\nif sys.argv[1] == 'b':\n"
        "    print('first', file=sys.stderr)\n    print('line 12 is bad', "
        "file=sys.stderr)\n    sys.exit(7)\nprint(sys.argv[1])\n",
    )
    done = herd(tmp_path, "map", "--json", "a", "b", "c", "--retries", "0", "--", PY, str(job), check_code=1)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "map_start" and events[-1]["event"] == "run_end"
    end = events[-2]
    assert end["event"] == "map_end" and end["counts"] == {"succeeded": 2, "failed": 1}
    failed = next(e for e in events if e["event"] == "item_failed")
    assert "line 12 is bad" in failed["tail"] and failed["log"] == end["stderr_log"]
    plain = herd(tmp_path, "map", "a", "b", "--retries", "0", "--", PY, str(job), check_code=1)
    assert (
        "herd: failed #2 b after 1 attempt: exited with code 7\nherd:   | first\n"
        "herd:   | line 12 is bad" in plain.stderr
    )
    run_id = latest_run(tmp_path)["id"]
    assert f"their stderr is in state/herd/runs/{run_id}/stderr.log;" in plain.stderr


def test_status_during_a_map_shows_its_running_jobs(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PY, "-m", "herd", "map", "1", "2", "3", "-j", "2", "--", "sleep"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shown = herd(tmp_path, "status", check_code=None).stdout
            if "#1" in shown:
                break
            time.sleep(0.2)
        assert re.search(r"#1\s+1\s+attempt 1", shown), shown
    finally:
        proc.wait(timeout=60)
