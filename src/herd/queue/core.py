"""The task queue: bd's issue operations and rules over the store.

Every status change goes through `_set_status`; every write that can change
what is blocked rebuilds the blocked set in the same transaction, so a
`close` makes its dependents ready in the same command.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence

from herd.errors import BadInput, NotFound, Refused
from herd.queue import graph, ids, rules
from herd.queue.model import (
    BLOCKS,
    CYCLE_CHECKED_TYPES,
    PARENT_CHILD,
    Record,
    Status,
    now_iso,
    set_field,
)
from herd.queue.reading import Reader, default_actor, expire_leases
from herd.store import DB_NAME, HERD_DIR, Store, jsonl
from herd.store import issues as sql_issues
from herd.store import work as sql_work

__all__ = ["DEFAULT_LEASE_SECONDS", "CloseResult", "Queue", "default_actor", "expire_leases", "init"]

TYPE_CHECKING = False  # not `typing`'s: importing typing costs a claim several ms
if TYPE_CHECKING:
    from pathlib import Path

    from herd.queue.importer import ImportResult, Progress

DEFAULT_PREFIX = "herd"
#: How long a claim holds without renewal before the task is offered again (`--lease`).
DEFAULT_LEASE_SECONDS = 30 * 60

_GITIGNORE = "# herd runtime state: the store, worktrees and run logs stay local.\n*\n"


def init(root: Path, prefix: str | None = None, db: Path | None = None) -> Store:
    """Create `.herd/` (store, config, gitignore) in `root`, or only the store file `db`
    when one is named; idempotent."""
    if db is None:
        herd_dir = root / HERD_DIR
        herd_dir.mkdir(parents=True, exist_ok=True)
        gitignore = herd_dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(_GITIGNORE)
        config = herd_dir / "config.toml"
        if not config.exists():
            config.write_text("# herd configuration. Agent presets: [agents.NAME] argv = [...]\n")
        db = herd_dir / DB_NAME
    store = Store(db, create=True)
    if prefix or store.get_config("issue_prefix") is None:
        chosen = prefix or _prefix_for(root)
        if not chosen.replace("-", "").replace("_", "").isalnum():
            raise BadInput(f"prefix {chosen!r} must be letters, digits, - or _")
        store.set_config("issue_prefix", chosen)
    return store


def _prefix_for(root: Path) -> str:
    name = "".join(c for c in root.resolve().name.lower() if c.isalnum() or c in "-_")
    return name[:12] or DEFAULT_PREFIX


class CloseResult:
    """bd closes what it can: each refused id is reported, the others are closed.
    (A plain class: `dataclasses` costs a claim 6 ms of imports.)"""

    def __init__(self) -> None:
        self.closed: list[Record] = []
        self.refused: list[str] = []


class Queue(Reader):
    """Issue operations on one store. Library code: raises, never prints."""

    # -- writing ------------------------------------------------------------

    def create(
        self,
        title: str,
        *,
        description: str = "",
        issue_type: str = "task",
        priority: int = 2,
        scope: Sequence[str] = (),
        out_of_scope: Sequence[str] = (),
        criteria: Sequence[str] = (),
        deps: Sequence[str] = (),
        parent: str | None = None,
        labels: Sequence[str] = (),
        assignee: str | None = None,
    ) -> Record:
        if not title.strip():
            raise BadInput('a title is required: herd create "what to do"')
        rules.check_priority(priority)
        now = now_iso()
        with self.store.write() as tx:
            self._require(tx, [*deps, *([parent] if parent else [])])
            if parent:
                issue_id = ids.child_id(parent, sql_issues.children_count(tx, parent))
                while sql_issues.existing(tx, [issue_id]):
                    issue_id = ids.child_id(parent, int(issue_id.rsplit(".", 1)[1]))
            else:
                prefix = self.store.get_config("issue_prefix") or DEFAULT_PREFIX
                issue_id = ids.new_id(
                    prefix,
                    f"{title}\0{description}\0{self.actor}\0{time.time_ns()}",
                    sql_issues.count(tx),
                    lambda c: bool(sql_issues.existing(tx, [c])),
                )
            record: Record = {"id": issue_id, "title": title}
            if description:
                record["description"] = description
            if criteria:
                record["acceptance_criteria"] = "\n".join(
                    f"{n}. {text}" for n, text in enumerate(criteria, start=1)
                )
            record.update({"status": Status.OPEN.value, "priority": priority, "issue_type": issue_type})
            if assignee:
                record["assignee"] = assignee
            record.update({"created_at": now, "created_by": self.actor, "updated_at": now})
            if labels:
                record["labels"] = list(dict.fromkeys(labels))
            dependencies = [self._dep(issue_id, target, BLOCKS, now) for target in deps]
            if parent:
                dependencies.append(self._dep(issue_id, parent, PARENT_CHILD, now))
            if dependencies:
                record["dependencies"] = dependencies
            if scope or out_of_scope:
                record["metadata"] = {"herd": {"scope": list(scope), "out_of_scope": list(out_of_scope)}}
            sql_issues.put_issues(tx, [record])
            sql_work.rebuild_blocked(tx)
            return sql_issues.full(tx, [issue_id])[0]

    def update(
        self,
        issue_id: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        priority: int | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Record:
        if status is not None:
            rules.check_status_name(status)
        if priority is not None:
            rules.check_priority(priority)
        with self.store.write() as tx:
            record = self._record(tx, issue_id)
            if status is not None:
                _set_status(record, status)
                if status != Status.IN_PROGRESS:
                    sql_work.release_claim(tx, issue_id)
            for key, value in (
                ("assignee", assignee),
                ("priority", priority),
                ("title", title),
                ("description", description),
            ):
                if value is not None:
                    set_field(record, key, value)
            set_field(record, "updated_at", now_iso())
            sql_issues.update_issue(tx, record)
            if status is not None:
                sql_work.rebuild_blocked(tx)
            return sql_issues.full(tx, [issue_id])[0]

    def claim(
        self, issue_id: str, actor: str | None = None, lease_seconds: float | None = DEFAULT_LEASE_SECONDS
    ) -> Record:
        """Compare-and-swap claim; Refused (exit 4) when someone else has it."""
        with self.store.write() as tx:
            return self._claim_in(tx, issue_id, actor or self.actor, lease_seconds)

    def take_over(
        self, issue_id: str, old_actor: str, actor: str, lease_seconds: float | None = DEFAULT_LEASE_SECONDS
    ) -> Record:
        """Claim an issue that `old_actor` holds or nobody does, in one transaction (a run's
        new owner taking over a dead owner's claims); Refused when someone else has it."""
        with self.store.write() as tx:
            sql_work.transfer_claim(tx, issue_id, old_actor, actor)
            return self._claim_in(tx, issue_id, actor, lease_seconds)

    def _claim_in(
        self, tx: sqlite3.Connection, issue_id: str, who: str, lease_seconds: float | None
    ) -> Record:
        """The compare-and-swap claim inside a write transaction; Refused when it is lost."""
        record = self._record(tx, issue_id)
        if not sql_work.claim(tx, issue_id, who, time.time(), lease_seconds):
            holder = record.get("assignee") or "nobody"
            raise Refused(
                f"{issue_id} is {record.get('status')} (assignee {holder}); claim lost, nothing changed"
            )
        self._mark_claimed(tx, issue_id, who)
        return sql_issues.full(tx, [issue_id])[0]

    def claim_next_ready(
        self,
        actor: str | None = None,
        *,
        labels: Sequence[str] = (),
        sort: str = sql_work.DEFAULT_SORT,
        lease_seconds: float | None = DEFAULT_LEASE_SECONDS,
    ) -> Record | None:
        """Claim the first ready, unassigned issue in one transaction (None when there is
        none), as bd's ClaimReadyIssueInTx: issues assigned to someone are never taken."""
        rules.check_sort(sort)
        who = actor or self.actor
        now = time.time()
        with self.store.write() as tx:
            sql_work.expire_leases(tx, now, now_iso())
            for candidate in sql_work.ready(tx, now=now, labels=labels, sort=sort, limit=20, unassigned=True):
                if sql_work.claim(tx, candidate, who, now, lease_seconds):
                    self._mark_claimed(tx, candidate, who)
                    return sql_issues.full(tx, [candidate])[0]
        return None

    def hold(self, issue_id: str, actor: str, comment: str | None = None) -> bool:
        """Keep a claim without a lease (work is done but waits for landing), saying why."""
        with self.store.write() as tx:
            held = sql_work.hold_claim(tx, issue_id, actor)
            if comment:
                self._comment(tx, issue_id, comment)
            return held

    def renew_lease(self, issue_id: str, actor: str, seconds: float) -> bool:
        with self.store.write() as tx:
            return sql_work.renew_lease(tx, issue_id, actor, time.time() + seconds)

    def close(
        self, issue_ids: Sequence[str], *, reason: str | None = None, force: bool = False
    ) -> list[Record]:
        """Close issues; Refused when none could be closed (see `close_each`)."""
        result = self.close_each(issue_ids, reason=reason, force=force)
        if result.refused and not result.closed:
            raise Refused("; ".join(result.refused))
        return result.closed

    def close_each(
        self, issue_ids: Sequence[str], *, reason: str | None = None, force: bool = False
    ) -> CloseResult:
        """Close each issue bd's guards let through (cmd/bd/close.go), reporting the others:
        a pinned issue, an epic with open children, an issue with active `blocks`,
        `conditional-blocks` or `waits-for` targets. `force` skips the guards."""
        result = CloseResult()
        with self.store.write() as tx:
            self._require(tx, issue_ids)
            closed = []
            for issue_id in dict.fromkeys(issue_ids):
                record = self._record(tx, issue_id)
                refusal = None if force else rules.close_guard(tx, record)
                if refusal:
                    result.refused.append(refusal)
                    continue
                _set_status(record, Status.CLOSED, reason=reason)
                sql_issues.update_issue(tx, record)
                sql_work.release_claim(tx, issue_id)
                closed.append(issue_id)
            # Each close can free the next one's blockers in bd's loop; here one rebuild
            # after all of them gives the same blocked set.
            sql_work.rebuild_blocked(tx)
            result.closed = sql_issues.full(tx, closed)
        return result

    def reopen(self, issue_id: str, reason: str | None = None) -> Record:
        with self.store.write() as tx:
            record = self._record(tx, issue_id)
            _set_status(record, Status.OPEN)
            sql_issues.update_issue(tx, record)
            if reason:
                self._comment(tx, issue_id, f"Reopened: {reason}")
            sql_work.rebuild_blocked(tx)
            return sql_issues.full(tx, [issue_id])[0]

    def release(self, issue_id: str, comment: str | None = None) -> None:
        """Give a claimed issue back: open, unassigned, with an optional comment saying why."""
        with self.store.write() as tx:
            record = self._record(tx, issue_id)
            if record.get("status") == Status.IN_PROGRESS:
                _set_status(record, Status.OPEN)
            record.pop("assignee", None)
            sql_issues.update_issue(tx, record)
            sql_work.release_claim(tx, issue_id)
            if comment:
                self._comment(tx, issue_id, comment)
            sql_work.rebuild_blocked(tx)

    def dep_add(self, issue_id: str, target: str, dep_type: str = BLOCKS) -> None:
        """bd's AddDependencyInTx rules: no self-dependency; `blocks` only between two epics
        or two non-epics; only `blocks`/`conditional-blocks` edges are cycle-checked."""
        if issue_id == target:
            raise Refused(f"{issue_id} cannot depend on itself")
        with self.store.write() as tx:
            self._require(tx, [issue_id, target])
            if dep_type == BLOCKS:
                rules.check_block_types(self._record(tx, issue_id), self._record(tx, target))
            if dep_type in CYCLE_CHECKED_TYPES:
                edges = graph.adjacency((a, b) for a, b, _ in sql_work.cycle_edges(tx))
                back = graph.path_between(edges, target, issue_id)
                if back:
                    cycle = " -> ".join([issue_id, *back])
                    raise Refused(f"adding {issue_id} -> {target} would make a cycle: {cycle}")
            dep = self._dep(issue_id, target, dep_type, now_iso())
            added = sql_work.add_dependency(
                tx, issue_id, target, dep_type, json.dumps(dep, separators=(",", ":"))
            )
            if added:
                self._touch(tx, issue_id)
                sql_work.rebuild_blocked(tx)

    def dep_rm(self, issue_id: str, target: str, dep_type: str | None = None) -> None:
        with self.store.write() as tx:
            self._require(tx, [issue_id])
            if not sql_work.remove_dependency(tx, issue_id, target, dep_type):
                raise NotFound(
                    f"{issue_id} has no dependency on {target}" + (f" of type {dep_type}" if dep_type else "")
                )
            self._touch(tx, issue_id)
            sql_work.rebuild_blocked(tx)

    def comment(self, issue_id: str, text: str, author: str | None = None) -> Record:
        if not text.strip():
            raise BadInput("comment text is empty")
        with self.store.write() as tx:
            self._require(tx, [issue_id])
            return self._comment(tx, issue_id, text, author)

    def label(self, issue_id: str, label: str, *, add: bool) -> bool:
        with self.store.write() as tx:
            self._require(tx, [issue_id])
            changed = (
                sql_issues.add_label(tx, issue_id, label)
                if add
                else sql_issues.remove_label(tx, issue_id, label)
            )
            if changed:
                self._touch(tx, issue_id)
            return changed

    # -- beads JSONL --------------------------------------------------------

    def import_jsonl(self, path: Path, progress: Progress | None = None) -> ImportResult:
        """Validate the whole file first, then upsert it in one transaction: a bad line
        writes nothing (the rules: `herd.queue.importer`)."""
        from herd.queue.importer import import_jsonl

        return import_jsonl(self.store, path, progress)

    def export_lines(self, *, include_ephemeral: bool = False) -> Iterable[str]:
        """bd's `export`: every issue, ordered as bd orders it (priority, then newest first,
        then id), each line tagged `"_type": "issue"` and carrying its derived counts;
        ephemeral issues (wisps) only when asked for, as `bd export --all`."""
        with self.store.read() as tx:
            every = sql_issues.export_ids(tx, include_ephemeral=include_ephemeral)
            for start in range(0, len(every), 2000):
                for record in sql_issues.full(tx, every[start : start + 2000], add_counts=True):
                    yield jsonl.encode({"_type": "issue", **record}) + "\n"

    # -- helpers ------------------------------------------------------------

    def _record(self, tx: sqlite3.Connection, issue_id: str) -> Record:
        record = sql_issues.get(tx, issue_id)
        if record is None:
            raise NotFound(f"no issue {issue_id!r}; `herd list --all` shows the ids")
        return record

    def _mark_claimed(self, tx: sqlite3.Connection, issue_id: str, actor: str) -> None:
        record = self._record(tx, issue_id)
        _set_status(record, Status.IN_PROGRESS)
        set_field(record, "assignee", actor)
        sql_issues.update_issue(tx, record)

    def _touch(self, tx: sqlite3.Connection, issue_id: str) -> None:
        record = self._record(tx, issue_id)
        set_field(record, "updated_at", now_iso())
        sql_issues.update_issue(tx, record)

    def _comment(self, tx: sqlite3.Connection, issue_id: str, text: str, author: str | None = None) -> Record:
        # bd >= 1.0 gives comments UUID string ids; older files' integer ids are kept as-is.
        import uuid  # here: it costs every other command 2 ms of imports

        comment: Record = {
            "id": str(uuid.uuid4()),
            "issue_id": issue_id,
            "author": author or self.actor,
            "text": text,
            "created_at": now_iso(),
        }
        sql_issues.add_comment(tx, issue_id, comment)
        self._touch(tx, issue_id)
        return comment

    def _dep(self, issue_id: str, target: str, dep_type: str, now: str) -> Record:
        return {
            "issue_id": issue_id,
            "depends_on_id": target,
            "type": dep_type,
            "created_at": now,
            "created_by": self.actor,
        }


def _set_status(record: Record, status: str, *, reason: str | None = None) -> None:
    """The one place an issue's status changes, with the fields bd keeps beside it."""
    now = now_iso()
    set_field(record, "status", str(status))
    set_field(record, "updated_at", now)
    if status == Status.CLOSED:
        set_field(record, "closed_at", now)
        if reason:
            set_field(record, "close_reason", reason)
    else:
        record.pop("closed_at", None)
        record.pop("close_reason", None)
    # The first start counts: a re-claim keeps it (bd GH#2796).
    if status == Status.IN_PROGRESS and not record.get("started_at"):
        set_field(record, "started_at", now)
