"""`herd import` and `herd export`: beads JSONL, both ways."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from herd.cli.app import cli, common, make_context, warn
from herd.errors import BadInput
from herd.units import plural


@cli.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@common
def import_cmd(path: Path, db: str | None, as_json: bool) -> None:
    """Import beads JSONL (upsert); one bad line and nothing is written."""
    ctx = make_context(db, as_json)
    progress = _StatusLine() if sys.stderr.isatty() else None
    try:
        result = ctx.queue().import_jsonl(path, progress.show if progress else None)
    finally:
        if progress:
            progress.clear()
    for issue_id, target, why in result.dropped:
        warn(f"dropped dependency {issue_id} -> {target}: {why}")
    if result.dangling and not ctx.as_json:
        issue_id, target, dep_type = result.dangling[0]
        warn(
            f"{plural(len(result.dangling), 'dependency', 'dependencies')} point"
            f"{'s' if len(result.dangling) == 1 else ''} at ids not in the store (e.g. "
            f"{issue_id} -> {target} [{dep_type}]); they do not block"
        )
    ctx.emit(result.as_json(), lambda: click.echo(_import_summary(result, path)))


class _StatusLine:
    """One line on a terminal's stderr, rewritten in place (a long import is not silent)."""

    def __init__(self) -> None:
        self.width = 0

    def show(self, text: str) -> None:
        line = f"herd: {text}"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _import_summary(result: Any, path: Path) -> str:
    parts = [f"{result.created} new", f"{result.updated} updated", f"{result.unchanged} unchanged"]
    if result.stale:
        parts.append(f"{result.stale} older than the store's copy, kept the store's")
    if result.tombstones:
        parts.append(
            f"{result.tombstones} tombstones not imported, {result.deleted} of them deleted a stored issue"
        )
    if result.skipped_lines:
        parts.append(f"{result.skipped_lines} lines that are not issues skipped")
    noun = "issue" if result.read == 1 else "issues"
    return f"read {result.read} {noun} from {path} ({', '.join(parts)})"


@cli.command("export")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="File (default: stdout).")
@click.option(
    "--all",
    "include_ephemeral",
    is_flag=True,
    help="Include ephemeral issues (wisps), left out by default as bd does.",
)
@common
def export_cmd(output: Path | None, include_ephemeral: bool, db: str | None, as_json: bool) -> None:
    """Export beads JSONL as bd does: priority order, newest first within a priority."""
    ctx = make_context(db, as_json)
    lines = ctx.queue().export_lines(include_ephemeral=include_ephemeral)
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    tmp = output.with_name(output.name + ".tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line)
                count += 1
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(
            f"{output}: cannot write: {exc.strerror}; check the directory exists and is writable"
        ) from None
    if ctx.as_json:
        ctx.emit({"path": str(output), "exported": count})
    else:
        click.echo(f"exported {plural(count, 'issue')} to {output}", err=True)
