"""Closing what a landing landed, in one transaction, against a real store."""

from __future__ import annotations

from pathlib import Path

from herd.queue import core as queue_mod
from herd.queue.landed import close_landed
from herd.queue.model import Status


def test_close_landed_closes_comments_releases_and_unblocks(tmp_path: Path) -> None:
    store = queue_mod.init(tmp_path, "t")
    queue = queue_mod.Queue(store, actor="herd")
    landed = queue.create("landed task")["id"]
    closed_before = queue.create("closed by someone")["id"]
    waiting = queue.create("waits on the landed task")["id"]
    queue.dep_add(waiting, landed)
    queue.claim(landed, "herd:run/w1", 600)
    queue.close([closed_before], reason="done by hand")
    assert waiting not in [r["id"] for r in queue.ready()]

    closed = close_landed(
        queue,
        [
            (landed, "landed in abc1234", "herd run r: landed in abc1234 on main"),
            (closed_before, "landed in def5678", "herd run r: landed in def5678 on main"),
        ],
    )

    assert closed == [landed]
    record = queue.get(landed)
    assert record["status"] == Status.CLOSED
    assert record["close_reason"] == "landed in abc1234"
    assert [c["text"] for c in queue.comments(landed)] == ["herd run r: landed in abc1234 on main"]
    # The same record as the one-by-one path it replaces (close --force, then comment).
    twin = queue.create("landed task")["id"]
    queue.claim(twin, "herd:run/w1", 600)
    queue.close([twin], reason="landed in abc1234", force=True)
    queue.comment(twin, "herd run r: landed in abc1234 on main")
    volatile = {"id", "created_at", "updated_at", "closed_at", "started_at", "comments"}
    assert {k: v for k, v in record.items() if k not in volatile} == {
        k: v for k, v in queue.get(twin).items() if k not in volatile
    }
    # Someone else's close stands as they made it, without a landing comment.
    assert queue.get(closed_before)["close_reason"] == "done by hand"
    assert queue.comments(closed_before) == []
    # The blocked set was rebuilt in the same transaction.
    assert waiting in [r["id"] for r in queue.ready()]
    store.close()


def test_close_landed_of_nothing_writes_nothing(tmp_path: Path) -> None:
    store = queue_mod.init(tmp_path, "t")
    queue = queue_mod.Queue(store, actor="herd")
    assert close_landed(queue, []) == []
    store.close()
