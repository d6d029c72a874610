"""`herd import`: a beads JSONL file into the store, by bd's import rules.

The whole file is read and validated before anything is written, then stored in
one transaction: a bad line writes nothing. The rules follow bd's
`cmd/bd/import_shared.go` (parseJSONLFile) and the storage it calls:

- lines that are not issues (`"_type": "memory"`, a `_schema` header) are skipped;
- a `tombstone` is not imported: it deletes the stored issue of that id;
- legacy `wisp: true` (bd 0.35-0.37) reads as `ephemeral: true`;
- a record without `status`/`issue_type`/`priority` gets bd's (`open`, `task`, 0);
- a record older (`updated_at`) than the stored copy does not overwrite it;
- self and cyclic `blocks`/`conditional-blocks` edges are dropped with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from herd.queue import graph
from herd.queue.model import CYCLE_CHECKED_TYPES, DERIVED_COUNTS, Record, Status, parse_time, set_field
from herd.store import Store, jsonl
from herd.store import issues as sql_issues
from herd.store import work as sql_work

#: Called with a short line saying what the import is doing (the CLI shows it on a TTY).
Progress = Callable[[str], None]

_PROGRESS_EVERY = 5000


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
        return {"path": self.path, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "stale": self.stale,
                "tombstones": self.tombstones, "deleted": self.deleted,
                "skipped_lines": self.skipped_lines,
                "dropped_dependencies": [{"issue_id": a, "depends_on_id": b, "reason": why}
                                         for a, b, why in self.dropped],
                "dangling_dependencies": len(self.dangling)}


def import_jsonl(store: Store, path: Path, progress: Progress | None = None) -> ImportResult:
    say = progress or (lambda _: None)
    result = ImportResult(path=str(path))
    skipped: list[int] = []
    # A later line for the same id replaces the earlier one, as importing the lines one by
    # one would; storing both would merge their children (or break a unique key).
    latest: dict[str, Record] = {}
    for number, record in jsonl.read(path, skipped):
        latest[record["id"]] = record
        if number % _PROGRESS_EVERY == 0:
            say(f"reading {path.name}: {number:,} lines")
    result.skipped_lines = len(skipped)
    tombstones = [i for i, r in latest.items() if r.get("status") == Status.TOMBSTONE]
    result.tombstones = len(tombstones)
    records = [_normalised(r, result.dropped) for r in latest.values()
               if r.get("status") != Status.TOMBSTONE]
    say(f"checking {len(records):,} issues against the store")
    with store.write() as tx:
        _drop_cycles(records, sql_work.cycle_edges(tx), result.dropped)
        stored = {r["id"]: r for r in sql_issues.full(tx, [r["id"] for r in records],
                                                      counts=False)}
        changed = []
        for record in records:
            before = stored.get(record["id"])
            if before is None:
                result.created += 1
            elif _comparable(before) == _comparable(record):
                result.unchanged += 1
                continue
            elif _older(record, before):
                result.stale += 1
                continue
            else:
                result.updated += 1
            changed.append(record)
        say(f"writing {len(changed):,} issues")
        sql_issues.put_issues(tx, changed)
        gone = sorted(sql_issues.existing(tx, tombstones))
        sql_issues.delete_issues(tx, gone)
        result.deleted = len(gone)
        if changed or gone:
            say("updating the blocked set")
            sql_work.rebuild_blocked(tx)
        result.dangling = sql_work.dangling_edges(tx)
    return result


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
    if deps:
        kept = []
        for dep in deps:
            if dep["depends_on_id"] == record["id"]:
                dropped.append((record["id"], record["id"], "depends on itself"))
            else:
                kept.append(dep)
        if len(kept) != len(deps):
            _set_deps(record, kept)
    return record


def _drop_cycles(records: Sequence[Record], stored_edges: Iterable[tuple[str, str, str]],
                 dropped: list[tuple[str, str, str]]) -> None:
    """Leave out each `blocks`/`conditional-blocks` edge that would close a cycle, taking
    the file's edges in order on top of the stored ones (the file replaces its own ids')."""
    own = {r["id"] for r in records}
    edges = [(a, b) for a, b, _ in stored_edges if a not in own]
    new = [(r, d) for r in records for d in r.get("dependencies") or []
           if d.get("type", "blocks") in CYCLE_CHECKED_TYPES]
    suspects = graph.cyclic_nodes(graph.adjacency(
        [*edges, *((r["id"], d["depends_on_id"]) for r, d in new)]))
    if not suspects:
        return
    adjacency = graph.adjacency(edges)
    refused: dict[str, list[Record]] = {}
    for record, dep in new:
        source, target = record["id"], dep["depends_on_id"]
        if source in suspects and target in suspects:
            back = graph.path_between(adjacency, target, source)
            if back:
                dropped.append((source, target, "would make a cycle: "
                                + " -> ".join([source, *back])))
                refused.setdefault(source, []).append(dep)
                continue
        adjacency[source].append(target)
    for record in records:
        if record["id"] in refused:
            drop = refused[record["id"]]
            _set_deps(record, [d for d in record["dependencies"]
                               if not any(d is x for x in drop)])


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
