"""One stop design (engine/shutdown.py) for run and map: the first signal stops cleanly, a
second one only drops the grace period, and clean-up always finishes: every worker reaped,
every task given back, state saved for resume. Workers here ignore SIGTERM, so herd is
still waiting out its grace period when the second signal arrives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _run_helpers import Project, kill_tree, run_processes, wait_for
from test_map import PY, env_for, latest_run

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('started', flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_second_ctrl_c_during_clean_up_still_gives_every_task_back(tmp_path: Path) -> None:
    p = Project(tmp_path, files=2)
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text(STUBBORN)
    ids = [p.create(f"T{n}", scope=[f"src/m{n}.py"]) for n in range(2)]
    proc = p.popen("run", *ids, "--cmd", f"{sys.executable} {stubborn}", "-j", "2", "--no-integrate")
    try:
        run_id = wait_for(lambda: p.latest_run_or_none(), timeout=30)
        wait_for(lambda: len(run_processes(run_id)) >= 2, timeout=30)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(1.0)  # herd now waits out the workers' 5 s grace period
        second = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        kill_tree(proc)
    assert proc.returncode == 130, err
    assert time.monotonic() - second < 3.5, "the second signal did not cut the grace period"
    assert "Traceback" not in err
    assert run_processes(run_id) == [], "a worker survived"
    for task_id in ids:
        shown = p.show(task_id)
        assert shown["status"] == "open" and not shown.get("assignee"), shown
    assert json.loads(p.herd("status", run_id, "--json").stdout)["state"] == "interrupted"


def test_map_second_signal_kills_at_once_and_saves_every_batch(tmp_path: Path) -> None:
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text(STUBBORN.replace("print(", "open(sys.argv[1] + '.started', 'w'); print("))
    proc = subprocess.Popen(
        [PY, "-m", "herd", "map", "-j", "2", "a", "b", "c", "--", PY, str(stubborn), "{}"],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(list(tmp_path.glob("*.started"))) == 2, timeout=30)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # herd now waits out the 2 s grace period
        second = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        kill_tree(proc)
    assert proc.returncode == 130, err
    assert time.monotonic() - second < 1.8
    assert "Traceback" not in err
    run = latest_run(tmp_path)
    assert run["state"] == "interrupted"
    assert run["summary"]["counts"] == {"queued": 3}
