"""The queue behaves as current bd (1.0.3) does: one test per rule, each named after the
beads test or code path it was taken from (gastownhall/beads, formerly steveyegge/beads).
Point 15 (the corpus round trip) lives in test_corpus.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from _queue_helpers import herd, herd_json, write_jsonl

from herd.errors import Refused
from herd.queue.core import Queue, init
from herd.run.plan import make_plan, select_tasks


def issue(issue_id: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": issue_id,
        "title": fields.pop("title", issue_id),
        "status": "open",
        "priority": 2,
        "issue_type": "task",
        "created_at": fields.pop("created_at", "2026-01-01T00:00:00Z"),
        "updated_at": "2026-01-01T00:00:00Z",
    }
    deps = fields.pop("deps", [])
    record.update(fields)
    if deps:
        record["dependencies"] = [
            {"issue_id": issue_id, "depends_on_id": d[0], "type": d[1], **(d[2] if len(d) > 2 else {})}
            for d in deps
        ]
    return record


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return Queue(init(tmp_path, "t"), actor="tester")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    herd("init", "--prefix", "q", cwd=tmp_path)
    return tmp_path


def load(queue: Queue, tmp_path: Path, *records: dict[str, Any]) -> Any:
    return queue.import_jsonl(write_jsonl(tmp_path / "in.jsonl", list(records)))


def ready_ids(queue: Queue, **kwargs: Any) -> set[str]:
    return {r["id"] for r in queue.ready(limit=0, **kwargs)}


def blocked_ids(queue: Queue) -> set[str]:
    return {r["id"] for r in queue.blocked()}


# -- ready and blocked -----------------------------------------------------------------


def test_get_ready_work_lists_an_open_epic(queue: Queue, tmp_path: Path) -> None:
    """14.1, from internal/storage/issueops/ready_work.go GetReadyWorkInTx: the excluded
    types are merge-request, gate, molecule, message, agent, role, rig; an epic is ready.
    `herd run --ready` (plan selection) leaves containers out and says so."""
    load(
        queue,
        tmp_path,
        issue("t-epic", issue_type="epic"),
        issue("t-task"),
        issue("t-gate", issue_type="gate"),
    )
    assert ready_ids(queue) == {"t-epic", "t-task"}
    chosen = select_tasks(queue.store, ready=True)
    assert list(chosen) == ["t-task"]
    plan = make_plan(queue.store, chosen, [])
    assert any("left out 1 ready epic (t-epic)" in w for w in plan.warnings), plan.warnings


def test_compute_blocked_ids_waits_for_any_children_gate(queue: Queue, tmp_path: Path) -> None:
    """14.2, from internal/storage/issueops/blocked.go ComputeBlockedIDsInTx (gate
    WaitsForAnyChildren) and internal/types/types.go ParseWaitsForGateMetadata: with
    `any-children` the waiter is free once one child of the spawner is closed; the
    default `all-children` waits for every child. bd writes the metadata as a JSON string."""
    load(
        queue,
        tmp_path,
        issue("t-spawn", issue_type="epic"),
        issue("t-spawn.1", deps=[("t-spawn", "parent-child")]),
        issue("t-spawn.2", deps=[("t-spawn", "parent-child")]),
        issue("t-any", deps=[("t-spawn", "waits-for", {"metadata": {"gate": "any-children"}})]),
        issue("t-any-str", deps=[("t-spawn", "waits-for", {"metadata": '{"gate":"any-children"}'})]),
        issue("t-all", deps=[("t-spawn", "waits-for", {"metadata": "{}"})]),
    )
    assert {"t-any", "t-any-str", "t-all"} <= blocked_ids(queue)
    queue.close(["t-spawn.1"])
    assert {"t-any", "t-any-str"} <= ready_ids(queue)
    assert "t-all" in blocked_ids(queue)
    queue.close(["t-spawn.2"])
    assert "t-all" in ready_ids(queue)


def test_get_blocked_issues_closed_or_pinned_parent_passes_nothing_down(queue: Queue, tmp_path: Path) -> None:
    """14.3, from internal/storage/issueops/blocked.go: a blocks edge only counts when the
    blocked issue is active (activeIDs[rec.issueID]), and GetBlockedIssuesInTx adds only
    active children of blocked parents (GH#1495): a closed or pinned parent blocks nothing."""
    load(
        queue,
        tmp_path,
        issue("t-blocker"),
        issue("t-closed", issue_type="epic", status="closed", deps=[("t-blocker", "blocks")]),
        issue("t-closed.1", deps=[("t-closed", "parent-child")]),
        issue("t-pinned", issue_type="epic", status="pinned", deps=[("t-blocker", "blocks")]),
        issue("t-pinned.1", deps=[("t-pinned", "parent-child")]),
        issue("t-open", issue_type="epic", deps=[("t-blocker", "blocks")]),
        issue("t-open.1", deps=[("t-open", "parent-child")]),
    )
    assert {"t-closed.1", "t-pinned.1"} <= ready_ids(queue)
    assert blocked_ids(queue) == {"t-open", "t-open.1"}


def test_is_blocked_custom_status_blocker(queue: Queue, tmp_path: Path) -> None:
    """14.4, from internal/storage/dolt/dependencies_extended_test.go
    TestIsBlocked_CustomStatusBlocker, queries_test.go
    TestGetReadyWork_CustomStatusBlockerStillBlocks and cmd/bd/protocol/status_validation_test.go
    TestProtocol_UpdateAcceptsCustomStatus: a custom status imports and updates, and blocks
    its dependents like open does."""
    load(
        queue,
        tmp_path,
        issue("t-review", status="review"),
        issue("t-after", deps=[("t-review", "blocks")]),
        issue("t-other"),
    )
    assert queue.get("t-review")["status"] == "review"
    assert "t-after" in blocked_ids(queue)
    assert queue.update("t-other", status="qa")["status"] == "qa"
    queue.update("t-review", status="closed")
    assert "t-after" in ready_ids(queue)


def test_get_ready_work_unassigned_filter(queue: Queue, tmp_path: Path) -> None:
    """14.5, from internal/storage/dolt/queries_test.go TestGetReadyWork_UnassignedFilter
    and issueops/ready_work.go (`assignee = ?`; Unassigned takes precedence)."""
    load(
        queue,
        tmp_path,
        issue("t-alice", assignee="alice"),
        issue("t-bob", assignee="bob"),
        issue("t-free"),
        issue("t-empty", assignee=""),
    )
    assert ready_ids(queue, assignee="alice") == {"t-alice"}
    assert ready_ids(queue, unassigned=True) == {"t-free", "t-empty"}
    assert ready_ids(queue) == {"t-alice", "t-bob", "t-free", "t-empty"}


def test_ready_cmd_defaults_priority_sort_and_limit_100(repo: Path, tmp_path: Path) -> None:
    """14.6, from cmd/bd/ready.go (flags: --limit 100, --sort priority) and
    issueops/ready_work.go SortPolicyPriority (`priority ASC, created_at DESC, id ASC`);
    blocked sorts the same way (issueops/blocked.go GetBlockedIssuesInTx)."""
    records = [
        issue(f"q-{n:03d}", priority=n % 2, created_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z")
        for n in range(105)
    ]
    records += [
        issue("q-gate"),
        issue("q-b-old", priority=1, created_at="2025-01-01T00:00:00Z", deps=[("q-gate", "blocks")]),
        issue("q-b-new", priority=1, created_at="2025-06-01T00:00:00Z", deps=[("q-gate", "blocks")]),
    ]
    herd("import", str(write_jsonl(tmp_path / "r.jsonl", records)), cwd=repo)
    ready = herd_json("ready", cwd=repo)
    assert len(ready) == 100
    expected = sorted(
        (r for r in records if "dependencies" not in r),
        key=lambda r: (r["priority"], _neg(r["created_at"]), r["id"]),
    )
    assert [r["id"] for r in ready] == [r["id"] for r in expected][:100]
    assert [r["id"] for r in herd_json("blocked", cwd=repo)] == ["q-b-new", "q-b-old"]


def _neg(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in stamp)


def test_ready_claim_json(repo: Path, tmp_path: Path) -> None:
    """14.7, from cmd/bd/ready_embedded_test.go TestEmbeddedReady/ready_claim_json and
    internal/storage/issueops/claim.go ClaimReadyIssueInTx (Unassigned: true): nothing to
    claim is exit 0 and `[]`; a claim is a one-element list; assigned issues are not taken."""
    herd(
        "import",
        str(
            write_jsonl(
                tmp_path / "c.jsonl",
                [
                    issue("q-taken", priority=0, assignee="someone"),
                    issue("q-free", priority=1, labels=["ready-claim-json"]),
                ],
            )
        ),
        cwd=repo,
    )
    proc = herd("ready", "--claim", "--json", "--label", "missing-label", cwd=repo)
    assert json.loads(proc.stdout) == []
    claimed = herd_json("ready", "--claim", "--actor", "w1", cwd=repo)
    assert [(c["id"], c["status"], c["assignee"]) for c in claimed] == [("q-free", "in_progress", "w1")]
    assert herd_json("ready", "--claim", "--actor", "w2", cwd=repo) == []


# -- dependencies, close and claim -------------------------------------------------------


def test_detect_cycles_waits_for_does_not_create_cycle(queue: Queue, tmp_path: Path) -> None:
    """14.8, from internal/storage/dolt/dependencies_extended_test.go
    TestDetectCycles_WaitsForDoesNotCreateCycle and issueops/dependencies.go
    AddDependencyInTx: only blocks and conditional-blocks edges are cycle-checked."""
    load(queue, tmp_path, issue("t-a"), issue("t-b"), issue("t-c"))
    queue.dep_add("t-a", "t-b", "blocks")
    queue.dep_add("t-b", "t-a", "waits-for")
    queue.dep_add("t-b", "t-a", "parent-child")
    with pytest.raises(Refused, match="cycle"):
        queue.dep_add("t-b", "t-a", "blocks")
    with pytest.raises(Refused, match="cycle"):
        queue.dep_add("t-b", "t-a", "conditional-blocks")
    assert queue.cycles() == []


def test_add_dependency_blocks_cross_type_rejected(queue: Queue, tmp_path: Path) -> None:
    """14.9, from internal/storage/dolt/dependencies_extended_test.go
    TestAddDependency_BlocksCrossType_TaskBlocksEpic, _EpicBlocksTask,
    TestAddDependency_ParentChild_CrossType_Allowed and _BlocksSameType_EpicBlocksEpic."""
    load(
        queue,
        tmp_path,
        issue("t-task"),
        issue("t-epic", issue_type="epic"),
        issue("t-epic2", issue_type="epic"),
    )
    with pytest.raises(Refused, match="tasks can only block other tasks"):
        queue.dep_add("t-task", "t-epic", "blocks")
    with pytest.raises(Refused, match="epics can only block other epics"):
        queue.dep_add("t-epic", "t-task", "blocks")
    queue.dep_add("t-task", "t-epic", "parent-child")
    queue.dep_add("t-epic2", "t-epic", "blocks")


def test_close_guards_and_partial_failure_exit(repo: Path, tmp_path: Path) -> None:
    """14.10, from cmd/bd/close.go (epic close guard, IsBlocked check, per-id continue),
    issueops/dependency_queries.go IsBlockedInTx (waits-for counts),
    cmd/bd/close_embedded_test.go TestEmbeddedClose/close_epic_open_children_refuses and
    cmd/bd/protocol/exit_codes_test.go TestProtocol_ClosePartialFailureExitsZero and
    TestProtocol_CloseBlockedExitsNonZero."""
    herd(
        "import",
        str(
            write_jsonl(
                tmp_path / "g.jsonl",
                [
                    issue("q-spawn"),
                    issue("q-waiter", deps=[("q-spawn", "waits-for")]),
                    issue("q-epic", issue_type="epic"),
                    issue("q-epic.1", deps=[("q-epic", "parent-child")]),
                    issue("q-blocker"),
                    issue("q-a", deps=[("q-blocker", "blocks")]),
                    issue("q-b"),
                ],
            )
        ),
        cwd=repo,
    )
    proc = herd("close", "q-waiter", cwd=repo, check=4)
    assert "q-spawn (waits-for)" in proc.stderr and "--force" in proc.stderr
    proc = herd("close", "q-epic", cwd=repo, check=4)
    assert "open child" in proc.stderr and "--force" in proc.stderr
    proc = herd("close", "q-a", "q-b", "--json", cwd=repo)  # bd: exit 0 when any closed
    assert [r["id"] for r in json.loads(proc.stdout)] == ["q-b"]
    assert "cannot close q-a" in proc.stderr and "q-blocker" in proc.stderr
    assert herd_json("show", "q-a", cwd=repo)[0]["status"] == "open"
    herd("close", "q-epic", "q-waiter", "--force", cwd=repo)


def test_claim_issue_keeps_started_at_on_reclaim(queue: Queue, tmp_path: Path) -> None:
    """14.11, from internal/storage/issueops/claim.go ClaimIssueInTx (GH#2796): started_at
    is set on the first transition to in_progress and kept by every later claim."""
    load(
        queue,
        tmp_path,
        issue("t-mine", status="in_progress", assignee="alice", started_at="2026-01-02T03:04:05Z"),
        issue("t-back", started_at="2026-01-02T03:04:05Z"),
        issue("t-new"),
    )
    assert queue.claim("t-mine", "alice")["started_at"] == "2026-01-02T03:04:05Z"
    assert queue.claim("t-back", "bob")["started_at"] == "2026-01-02T03:04:05Z"
    first = queue.claim("t-new", "carol")["started_at"]
    assert first and queue.claim("t-new", "carol")["started_at"] == first


# -- stats -------------------------------------------------------------------------------


def test_get_statistics_pinned_count_and_ready(queue: Queue, tmp_path: Path) -> None:
    """14.12, from internal/storage/issueops/statistics.go ScanIssueCountsInTx (pinned is
    `pinned = 1`), internal/storage/dolt/queries.go GetStatistics (ready = open - blocked)
    and queries_test.go TestGetStatistics_PinnedCount."""
    load(
        queue,
        tmp_path,
        issue("t-pin", pinned=True),
        issue("t-a"),
        issue("t-b", deps=[("t-a", "blocks")]),
        issue("t-c", status="in_progress", deps=[("t-a", "blocks")]),
        issue("t-wisp", ephemeral=True),
    )
    summary = cast(dict[str, int], queue.stats()["summary"])
    assert summary["pinned_issues"] == 1
    assert summary["total_issues"] == 4  # bd keeps ephemeral issues out of its issues table
    assert (summary["open_issues"], summary["blocked_issues"]) == (3, 2)
    assert summary["ready_issues"] == 1


# -- import and export -------------------------------------------------------------------


def test_parse_jsonl_file_skips_non_issues_tombstones_and_maps_wisp(queue: Queue, tmp_path: Path) -> None:
    """14.13, from cmd/bd/import_shared.go parseJSONLFile and cmd/bd/import_from_jsonl_test.go
    TestImportFromLocalJSONL ("skips tombstone entries during import", "wisp field mapped
    to ephemeral"): non-issue lines are skipped, a tombstone is not imported (it deletes),
    legacy `wisp` reads as ephemeral, a stale copy does not overwrite a newer one, and
    self or cyclic blocks edges are dropped with a reason."""
    load(queue, tmp_path, issue("t-gone"), issue("t-keep", updated_at="2026-03-01T00:00:00Z"))
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"_schema": "beads/1", "exported_at": "2026-03-01T00:00:00Z"},
                {"_type": "memory", "key": "k", "value": "v"},
                {"_type": "issue", **issue("t-tagged")},
                issue("t-gone", status="tombstone", deleted_at="2026-02-01T00:00:00Z"),
                issue("t-wisp", wisp=True),
                issue("t-keep", title="older copy", updated_at="2026-02-01T00:00:00Z"),
                issue("t-self", deps=[("t-self", "blocks")]),
                issue("t-x", deps=[("t-y", "blocks")]),
                issue("t-y", deps=[("t-x", "blocks")]),
            ]
        )
        + "\n"
    )
    result = queue.import_jsonl(path)
    assert (result.skipped_lines, result.deleted, result.stale) == (2, 1, 1)
    assert "_type" not in queue.get("t-tagged")
    assert [r["id"] for r in queue.list_issues(include_closed=True)].count("t-gone") == 0
    wisp = queue.get("t-wisp")
    assert wisp["ephemeral"] is True and "wisp" not in wisp
    assert queue.get("t-keep")["title"] == "t-keep"
    assert [(a, b) for a, b, _ in result.dropped] == [("t-self", "t-self"), ("t-y", "t-x")]
    assert "dependencies" not in queue.get("t-self") and "dependencies" not in queue.get("t-y")
    assert queue.cycles() == []


def test_export_record_type_counts_order_and_wisps(repo: Path, tmp_path: Path) -> None:
    """14.14, from cmd/bd/export.go (exportIssueRecord `_type` GH#3271, IssueWithCounts,
    ephemeral left out by default GH#3649), cmd/bd/export_test.go
    TestExportExcludesWispsByDefault, issueops/search.go (`priority ASC, created_at DESC,
    id ASC`) and internal/types/types.go Comment (string id since 1.0)."""
    herd(
        "import",
        str(
            write_jsonl(
                tmp_path / "e.jsonl",
                [
                    issue("q-low", priority=3),
                    issue("q-old", priority=1, created_at="2025-01-01T00:00:00Z"),
                    issue("q-new", priority=1, created_at="2026-02-01T00:00:00Z", deps=[("q-old", "blocks")]),
                    issue("q-wisp", ephemeral=True),
                ],
            )
        ),
        cwd=repo,
    )
    herd("comment", "q-low", "a note", cwd=repo)
    lines = herd("export", cwd=repo).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert all(line.startswith('{"_type":"issue",') for line in lines)
    assert [r["id"] for r in records] == ["q-new", "q-old", "q-low"]
    counts = {r["id"]: (r["dependency_count"], r["dependent_count"], r["comment_count"]) for r in records}
    assert counts == {"q-new": (1, 0, 0), "q-old": (0, 1, 0), "q-low": (0, 0, 1)}
    comment_id = records[2]["comments"][0]["id"]
    assert isinstance(comment_id, str) and len(comment_id) == 36
    every = [json.loads(line)["id"] for line in herd("export", "--all", cwd=repo).stdout.splitlines()]
    assert "q-wisp" in every
