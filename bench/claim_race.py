"""Race N real processes to claim the same issues; print who won what.

    PYTHONPATH=src python bench/claim_race.py [--processes 8] [--issues 50]

Each worker process opens the store itself (herd.queue.core.Queue) and tries to claim every
issue, in its own random order, with the compare-and-swap claim. Exit 1 if any issue
was won twice or not at all, or the store disagrees with the winners.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

WORKER = """
import json, random, sys, time
from pathlib import Path
from herd.errors import Refused
from herd.queue.core import Queue
from herd.store import Store

db, actor, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
ids = json.loads(sys.argv[4])
queue = Queue(Store(Path(db)), actor=actor)
random.Random(actor).shuffle(ids)
while time.time() < start:
    time.sleep(0.001)
won = []
rng = random.Random(actor)
for issue_id in ids:
    # A little jitter so workers interleave instead of one draining the queue while
    # the others sit in SQLite's busy back-off.
    time.sleep(rng.random() * 0.003)
    try:
        queue.claim(issue_id, actor)
        won.append(issue_id)
    except Refused:
        pass
print(json.dumps(won))
"""


def main() -> int:
    from herd.queue.core import Queue, init

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--issues", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        queue = Queue(init(Path(tmp), "race"), actor="setup")
        ids = [queue.create(f"task {n}")["id"] for n in range(args.issues)]
        queue.store.close()
        db = Path(tmp) / ".herd" / "herd.db"
        env = dict(os.environ, PYTHONPATH=str(SRC))
        start = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(db), f"w{n}", str(start), json.dumps(ids)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(args.processes)
        ]
        won = {f"w{n}": json.loads(p.communicate()[0]) for n, p in enumerate(procs)}
        conn = sqlite3.connect(db)
        assignees = dict(conn.execute("SELECT id, assignee FROM issues"))
        conn.close()
    counts = Counter(i for claimed in won.values() for i in claimed)
    winners = {i: actor for actor, claimed in won.items() for i in claimed}
    ok = (
        sorted(counts) == sorted(ids)
        and set(counts.values()) == {1}
        and all(assignees[i] == winners[i] for i in ids)
    )
    per_process = ", ".join(f"{actor}={len(claimed)}" for actor, claimed in won.items())
    if ok:
        print(
            f"{args.processes} processes, {args.issues} issues: each won exactly once "
            f"(per-process counts: {per_process})"
        )
        return 0
    doubles = sorted(i for i, n in counts.items() if n > 1)
    missing = sorted(set(ids) - set(counts))
    print(
        f"{args.processes} processes, {args.issues} issues: FAILED (double claims: {doubles}, "
        f"unclaimed: {missing}; per-process counts: {per_process})"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
