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
    LARGEST,
    PRE_DOLT,
    SMALL,
    herd,
    herd_json,
    needs_corpus,
)

from herd.model import DERIVED_COUNTS

pytestmark = needs_corpus

WRITTEN_BY_BD = (LARGEST, PRE_DOLT)


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


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_round_trip_keeps_every_field_and_is_stable(name: str, tmp_path: Path) -> None:
    source = CORPUS / name
    original = records_of(source)
    first = import_export(source, tmp_path / "first")
    exported = records_of(first)

    assert len(exported) == len(original)
    ids = [r["id"] for r in exported]
    assert ids == sorted(ids), "export is not sorted by id"
    by_id = {r["id"]: r for r in original}
    assert len(by_id) == len(original), "corpus has duplicate ids"
    for record in exported:
        before = by_id[record["id"]]
        assert set(record) == set(before), record["id"]
        assert without_counts(record) == without_counts(before), record["id"]
        assert list(record) == list(before), f"{record['id']}: field order changed"

    second = import_export(first, tmp_path / "second")
    assert second.read_bytes() == first.read_bytes()


@pytest.mark.parametrize("name", WRITTEN_BY_BD)
def test_export_of_a_bd_file_is_that_file_sorted_by_id(name: str, tmp_path: Path) -> None:
    source = CORPUS / name
    lines = source.read_bytes().splitlines(keepends=True)
    expected = b"".join(sorted(lines, key=lambda line: json.loads(line)["id"]))
    assert import_export(source, tmp_path / "rt").read_bytes() == expected


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

    def open_blockers(record: dict[str, Any]) -> list[str]:
        return [d["depends_on_id"] for d in record.get("dependencies") or []
                if d.get("type") in ("blocks", "conditional-blocks")
                and d["depends_on_id"] in every
                and every[d["depends_on_id"]]["status"] not in ("closed", "pinned", "tombstone")]

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
        assert record["status"] not in ("closed", "pinned", "tombstone")
        targets = {d["depends_on_id"]: d.get("type") for d in record.get("dependencies") or []}
        for blocker in record["blocked_by"]:
            assert blocker in every, f"{record['id']} blocked by unknown {blocker}"
            assert blocker in targets
            if targets[blocker] in ("blocks", "conditional-blocks"):
                assert every[blocker]["status"] not in ("closed", "pinned", "tombstone")
            elif targets[blocker] == "parent-child":
                assert blocker in blocked_ids
    # Every open issue with an open blocker is in `blocked`.
    for record in every.values():
        if record["status"] == "open" and open_blockers(record):
            assert record["id"] in blocked_ids, record["id"]
    stats = herd_json("stats", cwd=small_store)["summary"]
    assert stats["total_issues"] == 704
    assert stats["ready_issues"] == len(ready)
    assert stats["blocked_issues"] == len(blocked)


def test_dangling_edges_in_the_corpus_are_warned_about(small_store: Path) -> None:
    proc = herd("ready", cwd=small_store)
    assert "not in the store" in proc.stderr and "do not block" in proc.stderr
    assert "Traceback" not in proc.stderr
