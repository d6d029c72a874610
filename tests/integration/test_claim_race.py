"""8 real processes race to claim the same 50 issues; each issue is won exactly once.

Workers start together (they sleep until a shared start time), record what they won, and
the store is checked afterwards: one assignee per issue, the one that says it won.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from _queue_helpers import herd, herd_env

from herd.queue.core import Queue, init

PROCESSES, ISSUES = 8, 50

LIBRARY_WORKER = """
import json, random, sys, time
from pathlib import Path
from herd.errors import Refused
from herd.queue.core import Queue
from herd.store import Store

db, actor, start, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ids = json.loads(sys.argv[5])
queue = Queue(Store(Path(db)), actor=actor)
while time.time() < start:
    time.sleep(0.001)
won = []
if mode == "ids":
    rng = random.Random(actor)
    rng.shuffle(ids)
    for issue_id in ids:
        # Jitter so workers interleave rather than one draining the queue during the
        # others' busy back-off.
        time.sleep(rng.random() * 0.003)
        try:
            queue.claim(issue_id, actor)
            won.append(issue_id)
        except Refused:
            pass
else:
    while (record := queue.claim_next_ready(actor)) is not None:
        won.append(record["id"])
print(json.dumps(won))
"""

CLI_WORKER = """
import json, subprocess, sys, time
db, actor, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
won = []
while True:
    proc = subprocess.run([sys.executable, "-m", "herd", "ready", "--claim", "--actor", actor,
                           "--json", "--db", db], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"herd failed: {proc.returncode} {proc.stderr}")
    claimed = json.loads(proc.stdout)  # as bd: a list, empty when nothing is left
    if not claimed:
        break
    won.append(claimed[0]["id"])
print(json.dumps(won))
"""


@pytest.fixture
def store_with_issues(tmp_path: Path) -> tuple[Path, list[str]]:
    queue = Queue(init(tmp_path, "race"), actor="setup")
    ids = [queue.create(f"task {n}")["id"] for n in range(ISSUES)]
    queue.store.close()
    return tmp_path / ".herd" / "herd.db", ids


def race(argv_for: list[list[str]], cwd: Path) -> dict[str, list[str]]:
    procs = {
        f"w{n}": subprocess.Popen(
            argv, cwd=cwd, env=herd_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for n, argv in enumerate(argv_for)
    }
    won = {}
    for actor, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{actor}: {err}"
        assert "Traceback" not in err
        won[actor] = json.loads(out)
    return won


def check_each_won_once(db: Path, ids: list[str], won: dict[str, list[str]]) -> None:
    every = [issue_id for claimed in won.values() for issue_id in claimed]
    duplicates = [i for i, n in Counter(every).items() if n > 1]
    assert duplicates == []
    assert sorted(every) == sorted(ids)
    winner = {issue_id: actor for actor, claimed in won.items() for issue_id in claimed}
    conn = sqlite3.connect(db)
    try:
        rows = dict(((i, (s, a)) for i, s, a in conn.execute("SELECT id, status, assignee FROM issues")))
        claims = dict(((i, a) for i, a in conn.execute("SELECT issue_id, actor FROM claims")))
    finally:
        conn.close()
    for issue_id in ids:
        assert rows[issue_id] == ("in_progress", winner[issue_id]), issue_id
        assert claims[issue_id] == winner[issue_id], issue_id
    assert len(claims) == len(ids)


@pytest.mark.parametrize("mode", ["ids", "next-ready"])
def test_library_claim_race(store_with_issues: tuple[Path, list[str]], tmp_path: Path, mode: str) -> None:
    db, ids = store_with_issues
    start = time.time() + 1.5
    argv = [
        [sys.executable, "-c", LIBRARY_WORKER, str(db), f"w{n}", str(start), mode, json.dumps(ids)]
        for n in range(PROCESSES)
    ]
    won = race(argv, tmp_path)
    check_each_won_once(db, ids, won)
    if mode == "ids":
        # Every worker tried every issue: the losers saw exit-4 refusals, not double wins.
        assert sum(len(v) for v in won.values()) == ISSUES
        assert sum(1 for v in won.values() if v) > 1, f"no real race happened: {won}"


def test_cli_claim_race(store_with_issues: tuple[Path, list[str]], tmp_path: Path) -> None:
    db, ids = store_with_issues
    start = time.time() + 1.5
    argv = [[sys.executable, "-c", CLI_WORKER, str(db), f"w{n}", str(start)] for n in range(PROCESSES)]
    won = race(argv, tmp_path)
    check_each_won_once(db, ids, won)
    assert herd("ready", "--json", "--db", str(db), cwd=tmp_path).stdout.strip() == "[]"
