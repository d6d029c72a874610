"""The queue library over a real SQLite file: store discovery, bd's ready/blocked rules,
close/reopen, sorting, ids, claims and leases."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, cast

import pytest

from herd.errors import BadInput, NotFound, Refused
from herd.queue.core import Queue, init
from herd.queue.model import NOT_WORK_TYPES
from herd.store import Store, find_db, find_db_file, posix_path_text
from herd.store.schema import SCHEMA_VERSION


def iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(issue_id: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": issue_id,
        "title": fields.pop("title", issue_id),
        "status": "open",
        "priority": 2,
        "issue_type": "task",
        "created_at": iso(timedelta(days=-10)),
    }
    deps = fields.pop("deps", [])
    record.update(fields)
    if deps:
        record["dependencies"] = [
            {"issue_id": issue_id, "depends_on_id": target, "type": kind} for target, kind in deps
        ]
    return record


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return Queue(init(tmp_path, "t"), actor="tester")


def load(queue: Queue, tmp_path: Path, *records: dict[str, Any]) -> None:
    from _queue_helpers import write_jsonl

    queue.import_jsonl(write_jsonl(tmp_path / "in.jsonl", list(records)))


def ready_ids(queue: Queue, **kwargs: Any) -> list[str]:
    return [r["id"] for r in queue.ready(**kwargs)]


def blocked_map(queue: Queue) -> dict[str, list[str]]:
    return {r["id"]: r["blocked_by"] for r in queue.blocked()}


# -- store ---------------------------------------------------------------------


def test_store_is_found_by_walking_up_and_overridden_by_flag_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init(tmp_path, "t").close()
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.delenv("HERD_DB", raising=False)
    assert find_db(start=deep) == tmp_path / ".herd" / "herd.db"
    assert find_db("/elsewhere/x.db", start=deep) == Path("/elsewhere/x.db")
    monkeypatch.setenv("HERD_DB", "/env/y.db")
    assert find_db(start=deep) == Path("/env/y.db")
    assert find_db("/flag/z.db", start=deep) == Path("/flag/z.db")
    # The click-free commands take the text of the same path, without pathlib.
    assert find_db_file("/flag/z.db", start=deep) == "/flag/z.db"
    monkeypatch.delenv("HERD_DB")
    assert find_db_file(start=deep) == str(tmp_path.resolve() / ".herd" / "herd.db")
    assert find_db_file(start=str(deep)) == str(find_db(start=deep))


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "/",
        "//",
        "///",
        "x.db",
        "./x.db",
        "a//b/",
        "a/./b/.",
        "/a/../b",
        "//a//b",
        "////a",
        "../x",
        ".a/b.",
    ],
)
def test_a_store_path_as_text_reads_as_pathlib_writes_it(text: str) -> None:
    assert posix_path_text(text) == str(PurePosixPath(text))


def test_no_store_upwards_says_run_herd_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERD_DB", raising=False)
    with pytest.raises(NotFound, match="herd init"):
        find_db(start=tmp_path)


def test_store_uses_wal_and_records_schema_version(tmp_path: Path) -> None:
    init(tmp_path, "t").close()
    conn = sqlite3.connect(tmp_path / ".herd" / "herd.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
    conn.close()


def test_newer_schema_is_refused_not_clobbered(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    Store(db, create=True).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(BadInput, match="newer"):
        Store(db)


# -- ready / blocked -------------------------------------------------------------


def test_blocks_and_conditional_blocks_block_until_closed_or_pinned(queue: Queue, tmp_path: Path) -> None:
    load(
        queue,
        tmp_path,
        issue("t-a"),
        issue("t-b", deps=[("t-a", "blocks")]),
        issue("t-c", deps=[("t-a", "conditional-blocks")]),
        issue("t-pin", status="pinned"),
        issue("t-d", deps=[("t-pin", "blocks")]),
        issue("t-e", deps=[("t-a", "related"), ("t-a", "discovered-from")]),
    )
    assert blocked_map(queue) == {"t-b": ["t-a"], "t-c": ["t-a"]}
    assert set(ready_ids(queue, limit=0)) == {"t-a", "t-d", "t-e"}


def test_parent_child_blocking_is_transitive(queue: Queue, tmp_path: Path) -> None:
    load(
        queue,
        tmp_path,
        issue("t-gate"),
        issue("t-epic", issue_type="epic", deps=[("t-gate", "blocks")]),
        issue("t-epic.1", deps=[("t-epic", "parent-child")]),
        issue("t-epic.1.1", deps=[("t-epic.1", "parent-child")]),
        issue("t-free"),
        issue("t-free.1", deps=[("t-free", "parent-child")]),
    )
    blocked = blocked_map(queue)
    assert blocked["t-epic"] == ["t-gate"]
    assert blocked["t-epic.1"] == ["t-epic"]
    assert blocked["t-epic.1.1"] == ["t-epic.1"]
    assert set(ready_ids(queue, limit=0)) == {"t-gate", "t-free", "t-free.1"}
    queue.close(["t-gate"])
    assert {"t-epic.1", "t-epic.1.1"} <= set(ready_ids(queue, limit=0))
    assert "t-epic" in ready_ids(queue, limit=0)  # bd lists an unblocked epic as ready


def test_waits_for_blocks_while_target_has_an_unclosed_child(queue: Queue, tmp_path: Path) -> None:
    load(
        queue,
        tmp_path,
        issue("t-mol", issue_type="epic"),
        issue("t-mol.1", deps=[("t-mol", "parent-child")]),
        issue("t-mol.2", status="closed", deps=[("t-mol", "parent-child")]),
        issue("t-after", deps=[("t-mol", "waits-for")]),
        issue("t-lonely", issue_type="epic"),
        issue("t-after2", deps=[("t-lonely", "waits-for")]),
    )
    assert blocked_map(queue) == {"t-after": ["t-mol"]}
    queue.close(["t-mol.1"])
    assert "t-after" in ready_ids(queue, limit=0)
    assert "t-after2" in ready_ids(queue, limit=0)


def test_edge_to_missing_id_does_not_block_and_is_reported(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a", deps=[("t-gone", "blocks"), ("t-gone2", "parent-child")]))
    assert ready_ids(queue) == ["t-a"]
    assert blocked_map(queue) == {}
    assert queue.dangling() == [("t-a", "t-gone", "blocks"), ("t-a", "t-gone2", "parent-child")]


def test_ready_filters_status_pinned_ephemeral_type_and_deferral(queue: Queue, tmp_path: Path) -> None:
    records = [
        issue("t-ok"),
        issue("t-past", defer_until=iso(timedelta(hours=-1))),
        issue("t-future", defer_until=iso(timedelta(days=1))),
        issue("t-eph", ephemeral=True),
        issue("t-pinflag", pinned=True),
        issue("t-prog", status="in_progress"),
        issue("t-def", status="deferred"),
        issue("t-blk", status="blocked"),
        issue("t-hook", status="hooked"),
        issue("t-closed", status="closed"),
        issue("t-later", issue_type="epic", defer_until=iso(timedelta(days=2))),
        issue("t-later.1", deps=[("t-later", "parent-child")]),
        issue("t-soon", issue_type="epic", defer_until=iso(timedelta(days=-2))),
        issue("t-soon.1", deps=[("t-soon", "parent-child")]),
    ]
    records += [issue(f"t-type-{kind}", issue_type=kind) for kind in sorted(NOT_WORK_TYPES)]
    records += [issue("t-bug", issue_type="bug"), issue("t-odd", issue_type="convoy")]
    load(queue, tmp_path, *records)
    assert set(ready_ids(queue, limit=0)) == {"t-ok", "t-past", "t-soon", "t-soon.1", "t-bug", "t-odd"}


def test_close_readies_dependents_at_once_and_reopen_reblocks(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a"), issue("t-b", deps=[("t-a", "blocks")]))
    assert ready_ids(queue) == ["t-a"]
    with pytest.raises(Refused, match="t-a"):
        queue.close(["t-b"])
    assert queue.get("t-b")["status"] == "open"
    queue.close(["t-a"], reason="done")
    assert ready_ids(queue) == ["t-b"]
    assert queue.get("t-a")["close_reason"] == "done"
    queue.reopen("t-a")
    assert ready_ids(queue) == ["t-a"]
    assert blocked_map(queue) == {"t-b": ["t-a"]}
    assert "closed_at" not in queue.get("t-a")
    queue.close(["t-b"], force=True)
    assert queue.get("t-b")["status"] == "closed"


def test_sorts_hybrid_priority_oldest_and_limit(queue: Queue, tmp_path: Path) -> None:
    load(
        queue,
        tmp_path,
        issue("t-old-p3", priority=3, created_at=iso(timedelta(days=-30))),
        issue("t-old-p0", priority=0, created_at=iso(timedelta(days=-5))),
        issue("t-new-p4", priority=4, created_at=iso(timedelta(hours=-1))),
        issue("t-new-p1", priority=1, created_at=iso(timedelta(hours=-2))),
        issue("t-new-p1b", priority=1, created_at=iso(timedelta(hours=-40))),
    )
    assert ready_ids(queue, sort="hybrid") == ["t-new-p1b", "t-new-p1", "t-new-p4", "t-old-p3", "t-old-p0"]
    assert ready_ids(queue, sort="priority") == [  # equal priority: newest first, as bd
        "t-old-p0",
        "t-new-p1",
        "t-new-p1b",
        "t-old-p3",
        "t-new-p4",
    ]
    assert ready_ids(queue, sort="oldest") == ["t-old-p3", "t-old-p0", "t-new-p1b", "t-new-p1", "t-new-p4"]
    assert len(ready_ids(queue, limit=2)) == 2
    assert len(ready_ids(queue, limit=0)) == 5
    with pytest.raises(BadInput):
        queue.ready(sort="random")


# -- create, ids ----------------------------------------------------------------


def test_ids_are_prefix_base36_and_grow_with_the_store(queue: Queue, tmp_path: Path) -> None:
    first = queue.create("first")["id"]
    assert first.startswith("t-") and len(first) == 2 + 3
    assert first[2:].isalnum() and first[2:] == first[2:].lower()
    load(queue, tmp_path, *[issue(f"t-bulk{n:04d}") for n in range(200)])
    grown = queue.create("after 200")["id"]
    assert len(grown) - 2 == 4


def test_children_are_parent_dot_n(queue: Queue) -> None:
    epic = queue.create("epic", issue_type="epic")["id"]
    kids = [queue.create(f"kid {n}", parent=epic)["id"] for n in range(3)]
    assert kids == [f"{epic}.1", f"{epic}.2", f"{epic}.3"]
    grandchild = queue.create("grandkid", parent=kids[0])["id"]
    assert grandchild == f"{epic}.1.1"
    dep = queue.get(kids[1])["dependencies"][0]
    assert (dep["depends_on_id"], dep["type"]) == (epic, "parent-child")


def test_create_keeps_criteria_scope_and_validates(queue: Queue) -> None:
    record = queue.create(
        "scoped",
        criteria=["tests pass", "no new deps"],
        scope=["src/a/*.py"],
        out_of_scope=["src/core/*"],
        labels=["x", "x", "y"],
    )
    assert record["acceptance_criteria"] == "1. tests pass\n2. no new deps"
    assert record["metadata"]["herd"] == {"scope": ["src/a/*.py"], "out_of_scope": ["src/core/*"]}
    assert record["labels"] == ["x", "y"]
    with pytest.raises(BadInput, match="0-4"):
        queue.create("bad", priority=5)
    with pytest.raises(NotFound):
        queue.create("orphan", parent="t-nope")
    with pytest.raises(NotFound):
        queue.create("dangling", deps=["t-nope"])


def test_dep_add_refuses_cycles_and_names_them(queue: Queue) -> None:
    a, b, c = (queue.create(n)["id"] for n in "abc")
    queue.dep_add(b, a)
    queue.dep_add(c, b)
    with pytest.raises(Refused, match=f"{a} -> {c} -> {b} -> {a}"):
        queue.dep_add(a, c)
    with pytest.raises(Refused):
        queue.dep_add(a, a)
    queue.dep_add(a, c, "related")  # non-blocking types may loop
    assert queue.cycles() == []
    assert [r["id"] for r in queue.ready(limit=0)] == [a]


# -- claims ---------------------------------------------------------------------


def test_claim_is_compare_and_swap(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a"))
    claimed = queue.claim("t-a", "alice")
    assert (claimed["status"], claimed["assignee"]) == ("in_progress", "alice")
    assert queue.claim("t-a", "alice")["assignee"] == "alice"  # same actor again: fine
    before = queue.get("t-a")
    with pytest.raises(Refused, match="alice"):
        queue.claim("t-a", "bob")
    assert queue.get("t-a") == before
    with pytest.raises(NotFound):
        queue.claim("t-nope", "bob")


def test_expired_lease_lets_another_actor_claim(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a"))
    queue.claim("t-a", "alice", lease_seconds=0.2)
    with pytest.raises(Refused):
        queue.claim("t-a", "bob")
    time.sleep(0.3)
    assert queue.claim("t-a", "bob")["assignee"] == "bob"
    with pytest.raises(Refused):
        queue.claim("t-a", "alice")


def test_expired_lease_makes_the_task_ready_again(queue: Queue, tmp_path: Path) -> None:
    """Issue 11.9: a claim whose lease ran out (its worker died) is given back: `ready` lists
    the task, `claim_next_ready` takes it, stats count it open. bd has no leases (its claim
    is only the compare-and-swap of issueops/claim.go), so this is herd's rule; a held claim
    (`--no-integrate`) has no lease and never comes back."""
    load(queue, tmp_path, issue("t-dead"), issue("t-held"), issue("t-live"))
    queue.claim("t-dead", "crashed-worker", lease_seconds=0.2)
    queue.claim("t-held", "run-1", lease_seconds=0.2)
    assert queue.hold("t-held", "run-1")
    queue.claim("t-live", "busy-worker")
    assert ready_ids(queue) == []
    time.sleep(0.3)
    assert ready_ids(queue) == ["t-dead"]
    again = queue.get("t-dead")
    assert again["status"] == "open" and "assignee" not in again
    assert cast(dict[str, int], queue.stats()["summary"])["open_issues"] == 1
    queue.claim("t-dead", "crashed-worker", lease_seconds=0.2)
    time.sleep(0.3)
    taken = queue.claim_next_ready("rescuer")
    assert taken is not None and (taken["id"], taken["assignee"]) == ("t-dead", "rescuer")
    assert queue.claim_next_ready("rescuer") is None
    assert queue.get("t-held")["assignee"] == "run-1"


def test_one_lease_default_for_the_library_and_the_cli() -> None:
    """Issue 11.9: `--lease` is a duration like every other duration flag, and its default is
    the library's."""
    from herd.cli.queue_cmds import _LEASE_DEFAULT
    from herd.queue.core import DEFAULT_LEASE_SECONDS
    from herd.units import duration

    assert duration(_LEASE_DEFAULT) == DEFAULT_LEASE_SECONDS
    assert duration("90s") == 90


def test_concurrent_first_open_of_a_new_store(tmp_path: Path) -> None:
    """Issue 11.10: 8 real processes open the same new store at once (as `herd map`'s
    per-user store is); every one succeeds and the schema is complete. Before the fix 3-6
    of 6 failed with `table config already exists`."""
    import subprocess
    import sys

    from _queue_helpers import herd_env

    opener = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from herd.store import Store\n"
        "while time.time() < float(sys.argv[2]):\n"
        "    time.sleep(0.001)\n"
        "Store(Path(sys.argv[1]), create=True).close()\n"
    )
    for round_ in range(4):
        db = tmp_path / f"round{round_}" / "state" / "herd.db"
        start = time.time() + 1.5
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", opener, str(db), str(start)],
                env=herd_env(),
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        errors = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
        assert [code for code, _ in errors] == [0] * 8, errors
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_claim_next_ready_takes_ready_work_in_order(queue: Queue, tmp_path: Path) -> None:
    load(
        queue,
        tmp_path,
        issue("t-a", priority=0),
        issue("t-b", priority=1),
        issue("t-c", deps=[("t-b", "blocks")]),
    )
    first = queue.claim_next_ready("w1", sort="priority")
    second = queue.claim_next_ready("w2", sort="priority")
    assert first is not None and second is not None
    assert (first["id"], second["id"]) == ("t-a", "t-b")
    assert queue.claim_next_ready("w3") is None  # t-c is blocked by the claimed t-b


def test_claim_next_ready_skips_work_assigned_to_someone_else(queue: Queue, tmp_path: Path) -> None:
    # More than one page of ready issues assigned to others must not hide the free one.
    load(
        queue,
        tmp_path,
        *[issue(f"t-taken{n:02d}", assignee="other", priority=0) for n in range(30)],
        issue("t-free", priority=4),
    )
    got = queue.claim_next_ready("me", sort="priority")
    assert got is not None and got["id"] == "t-free"


def test_release_gives_work_back(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a"))
    queue.claim("t-a", "alice")
    queue.release("t-a", "worker died")
    record = queue.get("t-a")
    assert record["status"] == "open" and "assignee" not in record
    assert queue.claim("t-a", "bob")["assignee"] == "bob"


# -- import ---------------------------------------------------------------------


def test_import_upserts_and_a_bad_line_writes_nothing(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a", title="one"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "t-a", "title": "changed"}\n{"id": "t-b", "title": "new"}\n{oops\n')
    with pytest.raises(BadInput, match=r"bad.jsonl:3"):
        queue.import_jsonl(bad)
    assert [r["id"] for r in queue.list_issues(include_closed=True)] == ["t-a"]
    assert queue.get("t-a")["title"] == "one"
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "t-a", "title": "changed"}\n{"id": "t-b", "title": "new"}\n')
    result = queue.import_jsonl(good)
    assert (result.created, result.updated) == (1, 1)
    assert queue.get("t-a")["title"] == "changed"


def test_unknown_fields_survive_create_update_close(queue: Queue, tmp_path: Path) -> None:
    load(queue, tmp_path, issue("t-a", x_custom={"nested": [1, 2]}, wisp_type="patrol"))
    queue.update("t-a", priority=1)
    queue.comment("t-a", "hello")
    queue.close(["t-a"])
    record = queue.get("t-a")
    assert record["x_custom"] == {"nested": [1, 2]}
    assert record["wisp_type"] == "patrol"
    assert record["comments"][0]["text"] == "hello"


def test_ready_order_matches_bd_rules_on_a_random_store(queue: Queue, tmp_path: Path) -> None:
    """The index-walking ready query returns what the plain rules say, in bd's order."""
    import random

    rng = random.Random(3)
    records = []
    for n in range(300):
        age = rng.choice([timedelta(hours=-rng.randint(1, 47)), timedelta(days=-rng.randint(3, 90))])
        record = issue(
            f"t-{n:03d}",
            priority=rng.randint(0, 4),
            created_at=iso(age),
            status=rng.choice(["open", "open", "open", "closed", "in_progress"]),
        )
        if rng.random() < 0.1:
            del record["created_at"]
        if rng.random() < 0.3 and n:
            record["dependencies"] = [
                {"issue_id": record["id"], "type": "blocks", "depends_on_id": f"t-{rng.randrange(n):03d}"}
            ]
        if rng.random() < 0.3:
            record["labels"] = [rng.choice(["x", "y"])]
        records.append(record)
    load(queue, tmp_path, *records)
    every = {r["id"]: r for r in records}
    recent = time.time() - 48 * 3600

    def created(r: dict[str, Any]) -> float:
        return (
            datetime.strptime(r["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            if "created_at" in r
            else float("-inf")
        )

    def unblocked(r: dict[str, Any]) -> bool:
        return all(every[d["depends_on_id"]]["status"] == "closed" for d in r.get("dependencies", []))

    def expected(sort: str, label: str | None = None) -> list[str]:
        ok = [
            r
            for r in records
            if r["status"] == "open" and unblocked(r) and (label is None or label in r.get("labels", []))
        ]
        keys = {
            "priority": lambda r: (r["priority"], -created(r), r["id"]),
            "oldest": lambda r: (created(r), r["id"]),
            "hybrid": lambda r: (
                (0, r["priority"], created(r), r["id"])
                if created(r) >= recent
                else (1, 0, created(r), r["id"])
            ),
        }
        return [r["id"] for r in sorted(ok, key=keys[sort])]

    for sort in ("hybrid", "priority", "oldest"):
        assert ready_ids(queue, sort=sort, limit=0) == expected(sort), sort
        assert ready_ids(queue, sort=sort, limit=7) == expected(sort)[:7], sort
        assert ready_ids(queue, sort=sort, limit=5, labels=["x"]) == expected(sort, "x")[:5]


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    from herd.store.schema import MIGRATIONS, _statements

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO issues (id, data, title, status, priority, issue_type) VALUES "
        '(\'t-a\', \'{"id":"t-a","title":"a","status":"open"}\', \'a\', \'open\', 2, \'task\')'
    )
    conn.close()
    queue = Queue(Store(db), actor="tester")
    assert [r["id"] for r in queue.ready()] == ["t-a"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert {"issues_by_age", "issues_by_priority_newest"} <= indexes
    assert "issues_by_priority" not in indexes  # dropped by migration 8
