"""The real beads files round-trip through `herd import`/`herd export` without losing a field,
and ready/blocked on them are self-consistent. Runs the real CLI in subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _queue_helpers import (
    CORPUS,
    CORPUS_FILES,
    SMALL,
    herd,
    herd_json,
    needs_corpus,
)

from herd.queue.model import DERIVED_COUNTS, parse_time

pytestmark = needs_corpus


def records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def without_counts(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in DERIVED_COUNTS}


def import_export(source: Path, workdir: Path) -> Path:
    workdir.mkdir()
    herd("init", "--prefix", "rt", cwd=workdir)
    herd("import", str(source), cwd=workdir)
    out = workdir / "export.jsonl"
    herd("export", "-o", str(out), cwd=workdir)
    return out


def kept_by_bd(record: dict[str, Any]) -> bool:
    """What `bd import` then `bd export` keeps: no tombstones (import_shared.go skips them),
    no ephemeral issues (export.go leaves wisps out by default)."""
    return record.get("status") != "tombstone" and not record.get("ephemeral")


def bd_export_order(record: dict[str, Any]) -> tuple[int, float, str]:
    created = parse_time(record.get("created_at"))
    return (record.get("priority", 2), -(created if created is not None else float("-inf")), record["id"])


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_round_trip_keeps_every_field_and_is_stable(name: str, tmp_path: Path) -> None:
    """Issue 14.15, from beads cmd/bd/export_test.go TestExportImportRoundTrip: every record
    bd would keep survives import -> export field for field (in its own field order, with
    `_type` and the derived counts added), and a second round trip is byte-identical."""
    source = CORPUS / name
    original = [r for r in records_of(source) if kept_by_bd(r)]
    first = import_export(source, tmp_path / "first")
    exported = records_of(first)

    assert len(exported) == len(original)
    assert [r["id"] for r in exported] == [r["id"] for r in sorted(exported, key=bd_export_order)]
    by_id = {r["id"]: r for r in original}
    assert len(by_id) == len(original), "corpus has duplicate ids"
    for line in exported:
        assert next(iter(line)) == "_type" and line["_type"] == "issue"
        record = {k: v for k, v in line.items() if k != "_type"}
        before = by_id[record["id"]]
        assert set(record) - set(before) <= set(DERIVED_COUNTS), record["id"]
        assert set(DERIVED_COUNTS) <= set(record), record["id"]
        assert without_counts(record) == without_counts(before), record["id"]
        assert [k for k in record if k in before] == list(before), f"{record['id']}: field order changed"
        assert record["dependency_count"] == len(record.get("dependencies") or [])
        assert record["comment_count"] == len(record.get("comments") or [])

    second = import_export(first, tmp_path / "second")
    assert second.read_bytes() == first.read_bytes()


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("small")
    herd("init", "--prefix", "rt", cwd=workdir)
    herd("import", str(CORPUS / SMALL), cwd=workdir)
    return workdir


def test_ready_and_blocked_are_consistent_on_the_704_corpus(small_store: Path) -> None:
    every = {r["id"]: r for r in herd_json("list", "--all", cwd=small_store)}
    assert len(every) == 704
    ready = herd_json("ready", "--limit", "0", cwd=small_store)
    blocked = herd_json("blocked", cwd=small_store)
    assert ready and blocked
    blocked_ids = {r["id"] for r in blocked}
    active = {i for i, r in every.items() if r["status"] not in ("closed", "pinned")}

    def open_blockers(record: dict[str, Any]) -> list[str]:
        return [
            d["depends_on_id"]
            for d in record.get("dependencies") or []
            if d.get("type") in ("blocks", "conditional-blocks") and d["depends_on_id"] in active
        ]

    for record in ready:
        assert record["status"] == "open", record["id"]
        assert not record.get("ephemeral") and not record.get("pinned"), record["id"]
        assert open_blockers(record) == [], record["id"]
        assert record["id"] not in blocked_ids
        for dep in record.get("dependencies") or []:
            if dep.get("type") == "parent-child":
                assert dep["depends_on_id"] not in blocked_ids, record["id"]
    for record in blocked:
        assert record["blocked_by"], record["id"]
        assert record["id"] in active
        targets = {d["depends_on_id"]: d.get("type") for d in record.get("dependencies") or []}
        for blocker in record["blocked_by"]:
            assert blocker in active, f"{record['id']} blocked by inactive {blocker}"
            assert blocker in targets
            if targets[blocker] == "parent-child":
                assert blocker in blocked_ids
    # Every active issue with an active blocker is in `blocked`.
    for issue_id in active:
        if open_blockers(every[issue_id]):
            assert issue_id in blocked_ids, issue_id
    stats = herd_json("stats", cwd=small_store)["summary"]
    assert stats["total_issues"] == sum(1 for r in every.values() if not r.get("ephemeral"))
    assert stats["ready_issues"] == max(stats["open_issues"] - stats["blocked_issues"], 0)


def test_dangling_edges_in_the_corpus_are_warned_about(small_store: Path) -> None:
    proc = herd("ready", cwd=small_store)
    assert "not in the store" in proc.stderr and "do not block" in proc.stderr
    assert "Traceback" not in proc.stderr
