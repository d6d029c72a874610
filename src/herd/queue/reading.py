"""The queue's reads: records, the ready queue, the blocked list, stats, the graph.

The answers that can be long (`list`, `ready`, `blocked`) also come as streams of JSON
texts, one record each, read from SQLite chunk by chunk (`store.records`): nothing holds
every record at once and no record is decoded on its way to stdout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence

from herd.errors import NotFound
from herd.queue import graph, rules
from herd.queue.model import Record, Status, now_iso
from herd.store import Store, records
from herd.store import issues as sql_issues
from herd.store import work as sql_work


def default_actor() -> str:
    for var in ("HERD_ACTOR", "BD_ACTOR"):
        if os.environ.get(var):
            return os.environ[var]
    import getpass  # here: most callers name the actor, and the import costs them 3 ms

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def expire_leases(store: Store) -> list[str]:
    """Give back the tasks whose claim's lease ran out (their worker died or hung), so they
    are ready again. Cheap when there are none: one indexed read, no write."""
    now = time.time()
    with store.read() as tx:
        if not sql_work.has_expired_leases(tx, now):
            return []
    with store.write() as tx:
        return sql_work.expire_leases(tx, now, now_iso())


class Reader:
    """Read operations on one store (the base of `Queue`)."""

    def __init__(self, store: Store, actor: str | None = None) -> None:
        self.store = store
        self._actor = actor

    @property
    def actor(self) -> str:
        """Who acts: as given, else `default_actor()` (asked only when needed)."""
        if not self._actor:
            self._actor = default_actor()
        return self._actor

    def get(self, issue_id: str) -> Record:
        with self.store.read() as tx:
            found = sql_issues.full(tx, [issue_id])
        if not found:
            raise NotFound(f"no issue {issue_id!r}; `herd list --all` shows the ids")
        return found[0]

    def show(self, issue_ids: Sequence[str]) -> list[Record]:
        with self.store.read() as tx:
            self._require(tx, issue_ids)
            return sql_issues.full(tx, list(issue_ids))

    def list_issues(
        self,
        *,
        statuses: Sequence[str] | None = None,
        include_closed: bool = False,
        label: str | None = None,
        issue_type: str | None = None,
        limit: int = 0,
    ) -> list[Record]:
        return list(
            records.decoded(
                self.list_json(
                    statuses=statuses,
                    include_closed=include_closed,
                    label=label,
                    issue_type=issue_type,
                    limit=limit,
                )
            )
        )

    def list_json(
        self,
        *,
        statuses: Sequence[str] | None = None,
        include_closed: bool = False,
        label: str | None = None,
        issue_type: str | None = None,
        limit: int = 0,
    ) -> Iterator[str]:
        """`list`'s records as JSON texts, streamed."""
        if statuses:
            rules.check_statuses(statuses)
        elif not include_closed:
            statuses = [s.value for s in Status if s not in (Status.CLOSED, Status.TOMBSTONE)]
        with self.store.read() as tx:
            yield from records.texts(
                sql_issues.select_rows(
                    tx,
                    columns=records.COLUMNS,
                    statuses=statuses,
                    label=label,
                    issue_type=issue_type,
                    limit=limit,
                )
            )

    def ready(
        self,
        *,
        limit: int = 0,
        labels: Sequence[str] = (),
        sort: str = sql_work.DEFAULT_SORT,
        assignee: str | None = None,
        unassigned: bool = False,
    ) -> list[Record]:
        return list(
            records.decoded(
                self.ready_json(
                    limit=limit, labels=labels, sort=sort, assignee=assignee, unassigned=unassigned
                )
            )
        )

    def ready_json(
        self,
        *,
        limit: int = 0,
        labels: Sequence[str] = (),
        sort: str = sql_work.DEFAULT_SORT,
        assignee: str | None = None,
        unassigned: bool = False,
    ) -> Iterator[str]:
        """`ready`'s records as JSON texts, streamed."""
        rules.check_sort(sort)
        expire_leases(self.store)
        with self.store.read() as tx:
            yield from records.texts(
                sql_work.ready_rows(
                    tx,
                    columns=records.COLUMNS,
                    now=time.time(),
                    limit=limit,
                    labels=labels,
                    sort=sort,
                    assignee=assignee,
                    unassigned=unassigned,
                )
            )

    def blocked(self) -> list[Record]:
        return list(records.decoded(self.blocked_json()))

    def blocked_json(self) -> Iterator[str]:
        """Blocked records with `blocked_by` and `blocked_by_count`, as JSON texts."""
        with self.store.read() as tx:
            for *row, own, parents in sql_work.blocked_rows(tx, records.COLUMNS):
                # Own blockers, else the blocked parents; SQLite wrote both as JSON arrays.
                found = own if own != "[]" else parents
                if found == "[]":
                    continue
                count = len(json.loads(found))
                if '"blocked_by' in row[1]:  # a field of the record's own is in the way
                    yield records.text_of(
                        tuple(row), ("blocked_by", json.loads(found), "blocked_by_count", count)
                    )
                else:
                    text = records.text_of(tuple(row))
                    yield f'{text[:-1]},"blocked_by":{found},"blocked_by_count":{count}}}'

    def dangling(self) -> list[tuple[str, str, str]]:
        with self.store.read() as tx:
            return sql_work.dangling_edges(tx)

    def children(self, parent_id: str) -> list[Record]:
        """An epic's children (parent-child dependents), whole."""
        with self.store.read() as tx:
            return sql_issues.full(tx, sql_work.children_of(tx, parent_id), counts=False)

    def comments(self, issue_id: str) -> list[Record]:
        with self.store.read() as tx:
            self._require(tx, [issue_id])
            return sql_issues.comments_of(tx, issue_id)

    def stats(self) -> dict[str, object]:
        """bd's `stats` summary, computed as bd computes it (issueops/statistics.go and
        DoltStore.GetStatistics): pinned counts the `pinned` flag, blocked counts issues
        blocked by their own edges, and ready is open minus blocked."""
        expire_leases(self.store)
        with self.store.read() as tx:
            counts = sql_issues.status_counts(tx)
            pinned = sql_issues.pinned_count(tx)
            blocked = sql_work.direct_blocked_count(tx)
        total = sum(n for s, n in counts.items() if s != Status.TOMBSTONE)
        open_issues = counts.get("open", 0)
        return {
            "summary": {
                "total_issues": total,
                "open_issues": open_issues,
                "in_progress_issues": counts.get("in_progress", 0),
                "closed_issues": counts.get("closed", 0),
                "blocked_issues": blocked,
                "deferred_issues": counts.get("deferred", 0),
                "ready_issues": max(open_issues - blocked, 0),
                "pinned_issues": pinned,
            }
        }

    def cycles(self) -> list[list[str]]:
        with self.store.read() as tx:
            edges = sql_work.cycle_edges(tx)
        return graph.cycles(graph.adjacency((a, b) for a, b, _ in edges))

    def tree(self, issue_id: str) -> list[str]:
        with self.store.read() as tx:
            self._require(tx, [issue_id])
            children: dict[str, list[tuple[str, str]]] = {}
            frontier, seen = [issue_id], {issue_id}
            while frontier:
                node = frontier.pop()
                children[node] = sql_work.dependencies_of(tx, node)
                for target, _ in children[node]:
                    if target not in seen:
                        seen.add(target)
                        frontier.append(target)
            found = sql_issues.full(tx, sorted(seen), counts=False)
        labels = {
            r["id"]: f"{r['id']} [P{r.get('priority', 2)}] {r.get('status')} - {r.get('title', '')}"
            for r in found
        }
        return graph.tree_lines(issue_id, children, labels)

    def _require(self, tx: sqlite3.Connection, issue_ids: Iterable[str]) -> None:
        missing = sql_issues.missing(tx, list(issue_ids))
        if missing:
            raise NotFound(f"no issue {', '.join(missing)}; `herd list --all` shows the ids")
