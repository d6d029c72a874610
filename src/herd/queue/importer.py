"""`herd import`: a beads JSONL file into the store, by bd's import rules.

The file is imported in one write transaction: a bad line (found by the reading that
writes, or by the first of two readings) writes nothing. The rules follow bd's
`cmd/bd/import_shared.go` (parseJSONLFile) and the storage it calls:

- lines that are not issues (`"_type": "memory"`, a `_schema` header) are skipped;
- a `tombstone` is not imported: it deletes the stored issue of that id;
- legacy `wisp: true` (bd 0.35-0.37) reads as `ephemeral: true`;
- a record without `status`/`issue_type`/`priority` gets bd's (`open`, `task`, 0);
- a record older (`updated_at`) than the stored copy does not overwrite it;
- self and cyclic `blocks`/`conditional-blocks` edges are dropped with a warning.
"""

from __future__ import annotations

import gc
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path

from herd.queue import graph
from herd.queue.model import (
    CYCLE_CHECKED_TYPES,
    DERIVED_COUNTS,
    Record,
    Status,
    edge_type,
    parse_time,
    set_field,
)
from herd.store import Store, jsonl
from herd.store import issues as sql_issues
from herd.store import work as sql_work

#: Called with a short line saying what the import is doing (the CLI shows it on a TTY).
Progress = Callable[[str], None]

# A dependency's target (called by C code, once per dependency).
_target = itemgetter("depends_on_id")
_PROGRESS_EVERY = 5000
_TOMBSTONE = Status.TOMBSTONE.value
_CHUNK = 2000
# The one transaction of an import rewrites the same pages several times over (rows, then
# the indexes, the blocked set, the dangling edges). With SQLite's 2 MiB page cache they
# spill to the WAL and are read back from it; a larger cache keeps them in memory. SQLite
# allocates only the pages it uses: a small import costs nothing more.
_CACHE_KIB = 48 * 1024


@dataclass
class ImportResult:
    path: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    tombstones: int = 0
    deleted: int = 0
    skipped_lines: int = 0
    #: (issue, depends_on, why) for each edge left out.
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    dangling: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def read(self) -> int:
        return self.created + self.updated + self.unchanged + self.stale

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "tombstones": self.tombstones,
            "deleted": self.deleted,
            "skipped_lines": self.skipped_lines,
            "dropped_dependencies": [
                {"issue_id": a, "depends_on_id": b, "reason": why} for a, b, why in self.dropped
            ],
            "dangling_dependencies": len(self.dangling),
        }


def import_jsonl(store: Store, path: Path, progress: Progress | None = None) -> ImportResult:
    """Import `path` in one write transaction: a bad line (or any error) writes nothing.

    The file is read once, each chunk written as it is read (`_import_once`). That is bd's
    reading whenever each id is on one line and no edge closes a cycle, which only the whole
    file can tell: when it turns out otherwise the chunks are rolled back and the file is
    read twice (`_import_twice`), the first reading deciding before anything is written."""
    say = progress or (lambda _: None)
    with _no_cycle_collection(), store.write() as tx, _page_cache(tx, _CACHE_KIB):
        try:
            with sql_issues.savepoint(tx, "import_once"):
                return _import_once(tx, path, say)
        except _Replay as replay:
            say(f"{replay}: reading {path.name} again")
            return _import_twice(tx, path, say)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while the block runs. An import makes no reference
    cycles (records read from JSON, rows, edges: reference counting frees each), but the
    collector still walks the chunk of records held between writes over and over (a few %
    of an import's time). Collection goes on as before once the block ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _page_cache(tx: sqlite3.Connection, kib: int) -> Iterator[None]:
    """SQLite's page cache at `kib` KiB on this connection while the block runs."""
    before = int(tx.execute("PRAGMA cache_size").fetchone()[0])
    tx.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        tx.execute(f"PRAGMA cache_size = {before}")


class _Replay(Exception):
    """The file needs the two readings (an id on two lines, an edge closing a cycle)."""


def _import_once(tx: sqlite3.Connection, path: Path, say: Progress) -> ImportResult:
    result = ImportResult(path=str(path))
    plan = _Plan()
    # The graph the file's edges are checked against is the one before the import.
    stored_edges = sql_work.cycle_edges(tx)
    skipped: list[int] = []
    chunk: list[Record] = []
    written = 0
    # Filling an empty store: the indexes are built once the rows are in, and there is no
    # stored copy to compare with (each id is on one line, or this reading stops).
    fresh = sql_issues.empty(tx)
    indexes = sql_issues.drop_indexes(tx) if fresh else []
    lines, checked = plan.lines, plan.checked
    for number, record in jsonl.read(path, skipped):
        issue_id = record["id"]
        if issue_id in lines:
            raise _Replay(f"{issue_id} is on lines {lines[issue_id]:,} and {number:,}")
        lines[issue_id] = number
        if number % _PROGRESS_EVERY == 0:
            say(f"reading {path.name}: {number:,} lines")
        if record.get("status") == _TOMBSTONE:
            plan.tombstoned.add(issue_id)
            continue
        record = _normalised(record, result.dropped)
        deps = record.get("dependencies")
        if deps:
            targets = tuple([d["depends_on_id"] for d in deps if edge_type(d) in CYCLE_CHECKED_TYPES])
            if targets:
                checked[issue_id] = targets
        chunk.append(record)
        if len(chunk) == _CHUNK:
            written += _write(tx, chunk, result, fresh)
            chunk = []
    say(f"writing {len(lines) - len(plan.tombstoned):,} issues")
    written += _write(tx, chunk, result, fresh)
    sql_issues.create_indexes(tx, indexes)
    if _drop_cycles(plan, stored_edges, []):
        raise _Replay("a dependency would close a cycle")
    result.skipped_lines = len(skipped)
    result.tombstones = len(plan.tombstoned)
    _finish(tx, plan, result, written, say)
    return result


def _import_twice(tx: sqlite3.Connection, path: Path, say: Progress) -> ImportResult:
    """bd's rules over the whole file: the first reading validates it and decides (the line
    each id comes from, the tombstones, the edges left out), the second writes."""
    result = ImportResult(path=str(path))
    plan = _read_plan(path, result, say)
    total = len(plan.lines) - len(plan.tombstoned)
    say(f"checking {total:,} issues against the store")
    refused = _drop_cycles(plan, sql_work.cycle_edges(tx), result.dropped)
    say(f"writing {total:,} issues")
    written = seen = 0
    chunk: list[Record] = []
    # The second reading writes chunk by chunk: the file's records, the stored copies
    # and the rows being written are never all in memory at once.
    for number, record in jsonl.read(path, check=False):
        issue_id = record["id"]
        if plan.lines[issue_id] != number or issue_id in plan.tombstoned:
            continue
        chunk.append(_without(_normalised(record, []), refused.get(issue_id)))
        if len(chunk) == _CHUNK:
            written += _write(tx, chunk, result)
            seen += len(chunk)
            chunk = []
            say(f"writing issues: {seen:,} of {total:,} checked")
    written += _write(tx, chunk, result)
    _finish(tx, plan, result, written, say)
    return result


def _finish(tx: sqlite3.Connection, plan: _Plan, result: ImportResult, written: int, say: Progress) -> None:
    """Delete the tombstoned issues, refresh the blocked set, note the dangling edges."""
    tombstones = [i for i in plan.lines if i in plan.tombstoned]
    gone = sorted(sql_issues.existing(tx, tombstones))
    sql_issues.delete_issues(tx, gone)
    result.deleted = len(gone)
    if written or gone:
        say("updating the blocked set")
        sql_work.rebuild_blocked(tx)
    result.dangling = sql_work.dangling_edges(tx)


class _Plan:
    """What the first reading of a file learns: the line each id is imported from (a later
    line for the same id replaces the earlier one, as importing the lines one by one
    would), the tombstones, and each imported id's `blocks`/`conditional-blocks` targets
    in order (only ids that have some; never a tombstone's)."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.tombstoned: set[str] = set()
        self.self_deps: dict[str, int] = {}
        self.checked: dict[str, Sequence[str]] = {}


def _read_plan(path: Path, result: ImportResult, say: Progress) -> _Plan:
    """Read and validate the whole file (a bad line raises before anything is written),
    keeping only what deciding needs, not the records."""
    plan = _Plan()
    skipped: list[int] = []
    for number, record in jsonl.read(path, skipped):
        issue_id = record["id"]
        plan.lines[issue_id] = number
        deps = record.get("dependencies") or []
        if record.get("status") == Status.TOMBSTONE:
            plan.tombstoned.add(issue_id)
            deps = []
        else:
            plan.tombstoned.discard(issue_id)
        plan.self_deps[issue_id] = sum(1 for d in deps if d["depends_on_id"] == issue_id)
        targets = [
            d["depends_on_id"]
            for d in deps
            if edge_type(d) in CYCLE_CHECKED_TYPES and d["depends_on_id"] != issue_id
        ]
        if targets:
            plan.checked[issue_id] = targets
        else:
            plan.checked.pop(issue_id, None)
        if number % _PROGRESS_EVERY == 0:
            say(f"reading {path.name}: {number:,} lines")
    result.skipped_lines = len(skipped)
    result.tombstones = len(plan.tombstoned)
    for issue_id in plan.lines:
        if issue_id not in plan.tombstoned:
            result.dropped.extend([(issue_id, issue_id, "depends on itself")] * plan.self_deps[issue_id])
    return plan


def _write(tx: sqlite3.Connection, chunk: list[Record], result: ImportResult, fresh: bool = False) -> int:
    """Write the records of `chunk` that are new or newer than the stored copy (none is
    stored when `fresh`)."""
    if fresh:
        changed = chunk
        result.created += len(chunk)
    else:
        stored = {r["id"]: r for r in sql_issues.full(tx, [r["id"] for r in chunk])}
        changed = [r for r in chunk if _counted(result, r, stored.get(r["id"]))]
    sql_issues.put_issues(tx, changed, new=fresh)
    return len(changed)


def _counted(result: ImportResult, record: Record, before: Record | None) -> bool:
    """Count the record as new, updated, unchanged or stale; True when it is to be written."""
    if before is None:
        result.created += 1
    elif _comparable(before) == _comparable(record):
        result.unchanged += 1
        return False
    elif _older(record, before):
        result.stale += 1
        return False
    else:
        result.updated += 1
    return True


def _normalised(record: Record, dropped: list[tuple[str, str, str]]) -> Record:
    """bd's reading of a record: defaults, the legacy `wisp` flag, no self-dependency."""
    if record.get("status") is None:
        set_field(record, "status", Status.OPEN.value)
    if record.get("issue_type") is None:
        set_field(record, "issue_type", "task")
    # bd: "Priority default of 2 only applies to new issues via Create, not import" (P0).
    if record.get("priority") is None:
        set_field(record, "priority", 0)
    if record.pop("wisp", None) and not record.get("ephemeral"):
        set_field(record, "ephemeral", True)
    deps = record.get("dependencies")
    if deps and record["id"] in map(_target, deps):
        issue_id = record["id"]
        kept = [dep for dep in deps if dep["depends_on_id"] != issue_id]
        dropped.extend([(issue_id, issue_id, "depends on itself")] * (len(deps) - len(kept)))
        _set_deps(record, kept)
    return record


def _drop_cycles(
    plan: _Plan, stored_edges: Sequence[tuple[str, str, str]], dropped: list[tuple[str, str, str]]
) -> dict[str, set[int]]:
    """Leave out each `blocks`/`conditional-blocks` edge that would close a cycle, taking
    the file's edges in order on top of the stored ones (the file replaces its own ids').
    Returns, per id, the positions (among its checked edges) of the edges left out."""
    checked = plan.checked
    if not checked:  # the file adds no edge that could close a cycle
        return {}
    edges: list[tuple[str, str]] = []
    if stored_edges:
        own = {i for i in plan.lines if i not in plan.tombstoned}
        edges = [(a, b) for a, b, _ in stored_edges if a not in own]
    # Only what is left after peeling the nodes nothing depends on can lie on a cycle (one
    # pass of Kahn's algorithm); usually that is nothing, and the exact search is skipped.
    left = _unpeeled(checked, edges)
    if not left:
        return {}
    new = [(source, k, target) for source, targets in checked.items() for k, target in enumerate(targets)]
    every = [*edges, *((source, target) for source, _, target in new)]
    suspects = graph.cyclic_nodes(graph.adjacency((a, b) for a, b in every if a in left and b in left))
    if not suspects:
        return {}
    adjacency = graph.adjacency(edges)
    refused: dict[str, set[int]] = {}
    for source, k, target in new:
        if source in suspects and target in suspects:
            back = graph.path_between(adjacency, target, source)
            if back:
                dropped.append((source, target, "would make a cycle: " + " -> ".join([source, *back])))
                refused.setdefault(source, set()).add(k)
                continue
        adjacency[source].append(target)
    return refused


def _unpeeled(checked: Mapping[str, Sequence[str]], edges: Iterable[tuple[str, str]]) -> set[str]:
    """The nodes Kahn's algorithm cannot remove from the graph of `checked` (source -> its
    targets) and `edges` (whose sources are not in `checked`): every node on a cycle, and
    those a cycle depends on. Empty for an acyclic graph."""
    stored: dict[str, list[str]] = {}
    for source, target in edges:
        stored.setdefault(source, []).append(target)
    targets: Mapping[str, Sequence[str]] = {**checked, **stored} if stored else checked
    # A plain dict: CPython's quick paths for `d[k]` are for exact dicts only.
    waiting = dict(Counter(chain.from_iterable(targets.values())))
    free = [node for node in targets if node not in waiting]
    pop, push, get = free.pop, free.append, targets.get
    while free:
        for target in get(pop(), ()):
            count = waiting[target] - 1
            waiting[target] = count
            if not count:
                push(target)
    return {node for node, count in waiting.items() if count}


def _without(record: Record, refused: set[int] | None) -> Record:
    """The record without the checked edges at the `refused` positions."""
    if refused:
        kept, k = [], 0
        for dep in record["dependencies"]:
            if edge_type(dep) in CYCLE_CHECKED_TYPES:
                k += 1
                if k - 1 in refused:
                    continue
            kept.append(dep)
        _set_deps(record, kept)
    return record


def _set_deps(record: Record, deps: list[Record]) -> None:
    if deps:
        record["dependencies"] = deps
    else:
        record.pop("dependencies", None)


def _comparable(record: Record) -> Record:
    return {k: v for k, v in record.items() if k not in DERIVED_COUNTS}


def _older(incoming: Record, stored: Record) -> bool:
    """Stale JSONL: the incoming copy was last updated before the stored one."""
    new, old = parse_time(incoming.get("updated_at")), parse_time(stored.get("updated_at"))
    return new is not None and old is not None and new < old
