"""Queue benchmark: 100,000 issues end to end through the real CLI.

    PYTHONPATH=src python bench/bench_queue.py [--issues 100000] [--keep DIR]

Generates a beads JSONL file (~1.5 dependencies per issue: blocks and parent-child,
about a third closed), then times, each against its bar:
  - `herd import FILE`                        (<= 20 s)
  - `herd ready --json --limit 50`            (<= 0.15 s, best and median of 5)
  - the ready query alone vs a hand-written indexed SQL query on the same DB (<= 2x)
  - `herd --version` vs `python -c pass`      (<= 0.1 s more)
and prints a table with PASS/FAIL. Exit 1 if any bar fails.

herd's sources are byte-compiled first, as an installed package's are: without that (e.g.
under PYTHONDONTWRITEBYTECODE) every CLI start recompiles them, ~20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "BD_"))}
ENV["PYTHONPATH"] = str(SRC)


def generate(path: Path, count: int, seed: int = 7) -> int:
    """Write `count` issues; return the number of dependency edges."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [f"bench-{n:06d}" for n in range(count)]
    epics = ids[: count // 50]
    edges = 0
    with path.open("w", encoding="utf-8") as out:
        for n, issue_id in enumerate(ids):
            created = (base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            closed = rng.random() < 0.33
            record: dict[str, object] = {
                "id": issue_id, "title": f"Task number {n}", "description": f"Do thing {n}.",
                "status": "closed" if closed else "open", "priority": rng.randint(0, 4),
                "issue_type": "epic" if issue_id in epics[:1] or n < len(epics) else "task",
                "created_at": created, "updated_at": created,
            }
            if closed:
                record["closed_at"] = created
            deps = []
            wanted = rng.choice((0, 1, 1, 2, 2, 2, 3)) if n >= len(epics) else 0
            targets: set[str] = set()
            if wanted and rng.random() < 0.4:
                parent = rng.choice(epics)
                targets.add(parent)
                deps.append({"issue_id": issue_id, "depends_on_id": parent, "type": "parent-child",
                             "created_at": created, "created_by": "bench"})
            while len(deps) < wanted:
                # Only earlier issues: the graph stays acyclic like a real tracker's.
                target = ids[rng.randrange(len(epics), n)] if n > len(epics) else epics[0]
                if target in targets:
                    break
                targets.add(target)
                deps.append({"issue_id": issue_id, "depends_on_id": target, "type": "blocks",
                             "created_at": created, "created_by": "bench"})
            if deps:
                record["dependencies"] = deps
                edges += len(deps)
            if rng.random() < 0.2:
                record["labels"] = [rng.choice(("backend", "frontend", "docs", "infra"))]
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return edges


def herd(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "herd", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"herd {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return elapsed


def timed(func: Callable[[], object], runs: int = 5) -> tuple[float, float]:
    """(best, median) wall time of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


# The same answer as herd's ready query (open, unblocked, undeferred work, bd's hybrid order:
# the last 48 hours by priority, then older work oldest first; first 50), written by hand as
# the fastest form we know: each half walks an index in its own order and stops at 50.
HAND_SQL = """
SELECT id FROM (
  SELECT * FROM (
    SELECT i.id AS id, 0 AS part, i.priority AS pri, i.created_ts AS ts FROM issues i
     WHERE i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
     AND i.issue_type NOT IN ('agent','gate','merge-request','message','molecule','rig','role')
     AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = i.id)
     AND (i.defer_ts IS NULL OR i.defer_ts <= :now)
     AND NOT EXISTS (SELECT 1 FROM dependencies p JOIN issues pi ON pi.id = p.depends_on_id
                      WHERE p.issue_id = i.id AND p.type = 'parent-child' AND pi.defer_ts > :now)
       AND i.created_ts >= :recent
     ORDER BY i.priority, i.created_ts, i.id LIMIT 50)
  UNION ALL
  SELECT * FROM (
    SELECT i.id, 1, NULL, i.created_ts FROM issues i
     WHERE i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
     AND i.issue_type NOT IN ('agent','gate','merge-request','message','molecule','rig','role')
     AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = i.id)
     AND (i.defer_ts IS NULL OR i.defer_ts <= :now)
     AND NOT EXISTS (SELECT 1 FROM dependencies p JOIN issues pi ON pi.id = p.depends_on_id
                      WHERE p.issue_id = i.id AND p.type = 'parent-child' AND pi.defer_ts > :now)
       AND ifnull(i.created_ts, 0) < :recent
     ORDER BY i.created_ts, i.id LIMIT 50))
ORDER BY part, pri, ts, id LIMIT 50
"""

SORT_EVERYTHING_SQL = """
SELECT i.id FROM issues i
 WHERE i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
   AND i.issue_type NOT IN ('agent','gate','merge-request','message','molecule','rig','role')
   AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = i.id)
   AND (i.defer_ts IS NULL OR i.defer_ts <= :now)
   AND NOT EXISTS (SELECT 1 FROM dependencies p JOIN issues pi ON pi.id = p.depends_on_id
                    WHERE p.issue_id = i.id AND p.type = 'parent-child' AND pi.defer_ts > :now)
 ORDER BY CASE WHEN i.created_ts >= :recent THEN 0 ELSE 1 END,
          CASE WHEN i.created_ts >= :recent THEN i.priority END, i.created_ts, i.id
 LIMIT 50
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="herd-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, bool | None]] = []  # None: information, no bar
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC)], check=True)
    try:
        data = work / "issues.jsonl"
        edges = generate(data, args.issues)
        print(f"generated {args.issues:,} issues, {edges:,} dependencies "
              f"({edges / args.issues:.2f} per issue) in {data}")
        db = work / ".herd" / "herd.db"
        if db.exists():
            shutil.rmtree(work / ".herd")
        herd("init", "--prefix", "bench", cwd=work)
        import_s = herd("import", str(data), cwd=work)
        rows.append(("herd import (end to end)", f"{import_s:.2f} s", "<= 20 s", import_s <= 20))

        best, median = timed(lambda: herd("ready", "--json", "--limit", "50", cwd=work))
        rows.append(("herd ready --json --limit 50 (best/median of 5)",
                     f"{best * 1000:.0f} / {median * 1000:.0f} ms", "<= 150 ms", best <= 0.15))

        from herd.queue.core import Queue
        from herd.store import Store
        from herd.store import work as sql_work

        queue = Queue(Store(db))
        now = time.time()
        with queue.store.read() as tx:
            ours = sql_work.ready(tx, now=now, limit=50, sort="hybrid")
            hand = [r[0] for r in tx.execute(HAND_SQL, {"now": now, "recent": now - 48 * 3600})]
        if ours != hand:
            raise SystemExit("herd's ready query and the hand-written one disagree")

        def herd_query() -> None:
            with queue.store.read() as tx:
                sql_work.ready(tx, now=time.time(), limit=50, sort="hybrid")

        conn = sqlite3.connect(db)

        def hand_query() -> None:
            t = time.time()
            conn.execute(HAND_SQL, {"now": t, "recent": t - 48 * 3600}).fetchall()

        def sort_everything() -> None:
            # The query herd ran before schema migration 2: filter all open work, sort it all.
            t = time.time()
            conn.execute(SORT_EVERYTHING_SQL, {"now": t, "recent": t - 48 * 3600}).fetchall()

        q_best, _ = timed(herd_query, runs=7)
        h_best, _ = timed(hand_query, runs=7)
        ratio = q_best / h_best
        rows.append(("ready query alone / hand SQL",
                     f"{q_best * 1000:.1f} / {h_best * 1000:.1f} ms = {ratio:.2f}x", "<= 2x",
                     ratio <= 2))
        old_best, _ = timed(sort_everything, runs=3)
        rows.append(("(before the fix: one ORDER BY over all open)", f"{old_best * 1000:.1f} ms",
                     "(info)", None))
        full_best, _ = timed(lambda: queue.ready(limit=50), runs=7)
        rows.append(("Queue.ready(limit=50) incl. records", f"{full_best * 1000:.1f} ms",
                     "(info)", None))
        conn.close()
        queue.store.close()

        version_best, _ = timed(lambda: herd("--version", cwd=work))
        bare_best, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
        extra = version_best - bare_best
        rows.append(("herd --version - python -c pass",
                     f"{version_best * 1000:.0f} - {bare_best * 1000:.0f} = {extra * 1000:.0f} ms",
                     "<= 100 ms", extra <= 0.1))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measurement':<{width}}  {'value':<28}  {'bar':<10}  result")
    for name, value, bar, ok in rows:
        result = "-" if ok is None else "PASS" if ok else "FAIL"
        print(f"{name:<{width}}  {value:<28}  {bar:<10}  {result}")
    return 0 if all(r[3] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
