"""`herd map` and `herd pipeline` under bad input and faults: a clear error and no run left
"running"; one owner per map. Real CLI processes, real SQLite, real signals."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from _queue_helpers import assert_clean_error
from test_map import PY, db, env_for, herd


def _runs(tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "state" / "herd" / "herd.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            return list(conn.execute("SELECT id, state FROM runs ORDER BY created_at"))
        except sqlite3.OperationalError:  # the store is being created
            return []


def test_map_from_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "items.txt").write_bytes(b"one\ntwo\ncaf\xe9\n")
    done = herd(tmp_path, "map", "--from", "items.txt", "--", "echo", check_code=None)
    assert_clean_error(done, 2, "--from items.txt: line 3 is not UTF-8", "iconv")
    assert _runs(tmp_path) == []


def test_map_from_stdin_that_is_not_utf8(tmp_path: Path) -> None:
    done = subprocess.run(
        [PY, "-m", "herd", "map", "--from", "-", "--", "echo"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        input=b"caf\xe9\n",
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())
    assert_clean_error(proc, 2, "--from - (standard input): line 1 is not UTF-8")
    assert _runs(tmp_path) == []


def test_pipeline_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_bytes(b'items = ["caf\xe9"]\n[[stage]]\ncmd = "echo"\n')
    done = herd(tmp_path, "pipeline", "p.toml", check_code=None)
    assert_clean_error(done, 2, "p.toml: line 1 is not UTF-8")
    assert _runs(tmp_path) == []


def test_joblog_in_a_missing_directory(tmp_path: Path) -> None:
    done = herd(tmp_path, "map", "a", "b", "--joblog", "missing/dir/log.tsv", "--", "echo", check_code=None)
    assert_clean_error(done, 2, "--joblog missing/dir/log.tsv", "does not exist")
    assert _runs(tmp_path) == []


def test_a_map_that_cannot_start_ends_failed_with_its_reason(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = herd(
        tmp_path,
        "map",
        "a",
        "b",
        "--executor",
        "dask",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
        "--",
        "echo",
        check_code=None,
    )
    assert_clean_error(done, 2, "could not start", "could not reach the Dask scheduler", one_line=False)
    [(run_id, state)] = _runs(tmp_path)
    assert state == "failed"
    status = json.loads(herd(tmp_path, "status", run_id, "--json").stdout)
    assert status["state"] == "failed" and "Dask scheduler" in status["error"]


def _killed_map(tmp_path: Path) -> str:
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "herd",
            "map",
            *[str(n) for n in range(6)],
            "-j",
            "2",
            "--",
            "sh",
            "-c",
            "sleep 2; echo $0",
        ],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _runs(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return _runs(tmp_path)[0][0]


def test_status_of_a_killed_map_and_two_resumes_racing(tmp_path: Path) -> None:
    run_id = _killed_map(tmp_path)
    shown = herd(tmp_path, "status", run_id).stdout
    assert "interrupted" in shown and f"herd map --resume {run_id}" in shown, shown
    listed = herd(tmp_path, "runs").stdout
    assert "interrupted" in listed and f"herd map --resume {run_id}" in listed, listed
    resumes = [
        subprocess.Popen(
            [PY, "-m", "herd", "map", "--resume", run_id],
            cwd=tmp_path,
            env=env_for(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = {proc.pid: (proc, *proc.communicate(timeout=120)) for proc in resumes}
    codes = sorted(proc.returncode for proc, _o, _e in outs.values())
    assert codes == [0, 4], {pid: (p.returncode, err) for pid, (p, _o, err) in outs.items()}
    winner = next(pid for pid, (proc, _o, _e) in outs.items() if proc.returncode == 0)
    loser_err = next(err for proc, _o, err in outs.values() if proc.returncode == 4)
    assert f"run {run_id} is being resumed by pid {winner}" in loser_err, loser_err
    with db(tmp_path) as conn:
        states = dict(conn.execute("SELECT task_id, state FROM run_tasks WHERE run_id = ?", (run_id,)))
    assert set(states.values()) == {"succeeded"}, states
