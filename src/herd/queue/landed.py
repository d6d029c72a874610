"""Closing the issues a landing landed: all of them in one transaction.

One `Queue.close` and one `Queue.comment` per task cost two write transactions
and a rebuild of the blocked set each; landing 50 tasks spent a third of its
time there. Here every close, its comment and the claim's release share one
transaction and one rebuild: the same rows as `close_each(force=True)` followed
by `comment`, and all-or-nothing if the process dies half-way.
"""

from __future__ import annotations

from collections.abc import Sequence

from herd.queue.core import Queue, _set_status
from herd.queue.model import Status
from herd.store import issues as sql_issues
from herd.store import work as sql_work


def close_landed(queue: Queue, landed: Sequence[tuple[str, str, str]]) -> list[str]:
    """Close each (issue id, close reason, comment) not already closed, and comment on it;
    the ids closed now. Issues someone else closed meanwhile are left as they are."""
    closed: list[str] = []
    with queue.store.write() as tx:
        for issue_id, reason, comment in landed:
            record = queue._record(tx, issue_id)
            if record.get("status") == Status.CLOSED:
                continue
            _set_status(record, Status.CLOSED, reason=reason)
            sql_issues.update_issue(tx, record)
            sql_work.release_claim(tx, issue_id)
            queue._comment(tx, issue_id, comment)
            closed.append(issue_id)
        if closed:
            sql_work.rebuild_blocked(tx)
    return closed
