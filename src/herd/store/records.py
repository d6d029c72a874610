"""Whole beads records read from the store as JSON text, streamed in chunks.

A record's own fields are stored as compact JSON (`issues.data`); its labels, dependencies
and comments live in their own tables. Rows written by this herd (`layout` 1) hold a marker
where each child list and each derived count goes, `"labels":"\\u0000labels"`, so a reader
splices the children's JSON text in with `str.replace`: no record is decoded and re-encoded
on the way from SQLite to stdout. Older rows (`layout` 0) are decoded and rebuilt
(`issues.full`), which gives the same record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence

from herd.queue.model import DERIVED_COUNTS, FIELD_RANK, Record, set_field

# `typing` costs every command several ms of imports; mypy reads any `TYPE_CHECKING` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CHILD_KEYS = ("labels", "dependencies", "comments")
_CHILD_SET = frozenset(CHILD_KEYS)
#: The layout of rows written with markers (schema migration 6 added the column).
MARKED = 1
_MARKED_KEYS = (*CHILD_KEYS, *DERIVED_COUNTS)
_MARKERS = {key: f'"{key}":"\\u0000{key}"' for key in _MARKED_KEYS}
_MARKER_VALUES = {key: f"\x00{key}" for key in _MARKED_KEYS}
CHUNK = 5000


def _compact_encoder() -> Callable[[Any], str]:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, the same text, with
    the C encoder made once: `dumps` makes one per call, which is a third of the cost of
    encoding a small object (an import encodes 250k of them). It skips the check for
    circular containers, which JSON read from text cannot have (a Python structure that
    had one would raise RecursionError instead of ValueError)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python)
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def default(value: object) -> object:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    chunks = make(None, default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    join = "".join

    def encode(value: object) -> str:
        return join(chunks(value, 0))

    return encode


#: Compact JSON text as `json.dumps(value, ensure_ascii=False, separators=(",", ":"))`.
encode = _compact_encoder()

#: How a record with some key order is stored: (the markers of the marked keys it has, the
#: text of the markers that follow its own keys, the number of markers); when the markers
#: do not all go at its end, (every marker, the stored key order, the number).
_Layout = tuple[dict[str, str], str | tuple[str, ...], int]

# For each key order met in records (a file's records share a few), how it is stored.
_LAYOUTS: dict[tuple[str, ...], _Layout] = {}


def marked_data(record: Record) -> tuple[str, int]:
    """The `data` column for a record and its layout: each child list (present or not:
    where bd would put it) and each derived count the record has becomes its marker."""
    keys = tuple(record)
    layout = _LAYOUTS.get(keys)
    if layout is None:
        layout = _layout(keys)
        if len(_LAYOUTS) < 1024:
            _LAYOUTS[keys] = layout
    markers, suffix, count = layout
    if type(suffix) is str:
        # The usual order: the markers of the keys it has in their place, the others'
        # (encoded once for the layout) after its own keys, as bd writes them.
        text = encode(record | markers if markers else record)
        if suffix:
            text = text[:-1] + suffix
    else:
        marked = record | markers
        text = encode({key: marked[key] for key in suffix})
    # A value of the record's own that reads like a marker: store it the old way.
    if text.count('"\\u0000') != count:
        plain = {k: (None if k in CHILD_KEYS else v) for k, v in record.items()}
        return encode(plain), 0
    return text, MARKED


def _layout(keys: tuple[str, ...]) -> _Layout:
    order = tuple(_with_child_markers(dict.fromkeys(keys)))
    markers = {key: _MARKER_VALUES[key] for key in order if key in _MARKER_VALUES}
    if not keys or order[: len(keys)] != keys:
        return markers, order, len(markers)
    missing = order[len(keys) :]
    suffix = "".join(f",{_MARKERS[key]}" for key in missing) + "}" if missing else ""
    return {key: markers[key] for key in keys if key in markers}, suffix, len(markers)


def _with_child_markers(record: Record) -> Record:
    """A copy of `record` with the child markers: in place of the keys it has, and where
    `set_field` would put the others, before the first key bd writes after them (one
    pass: `set_field` three times costs an import of 100k issues a second)."""
    missing = [key for key in CHILD_KEYS if key not in record]  # in FIELD_ORDER order
    out: Record = {}
    for key, value in record.items():
        while missing and FIELD_RANK.get(key, -1) > FIELD_RANK[missing[0]]:
            pending = missing.pop(0)
            out[pending] = _MARKER_VALUES[pending]
        out[key] = _MARKER_VALUES[key] if key in _CHILD_SET else value
    for key in missing:
        out[key] = _MARKER_VALUES[key]
    return out


def relayout(tx: sqlite3.Connection, chunk: int = 2000) -> None:
    """Rewrite the rows stored before the markers (layout 0) with them."""
    last = ""
    while True:
        rows = tx.execute(
            "SELECT id, data FROM issues WHERE layout = 0 AND id > ? ORDER BY id LIMIT ?", (last, chunk)
        ).fetchall()
        if not rows:
            return
        tx.executemany(
            "UPDATE issues SET data = ?, layout = ? WHERE id = ?",
            [(*marked_data(unmark(json.loads(data))), issue_id) for issue_id, data in rows],
        )
        last = rows[-1][0]


def unmark(record: Record) -> Record:
    """A record decoded from `data`: markers read as the null placeholders of layout 0."""
    for key in _MARKED_KEYS:
        if record.get(key) == _MARKER_VALUES[key]:
            record[key] = None
    return record


#: What a reader selects of each issue `i`: its own columns and its children as JSON array
#: texts built by SQLite (`group_concat` keeps the order of the subquery it reads).
COLUMNS = """i.id, i.data, i.layout,
  (SELECT json_group_array(label) FROM
     (SELECT label FROM labels WHERE issue_id = i.id ORDER BY pos)),
  (SELECT '[' || group_concat(data, ',') || ']' FROM
     (SELECT data FROM dependencies WHERE issue_id = i.id ORDER BY pos)),
  (SELECT '[' || group_concat(data, ',') || ']' FROM
     (SELECT data FROM comments WHERE issue_id = i.id ORDER BY pos)),
  CASE WHEN instr(i.data, '"dependent_count"')
       THEN (SELECT count(*) FROM dependencies WHERE depends_on_id = i.id) ELSE 0 END"""

# One row per wanted id, in the order given (`json_each` keys).
_READ_SQL = f"""SELECT {COLUMNS}
  FROM json_each(?) j JOIN issues i ON i.id = j.value
 ORDER BY j.key"""


def stream_json(
    tx: sqlite3.Connection, ids: Sequence[str], extra: dict[str, tuple[Any, ...]] | None = None
) -> Iterator[str]:
    """Each record of `ids` (in that order, missing ids skipped) as compact JSON text, as
    `issues.full` builds it. `extra` appends fields at the end of the named records (the
    `blocked_by` of `herd blocked`), as a dict assignment would."""
    for start in range(0, len(ids), CHUNK):
        chunk = encode(list(ids[start : start + CHUNK]))
        yield from texts(tx.execute(_READ_SQL, (chunk,)), extra)


def texts(rows: Iterable[tuple[Any, ...]], extra: dict[str, tuple[Any, ...]] | None = None) -> Iterator[str]:
    """Records as JSON texts from rows of `COLUMNS`, as SQLite hands them over."""
    for row in rows:
        yield text_of(row, extra.get(row[0]) if extra else None)


def text_of(row: tuple[Any, ...], more: tuple[Any, ...] | None = None) -> str:
    """One record's JSON text from its `COLUMNS`; `more` (key, value, key, value...) fields
    are added at its end, as a dict assignment would."""
    _, data, layout, labels, deps, comments, dependents = row
    if layout == MARKED and (more is None or '"blocked_by' not in data):
        text = _splice(data, labels, deps, comments, dependents)
    else:
        record = _rebuild(json.loads(data), labels, deps, comments, dependents)
        if more:
            record.update(zip(more[::2], more[1::2], strict=True))
            more = None
        text = encode(record)
    if more:
        text = (
            text[:-1]
            + "".join(f",{encode(k)}:{encode(v)}" for k, v in zip(more[::2], more[1::2], strict=True))
            + "}"
        )
    return text


def stream(tx: sqlite3.Connection, ids: Sequence[str]) -> Iterator[Record]:
    """Each record of `ids` decoded, chunk by chunk (for callers that need dicts)."""
    return decoded(stream_json(tx, ids))


def decoded(texts: Iterable[str]) -> Iterator[Record]:
    return map(json.loads, texts)


def _splice(data: str, labels: str | None, deps: str | None, comments: str | None, dependents: int) -> str:
    if labels == "[]":
        labels = None
    for key, value in (("labels", labels), ("dependencies", deps), ("comments", comments)):
        marker = _MARKERS[key]
        if value is not None:
            data = data.replace(marker, f'"{key}":{value}')
        elif "," + marker in data:
            data = data.replace("," + marker, "")
        elif marker + "," in data:
            data = data.replace(marker + ",", "")
        else:
            data = data.replace(marker, "")
    if '"\\u0000' in data:
        counts = {
            "dependency_count": _count(deps),
            "dependent_count": dependents,
            "comment_count": _count(comments),
        }
        for key in DERIVED_COUNTS:
            data = data.replace(_MARKERS[key], f'"{key}":{counts[key]}')
    return data


def _count(array_text: str | None) -> int:
    return len(json.loads(array_text)) if array_text else 0


def _rebuild(
    record: Record, labels: str | None, deps: str | None, comments: str | None, dependents: int
) -> Record:
    """A layout-0 record (or one with a field in the way) put together as `issues.full`."""
    children = {
        key: json.loads(text) if text else []
        for key, text in (("labels", labels), ("dependencies", deps), ("comments", comments))
    }
    for key, values in children.items():
        if values:
            set_field(record, key, values)
        else:
            record.pop(key, None)
    derived = {
        "dependency_count": len(children["dependencies"]),
        "dependent_count": dependents,
        "comment_count": len(children["comments"]),
    }
    for key in DERIVED_COUNTS:
        if key in record:
            record[key] = derived[key]
    return record
