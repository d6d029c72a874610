"""Worker context files: what one worker needs to know about its one task."""

from __future__ import annotations

from pathlib import Path

from herd.queue.model import Record, criteria_of, scope_of


def render(task: Record, previous_failures: list[str] | None = None) -> str:
    """The context file, in the format DESIGN.md fixes, plus the evidence of earlier attempts."""
    scope, out_of_scope = scope_of(task)
    lines = [
        "## Worker Task Context",
        "",
        f"**BD Issue**: {task['id']}",
        f"**Title**: {_one_line(str(task.get('title', '')))}",
        "**Scope**: "
        + (
            ", ".join(f"{g} (can modify)" for g in scope)
            if scope
            else "(not limited: keep changes to what the task needs)"
        ),
        "**Out of scope**: " + (", ".join(out_of_scope) if out_of_scope else "(none)"),
        "",
        "### Success Criteria",
    ]
    criteria = criteria_of(task)
    if criteria:
        lines += [f"{n}. {text}" for n, text in enumerate(criteria, start=1)]
    else:
        lines.append("(none given: do what the title and description ask)")
    lines += ["", "### Description", (task.get("description") or "(none)").rstrip()]
    for evidence in previous_failures or []:
        lines += ["", "### Previous attempt failed", evidence.rstrip()]
    return "\n".join(lines) + "\n"


def write(path: Path, task: Record, previous_failures: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(task, previous_failures), encoding="utf-8")
    return path


def _one_line(text: str) -> str:
    """A header field stays on its line: a title with line breaks (bd allows them) could
    otherwise forge a `**Scope**:` line that a worker reading the file would believe."""
    return " ".join(text.split())
