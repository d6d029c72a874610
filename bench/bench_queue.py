"""Queue benchmark: issue 16's queue rows, 100,000 issues, end to end through the real CLI.

    python bench/bench_queue.py [--issues 100000] [--runs 3] [--keep DIR] [--src DIR]
                                [--only import,ready,ready-all,blocked,list,stats,claim]

Generates a beads JSONL file (~1.5 dependencies per issue: blocks and parent-child, about a
third closed, a fifth labelled), imports it, then runs each command and its baseline as
child processes of this one, alternately, and prints for every row: herd's and the baseline's
median wall and CPU times, the ratios, herd's peak RSS (ru_maxrss of that child) and the bar.

Baselines are the same answer from raw SQL: a bare `python` that runs one SQL statement
returning the answer's rows (the stored record and its children as JSON text, no decoding)
and writes one line per row; for `import`, a plain json + sqlite3 loop that inserts the same
rows. `--src` points at another checkout's `src` (to measure the code before a change).

herd's sources are byte-compiled first, as an installed package's are.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


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
                "id": issue_id,
                "title": f"Task number {n}",
                "description": f"Do thing {n}.",
                "status": "closed" if closed else "open",
                "priority": rng.randint(0, 4),
                "issue_type": "epic" if n < len(epics) else "task",
                "created_at": created,
                "updated_at": created,
            }
            if closed:
                record["closed_at"] = created
            deps = []
            wanted = rng.choice((0, 1, 1, 2, 2, 2, 3)) if n >= len(epics) else 0
            targets: set[str] = set()
            if wanted and rng.random() < 0.4:
                parent = rng.choice(epics)
                targets.add(parent)
                deps.append(
                    {
                        "issue_id": issue_id,
                        "depends_on_id": parent,
                        "type": "parent-child",
                        "created_at": created,
                        "created_by": "bench",
                    }
                )
            while len(deps) < wanted:
                # Only earlier issues: the graph stays acyclic like a real tracker's.
                target = ids[rng.randrange(len(epics), n)] if n > len(epics) else epics[0]
                if target in targets:
                    break
                targets.add(target)
                deps.append(
                    {
                        "issue_id": issue_id,
                        "depends_on_id": target,
                        "type": "blocks",
                        "created_at": created,
                        "created_by": "bench",
                    }
                )
            if deps:
                record["dependencies"] = deps
                edges += len(deps)
            if rng.random() < 0.2:
                record["labels"] = [rng.choice(("backend", "frontend", "docs", "infra"))]
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return edges


# -- baselines: the same answers from raw SQL ----------------------------------------------

# Each record's children as JSON text, aggregated by SQLite (no decoding in Python).
_KIDS = """
 (SELECT json_group_array(label) FROM (SELECT label FROM labels WHERE issue_id = i.id
   ORDER BY pos)),
 (SELECT '[' || group_concat(data, ',') || ']' FROM (SELECT data FROM dependencies
   WHERE issue_id = i.id ORDER BY pos)),
 (SELECT '[' || group_concat(data, ',') || ']' FROM (SELECT data FROM comments
   WHERE issue_id = i.id ORDER BY pos))"""

_ROWS = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
now = time.time()
out = sys.stdout
for row in conn.execute(SQL, {"now": now}):
    out.write("\\t".join(map(str, row)) + "\\n")
"""

READY_SQL = f"""SELECT i.id, i.data, {_KIDS} FROM issues i
 WHERE i.status = 'open' AND i.ephemeral = 0 AND i.pinned = 0
   AND i.issue_type NOT IN ('agent','gate','merge-request','message','molecule','rig','role')
   AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.id = i.id)
   AND (i.defer_ts IS NULL OR i.defer_ts <= :now)
   AND NOT EXISTS (SELECT 1 FROM dependencies p JOIN issues pi ON pi.id = p.depends_on_id
                    WHERE p.issue_id = i.id AND p.type = 'parent-child' AND pi.defer_ts > :now)
 ORDER BY i.priority, i.created_ts DESC, i.id"""

# Blocked issues with the ids blocking them (the bench's graph has only blocks and
# parent-child edges; an issue blocked only through its parent lists the parent).
BLOCKED_SQL = f"""SELECT i.id, i.data, {_KIDS},
 coalesce((SELECT group_concat(d.depends_on_id) FROM dependencies d JOIN issues t
            ON t.id = d.depends_on_id AND t.status NOT IN ('closed','pinned','tombstone')
           WHERE d.issue_id = i.id AND d.type = 'blocks'),
          (SELECT group_concat(d.depends_on_id) FROM dependencies d JOIN blocked bp
            ON bp.id = d.depends_on_id WHERE d.issue_id = i.id AND d.type = 'parent-child'))
 FROM blocked b JOIN issues i ON i.id = b.id
 WHERE i.status NOT IN ('closed','pinned','tombstone')
 ORDER BY i.priority, i.created_ts DESC, i.id"""

LIST_SQL = f"""SELECT i.id, i.data, {_KIDS} FROM issues i WHERE i.status = 'open'
 ORDER BY i.priority, i.created_ts DESC, i.id"""

STATS_SCRIPT = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
counts = dict(conn.execute("SELECT status, count(*) FROM issues WHERE ephemeral = 0 GROUP BY status"))
pinned = conn.execute("SELECT count(*) FROM issues WHERE ephemeral = 0 AND pinned = 1").fetchone()[0]
blocked = conn.execute('''
  SELECT count(DISTINCT d.issue_id) FROM dependencies d
    JOIN issues i ON i.id = d.issue_id AND i.status NOT IN ('closed','pinned','tombstone')
    JOIN issues t ON t.id = d.depends_on_id AND t.status NOT IN ('closed','pinned','tombstone')
   WHERE d.type IN ('blocks','conditional-blocks')''').fetchone()[0]
print(counts, pinned, blocked)
"""

# A plain import: read each line, insert the issue, its labels and its dependencies, one
# transaction, then the blocked set, as herd's import does (without bd's rules).
IMPORT_SCRIPT = """
import json, sqlite3, sys
from datetime import datetime
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL"); conn.execute("PRAGMA synchronous = NORMAL")
conn.executescript('''
CREATE TABLE issues (id TEXT PRIMARY KEY, data TEXT, title TEXT, status TEXT, priority INT,
  issue_type TEXT, created_ts REAL);
CREATE INDEX by_status ON issues (status, priority, created_ts DESC, id);
CREATE TABLE dependencies (issue_id TEXT, depends_on_id TEXT, type TEXT, pos INT, data TEXT,
  PRIMARY KEY (issue_id, depends_on_id, type)) WITHOUT ROWID;
CREATE INDEX deps_by_target ON dependencies (depends_on_id, type);
CREATE TABLE labels (issue_id TEXT, label TEXT, pos INT, PRIMARY KEY (issue_id, label)) WITHOUT ROWID;
CREATE TABLE blocked (id TEXT PRIMARY KEY) WITHOUT ROWID;
''')
conn.execute("BEGIN")
dumps = json.dumps
for line in open(sys.argv[2], encoding="utf-8"):
    r = json.loads(line)
    deps = r.pop("dependencies", None) or []
    labels = r.pop("labels", None) or []
    ts = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).timestamp()
    conn.execute("INSERT INTO issues VALUES (?,?,?,?,?,?,?)", (r["id"], dumps(r), r["title"],
                 r["status"], r["priority"], r["issue_type"], ts))
    conn.executemany("INSERT INTO dependencies VALUES (?,?,?,?,?)",
                     [(r["id"], d["depends_on_id"], d["type"], n, dumps(d)) for n, d in enumerate(deps)])
    conn.executemany("INSERT INTO labels VALUES (?,?,?)", [(r["id"], l, n) for n, l in enumerate(labels)])
conn.execute('''INSERT INTO blocked SELECT DISTINCT d.issue_id FROM dependencies d
  JOIN issues i ON i.id = d.issue_id AND i.status != 'closed'
  JOIN issues t ON t.id = d.depends_on_id AND t.status != 'closed' WHERE d.type = 'blocks' ''')
conn.execute("COMMIT")
"""


def rows_script(sql: str) -> str:
    return f"SQL = {sql!r}\n{_ROWS}"


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float


def run(argv: list[str], cwd: Path, env: dict[str, str], out: Path) -> Sample:
    """One child process: wall time, its CPU (user + sys) and its peak RSS."""
    with out.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


@dataclass
class Row:
    name: str
    herd: list[Sample]
    base: list[Sample]
    bar_ratio: float | None = None
    bar_ms: float | None = None
    bar_rss: float | None = None
    use_cpu: bool = False

    def value(self, samples: list[Sample], cpu: bool | None = None) -> float:
        use_cpu = self.use_cpu if cpu is None else cpu
        return statistics.median(s.cpu if use_cpu else s.wall for s in samples)

    def verdict(self) -> str:
        """Judged on CPU time (user + sys) of the child: on a 2-core machine shared by
        several agents the wall time measures the neighbours as much as herd."""
        h, b = self.value(self.herd, cpu=True), self.value(self.base, cpu=True)
        rss = max(s.rss_mb for s in self.herd)
        ok = (
            (self.bar_ratio is None or h / b <= self.bar_ratio)
            and (self.bar_ms is None or h * 1000 <= self.bar_ms)
            and (self.bar_rss is None or rss <= self.bar_rss)
        )
        return "PASS" if ok else "FAIL"

    def bar(self) -> str:
        parts = []
        if self.bar_ms is not None:
            parts.append(f"<= {self.bar_ms:.0f} ms")
        if self.bar_ratio is not None:
            parts.append(f"<= {self.bar_ratio}x")
        if self.bar_rss is not None:
            parts.append(f"<= {self.bar_rss:.0f} MB")
        return ", ".join(parts)


def alternate(
    runs: int, herd: list[str], base: list[str], cwd: Path, env: dict[str, str], out: Path
) -> tuple[list[Sample], list[Sample]]:
    h, b = [], []
    for _ in range(runs):
        h.append(run(herd, cwd, env, out))
        b.append(run(base, cwd, env, out))
    return h, b


def claims(
    concurrency: int, rounds: int, db: Path, env: dict[str, str], work: Path, ids: list[str]
) -> list[Sample]:
    """`herd update ID --claim`, `concurrency` processes at once, one claim each."""
    samples: list[Sample] = []
    queue = list(ids)
    for r in range(rounds):
        batch = [queue.pop() for _ in range(concurrency)]
        procs = []
        for n, issue_id in enumerate(batch):
            start = time.perf_counter()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "herd",
                    "update",
                    issue_id,
                    "--claim",
                    "--actor",
                    f"bench-{r}-{n}",
                    "--json",
                    "--db",
                    str(db),
                ],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append((proc, start))
        for proc, start in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit("herd update --claim failed")
            samples.append(
                Sample(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
            )
    return samples


#: The rows `--only` can name, in the order they are measured.
ROWS = ("import", "ready", "ready-all", "blocked", "list", "stats", "claim")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each command (median).")
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    parser.add_argument("--src", type=Path, default=SRC, help="herd's src directory to run.")
    parser.add_argument(
        "--only",
        type=lambda text: {part.strip() for part in text.split(",") if part.strip()},
        default=set(ROWS),
        help=f"Comma-separated rows to measure (default all): {','.join(ROWS)}. The store is "
        "imported once either way; its time is a row only with `import`.",
    )
    args = parser.parse_args()
    unknown = sorted(args.only - set(ROWS))
    if unknown or not args.only:
        parser.error(f"--only: unknown rows {','.join(unknown)}; choose from {','.join(ROWS)}")
    src = args.src.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "BD_"))}
    env["PYTHONPATH"] = str(src)
    work = args.keep or Path(tempfile.mkdtemp(prefix="herd-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
    py, herd = sys.executable, [sys.executable, "-m", "herd"]
    out = work / "out.txt"
    rows: list[Row] = []
    try:
        data = work / "issues.jsonl"
        edges = generate(data, args.issues)
        print(
            f"generated {args.issues:,} issues, {edges:,} dependencies "
            f"({edges / args.issues:.2f} per issue); herd from {src}",
            flush=True,
        )
        imports: tuple[list[Sample], list[Sample]] = ([], [])
        for _ in range(args.runs if "import" in args.only else 1):
            shutil.rmtree(work / ".herd", ignore_errors=True)
            run([*herd, "init", "--prefix", "bench"], work, env, out)
            imports[0].append(run([*herd, "import", str(data)], work, env, out))
            if "import" not in args.only:
                break
            plain = work / "plain.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{plain}{suffix}").unlink(missing_ok=True)
            imports[1].append(run([py, "-c", IMPORT_SCRIPT, str(plain), str(data)], work, env, out))
        if "import" in args.only:
            rows.append(Row("herd import", *imports, bar_ratio=1.2, bar_rss=150))
        db = str(work / ".herd" / "herd.db")

        def add(key: str, name: str, cmd: list[str], base: list[str], **bars: float) -> None:
            if key not in args.only:
                return
            rows.append(Row(name, *alternate(args.runs, [*herd, *cmd], base, work, env, out), **bars))  # type: ignore[arg-type]
            print(f"  measured {name}", flush=True)

        add(
            "ready",
            "herd ready --json --limit 50 (vs python -c pass)",
            ["ready", "--json", "--limit", "50"],
            [py, "-c", "pass"],
            bar_ms=60,
        )
        add(
            "ready-all",
            "herd ready --limit 0 --json",
            ["ready", "--limit", "0", "--json"],
            [py, "-c", rows_script(READY_SQL), db],
            bar_ratio=1.5,
        )
        add(
            "blocked",
            "herd blocked --json",
            ["blocked", "--json"],
            [py, "-c", rows_script(BLOCKED_SQL), db],
            bar_ratio=1.5,
            bar_rss=100,
        )
        add(
            "list",
            "herd list --status open --json",
            ["list", "--status", "open", "--json"],
            [py, "-c", rows_script(LIST_SQL), db],
            bar_ratio=2,
            bar_rss=100,
        )
        add("stats", "herd stats --json", ["stats", "--json"], [py, "-c", STATS_SCRIPT, db], bar_ratio=1.5)

        if "claim" in args.only:
            with open(data, encoding="utf-8") as handle:
                open_ids = [r["id"] for r in map(json.loads, handle) if r["status"] == "open"]
            claim = claims(8, args.runs, Path(db), env, work, open_ids)
            bare = [run([py, "-c", "pass"], work, env, out) for _ in range(args.runs)]
            rows.append(
                Row("herd update ID --claim, 8 at once (CPU per call)", claim, bare, bar_ms=45, use_cpu=True)
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    width = max(len(r.name) for r in rows)
    print(
        f"\nmedians of {args.runs}; wall = elapsed, cpu = user + sys of the child; the verdict "
        f"is on cpu (load average now: {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'measurement':<{width}}  {'herd wall':>9} {'base wall':>9} {'ratio':>6}  "
        f"{'herd cpu':>9} {'base cpu':>9} {'ratio':>6}  {'peak RSS':>8}  {'bar':<20} result"
    )
    for row in rows:
        hw, bw = row.value(row.herd, cpu=False), row.value(row.base, cpu=False)
        hc, bc = row.value(row.herd, cpu=True), row.value(row.base, cpu=True)
        rss = max(s.rss_mb for s in row.herd)
        print(
            f"{row.name:<{width}}  {hw * 1000:7.0f}ms {bw * 1000:7.0f}ms {hw / bw:5.2f}x  "
            f"{hc * 1000:7.0f}ms {bc * 1000:7.0f}ms {hc / bc:5.2f}x  {rss:5.0f} MB  "
            f"{row.bar():<20} {row.verdict()}"
        )
    return 0 if all(r.verdict() == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
