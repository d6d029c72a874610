"""Independence checks before anything starts: which tasks may run side by side.

`herd plan` resolves a task set, refuses what cannot run (a cycle, a blocker
outside the set, a task already closed or taken), orders dependencies inside
the set into waves, and keeps tasks whose scopes can touch the same path out
of the same wave.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from herd.errors import BadInput, NotFound, Refused
from herd.queue import graph
from herd.queue.model import (
    CONTAINER_TYPES,
    NOT_WORK_TYPES,
    PARENT_CHILD,
    RESOLVED_STATUSES,
    Record,
    Status,
    criteria_of,
    scope_of,
)
from herd.run.scope import Overlap, Scope, find_overlaps, scope_for
from herd.store import Store
from herd.store import batch as sql_batch
from herd.store import issues as sql_issues
from herd.store import work as sql_work

MAX_DEFAULT_WORKERS = 8


@dataclass
class Plan:
    tasks: list[Record]
    waves: list[list[str]]
    conflicts: list[Overlap]
    warnings: list[str]
    workers: int
    scopes: dict[str, Scope] = field(default_factory=dict)
    after: dict[str, list[str]] = field(default_factory=dict)  # task -> its blockers in the set

    def wave_of(self, task_id: str) -> int:
        for n, wave in enumerate(self.waves):
            if task_id in wave:
                return n
        raise KeyError(task_id)

    def wave_numbers(self) -> dict[str, int]:
        """Each task's wave (0 first): build it once when asking for every task."""
        return {task_id: n for n, wave in enumerate(self.waves) for task_id in wave}

    def to_json(self) -> PlanJson:
        """`herd plan --json`."""
        wave = self.wave_numbers()
        return {
            "tasks": [_task_json(t, wave[t["id"]]) for t in self.tasks],
            "waves": self.waves,
            "conflicts": [
                {"a": c.a, "b": c.b, "paths": list(c.paths), "reason": c.reason} for c in self.conflicts
            ],
            "warnings": self.warnings,
            "workers": self.workers,
        }


class PlannedTask(TypedDict):
    id: str
    title: str
    priority: int
    scope: list[str]
    out_of_scope: list[str]
    criteria: list[str]
    wave: int


class ConflictJson(TypedDict):
    a: str
    b: str
    paths: list[str]
    reason: str


class PlanJson(TypedDict):
    tasks: list[PlannedTask]
    waves: list[list[str]]
    conflicts: list[ConflictJson]
    warnings: list[str]
    workers: int


def _task_json(task: Record, wave: int) -> PlannedTask:
    scope, out_of_scope = scope_of(task)
    return {
        "id": task["id"],
        "title": task.get("title", ""),
        "priority": task.get("priority", 2),
        "scope": scope,
        "out_of_scope": out_of_scope,
        "criteria": criteria_of(task),
        "wave": wave,
    }


class Selection(list[str]):
    """The ids a batch runs, with notes on what the selection left out and why (shown as
    plan warnings)."""

    def __init__(self, ids: Sequence[str] = (), notes: Sequence[str] = ()) -> None:
        super().__init__(ids)
        self.notes = list(notes)


def select_tasks(
    store: Store, ids: Sequence[str] = (), *, ready: bool = False, parent: str | None = None
) -> list[str]:
    """The ids a batch names: explicit ids, every ready issue, or an epic's open children."""
    from herd.queue.core import expire_leases

    chosen = sum(bool(x) for x in (ids, ready, parent))
    if chosen != 1:
        raise BadInput("name the tasks: IDs, --ready or --parent EPIC (exactly one of them)")
    expire_leases(store)
    if ids:
        return list(dict.fromkeys(ids))
    with store.read() as tx:
        if ready:
            import time

            now = time.time()
            every = sql_work.ready(tx, now=now)
            # `herd ready` lists epics as bd does; a worker cannot do an epic by itself, so
            # running "the ready work" leaves containers out (run --parent EPIC runs one).
            work = sql_work.ready(tx, now=now, exclude_types=NOT_WORK_TYPES | CONTAINER_TYPES)
            kept = set(work)
            left = [i for i in every if i not in kept]
            notes = (
                [
                    f"left out {len(left)} ready epic{'s' if len(left) != 1 else ''} "
                    f"({', '.join(left[:5])}{', ...' if len(left) > 5 else ''}): a container "
                    "is not run as a task; use --parent EPIC to run its children"
                ]
                if left
                else []
            )
            return Selection(work, notes)
        assert parent is not None
        if not sql_issues.existing(tx, [parent]):
            raise NotFound(f"no issue {parent!r}; `herd list --all` shows the ids")
        records = sql_issues.full(tx, sql_work.children_of(tx, parent), counts=False)
    return [r["id"] for r in records if r.get("status") == Status.OPEN]


def _not_open(store: Store, record: Record) -> str:
    """Why a task cannot run, and what to do instead: a task a run holds says which run
    and how to finish it (`herd land` after --no-integrate), not just "not open"."""
    from herd.store import journal as sql_journal

    task_id, status, who = record["id"], record.get("status"), record.get("assignee") or ""
    give_back = f"`herd update {task_id} --status open` gives it back"
    held = status == Status.IN_PROGRESS and who.startswith("herd:")
    run_id = who.removeprefix("herd:").split("/")[0] if held else ""
    with store.read() as tx:
        run = sql_journal.get_run(tx, run_id) if run_id else None
        rows = sql_journal.tasks(tx, run_id) if run else []
    state = next((r["state"] for r in rows if r["task_id"] == task_id), None)
    if run is not None and run["state"] == "running":
        return f"{task_id} is being worked on by run {run_id}: `herd status {run_id}` shows it"
    if run is not None and state == "succeeded":
        return (
            f"{task_id} is held by run {run_id} (succeeded, not landed): "
            f"`herd land {run_id}` lands it, or {give_back}"
        )
    if run is not None:
        return (
            f"{task_id} is {status}, held by run {run_id} ({state or run['state']}): "
            f"`herd resume {run_id}` continues that run, or {give_back}"
        )
    return (
        f"{task_id} is {status}"
        + (f" (assignee {who})" if who else "")
        + "; only open tasks can run: reopen it or leave it out"
    )


def make_plan(
    store: Store,
    task_ids: Sequence[str],
    files: Sequence[str],
    *,
    jobs: int | None = None,
    include_blockers: bool = False,
    cores: int | None = None,
    skip_taken: bool = False,
) -> Plan:
    """Check the set and lay it out in waves; Refused (exit 4) names what is wrong.
    `skip_taken` (a batch herd chose, `--ready`): a task that stopped being open since it
    was chosen (another run claimed it) is left out with a warning instead of refusing all."""
    if not task_ids:
        raise Refused("no tasks to run: nothing is ready, or the epic has no open children")
    notes = list(task_ids.notes) if isinstance(task_ids, Selection) else []
    skipped: list[str] = []
    if skip_taken:
        task_ids, skipped = _still_open(store, task_ids)
        if not task_ids:
            raise Refused(
                f"no tasks to run: every ready task was taken by another run meanwhile ({', '.join(skipped)})"
            )
    with store.read() as tx:
        missing = sql_issues.missing(tx, task_ids)
        if missing:
            raise NotFound(f"no issue {', '.join(missing)}; `herd list --all` shows the ids")
        members = list(task_ids)
        if include_blockers:
            members = _with_blockers(tx, members)
        records = {r["id"]: r for r in sql_issues.full(tx, members, counts=False)}
        ordering, outside, dangling = _blockers(tx, members)
    for task_id in members:
        status = records[task_id].get("status")
        if status != Status.OPEN:
            raise Refused(_not_open(store, records[task_id]))
    if outside:
        task_id, blockers = next(iter(outside.items()))
        raise Refused(
            f"{task_id} is blocked by {', '.join(blockers)} (not in this batch, not "
            "closed); close it, add it to the batch, or pass --include-blockers"
        )
    found = graph.cycles(ordering)
    if found:
        raise Refused("dependency cycle in the batch: " + "; ".join(" -> ".join(c) for c in found))

    warnings: list[str] = [*notes, *(f"skipped {line}" for line in skipped)]
    scopes: dict[str, Scope] = {}
    for task_id in members:
        scopes[task_id] = scope_for(records[task_id])
        if scopes[task_id].unscoped:
            warnings.append(
                f"{task_id} has no scope: it may touch anything (runs side by side; "
                "conflicts are caught at integration)"
            )
        if not criteria_of(records[task_id]):
            warnings.append(f"{task_id} has no success criteria (herd create --criteria)")
    for issue_id, target, dep_type in dangling:
        warnings.append(
            f"{issue_id} depends on {target} ({dep_type}), which is not in the store; it does not block"
        )

    order = _priority_order(members, records)
    conflicts = find_overlaps({t: scopes[t] for t in order if not scopes[t].unscoped}, files)
    waves = _waves(order, ordering, conflicts)
    cores = cores or os.cpu_count() or 1
    largest = max(len(w) for w in waves)
    if jobs is not None:
        if jobs < 1:
            raise BadInput(f"-j {jobs}: need at least one worker")
        workers = jobs
        if jobs > cores:
            warnings.append(
                f"-j {jobs} is above the {cores} CPU cores: fine for agents that "
                "wait on the network, slow for CPU-bound work"
            )
    else:
        workers = max(1, min(MAX_DEFAULT_WORKERS, cores, largest))
    tasks = [records[t] for t in order]
    return Plan(
        tasks=tasks,
        waves=waves,
        conflicts=conflicts,
        warnings=warnings,
        workers=workers,
        scopes=scopes,
        after={t: list(dict.fromkeys(b)) for t, b in ordering.items() if b},
    )


def _still_open(store: Store, task_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the ids still open, "ID: now STATUS (assignee A)" for the others)."""
    with store.read() as tx:
        records = {r["id"]: r for r in sql_issues.full(tx, list(task_ids), counts=False)}
    kept, skipped = [], []
    for task_id in task_ids:
        record = records.get(task_id)
        if record is not None and record.get("status") != Status.OPEN:
            who = record.get("assignee")
            skipped.append(
                f"{task_id}: {record.get('status')}"
                + (f" (assignee {who})" if who else "")
                + " since it was selected"
            )
            continue
        kept.append(task_id)
    return kept, skipped


def _priority_order(members: Sequence[str], records: Mapping[str, Record]) -> list[str]:
    """Most urgent first; equal priorities keep the order the batch named them in."""
    position = {t: n for n, t in enumerate(members)}
    return sorted(members, key=lambda t: (records[t].get("priority", 2), position[t]))


def _waves(
    order: Sequence[str], ordering: Mapping[str, Sequence[str]], conflicts: Sequence[Overlap]
) -> list[list[str]]:
    """Greedy layering: a task goes one wave after every in-set blocker and after every
    earlier task whose scope overlaps its own."""
    clashes: dict[str, set[str]] = {}
    for c in conflicts:
        clashes.setdefault(c.a, set()).add(c.b)
        clashes.setdefault(c.b, set()).add(c.a)
    rank = {t: i for i, t in enumerate(order)}
    placed: dict[str, int] = {}
    pending = list(order)
    while pending:
        progressed = False
        for task in list(pending):
            blockers = ordering.get(task, ())
            if any(b not in placed for b in blockers):
                continue
            after = [placed[b] + 1 for b in blockers]
            after += [placed[o] + 1 for o in clashes.get(task, ()) if o in placed and rank[o] < rank[task]]
            placed[task] = max(after, default=0)
            pending.remove(task)
            progressed = True
        if not progressed:  # cycles were refused before; this is a guard, not a path
            raise Refused(f"cannot order {', '.join(pending)}")
    waves: list[list[str]] = [[] for _ in range(max(placed.values()) + 1)]
    for task in order:
        waves[placed[task]].append(task)
    return [w for w in waves if w]


def _blockers(
    tx: sqlite3.Connection, members: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]], list[tuple[str, str, str]]]:
    """For each task: blockers inside the set (ordering), what blocks it from outside the set
    (refusal), and edges to ids not in the store (warnings).

    Whether a task is blocked is the store's answer (its blocked-set SQL, with the batch's
    own members counting as done); the edges only name the blockers and order the set."""
    in_set = set(members)
    ordering: dict[str, list[str]] = {t: [] for t in members}
    own: dict[str, list[str]] = {}  # active blockers outside the set, the task's or an ancestor's
    parents: dict[str, list[str]] = {}
    dangling: list[tuple[str, str, str]] = []
    for task, node, target, dep_type, target_status in sql_batch.batch_edges(tx, members):
        if target_status is None:
            if node == task:
                dangling.append((task, target, dep_type))
        elif target in in_set:
            if target != task and (dep_type != PARENT_CHILD or node == task):
                ordering[task].append(target)
        elif dep_type == PARENT_CHILD:
            parents.setdefault(task, []).append(target)
        elif target_status not in RESOLVED_STATUSES:
            own.setdefault(task, []).append(target)
    blocked = sql_batch.blocked_outside(tx, members)
    outside = {
        task: list(dict.fromkeys(own.get(task) or parents.get(task) or ["?"]))
        for task in members
        if task in blocked
    }
    return ordering, outside, dangling


def _with_blockers(tx: sqlite3.Connection, members: list[str]) -> list[str]:
    """The set plus every open issue that blocks a member, transitively."""
    result = list(members)
    seen = set(members)
    frontier = list(members)
    while frontier:
        node = frontier.pop()
        for target in sql_work.open_blockers(tx, node):
            if target not in seen:
                seen.add(target)
                result.append(target)
                frontier.append(target)
    return result
