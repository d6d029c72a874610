"""`herd init --agent-files`: the files that teach an agent to be herd's hypervisor.

- `.claude/agents/herd-hypervisor.md`: a Claude Code subagent (YAML frontmatter: name,
  description, tools) whose prompt is the batch playbook;
- `AGENTS.md`: the same playbook, short, as a section between herd's markers;
- `.mcp.json`: the `herd` entry of `mcpServers`, so the agent gets `herd mcp`'s tools.

A user's file is never overwritten: herd replaces only its own marked section of
AGENTS.md, adds only its own key to `.mcp.json`, and refuses (naming the file and what
to do) when a file it would write already holds something else. Every file is checked
before any is written, so a refusal leaves nothing half-done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from herd.errors import Refused

SUBAGENT = Path(".claude/agents/herd-hypervisor.md")
AGENTS_MD = Path("AGENTS.md")
MCP_JSON = Path(".mcp.json")
BEGIN = "<!-- herd:begin (written by `herd init --agent-files`; edits inside are replaced) -->"
END = "<!-- herd:end -->"
MCP_ENTRY: dict[str, Any] = {"command": "herd", "args": ["mcp"]}


@dataclass(frozen=True)
class Change:
    path: Path  # relative to the repository root
    action: str  # created, updated, unchanged
    text: str

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "action": self.action}


def template(name: str) -> str:
    return (resources.files("herd.door") / "templates" / name).read_text(encoding="utf-8")


def plan(root: Path) -> list[Change]:
    """What writing the three files under `root` would do; Refused when one is the user's."""
    return [_subagent(root), _agents_md(root), _mcp_json(root)]


def write(root: Path, changes: list[Change]) -> list[Change]:
    """Write what `plan` decided."""
    for change in changes:
        if change.action != "unchanged":
            target = root / change.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(change.text, encoding="utf-8")
    return changes


def _existing(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(
            f"{path}: cannot read it ({exc}); move it aside and run `herd init --agent-files` again"
        ) from None


def _subagent(root: Path) -> Change:
    wanted = template("herd-hypervisor.md")
    current = _existing(root / SUBAGENT)
    if current is None:
        return Change(SUBAGENT, "created", wanted)
    if current == wanted:
        return Change(SUBAGENT, "unchanged", wanted)
    raise Refused(
        f"{SUBAGENT} exists and is not herd's current version; herd will not "
        "overwrite it. Rename or delete it, then run `herd init --agent-files` again"
    )


def _agents_md(root: Path) -> Change:
    section = f"{BEGIN}\n{template('AGENTS-section.md').rstrip()}\n{END}\n"
    current = _existing(root / AGENTS_MD)
    if current is None:
        return Change(AGENTS_MD, "created", "# Agents\n\n" + section)
    begins, ends = current.count(BEGIN), current.count(END)
    if (begins, ends) == (0, 0):
        separator = "" if current.endswith("\n\n") else "\n" if current.endswith("\n") else "\n\n"
        return Change(AGENTS_MD, "updated", current + separator + section)
    start, stop = current.find(BEGIN), current.find(END)
    if (begins, ends) != (1, 1) or stop < start:
        raise Refused(
            f"{AGENTS_MD}: herd's markers ({BEGIN!r} ... {END!r}) are unbalanced; "
            "remove herd's section by hand and run `herd init --agent-files` again"
        )
    merged = current[:start] + section.rstrip("\n") + current[stop + len(END) :]
    return Change(AGENTS_MD, "unchanged" if merged == current else "updated", merged)


def _mcp_json(root: Path) -> Change:
    current = _existing(root / MCP_JSON)
    if current is None:
        data: dict[str, Any] = {"mcpServers": {"herd": MCP_ENTRY}}
        return Change(MCP_JSON, "created", json.dumps(data, indent=2) + "\n")
    try:
        data = json.loads(current)
    except json.JSONDecodeError as exc:
        raise Refused(
            f"{MCP_JSON} is not valid JSON ({exc}); fix it, then run `herd init --agent-files` again"
        ) from None
    servers = data.get("mcpServers", {}) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise Refused(
            f'{MCP_JSON}: expected an object with an "mcpServers" object; add '
            f'"herd": {json.dumps(MCP_ENTRY)} to it by hand'
        )
    if servers.get("herd") == MCP_ENTRY:
        return Change(MCP_JSON, "unchanged", current)
    if "herd" in servers:
        raise Refused(
            f"{MCP_JSON} already has an mcpServers.herd entry that differs from "
            f"{json.dumps(MCP_ENTRY)}; herd leaves it as it is"
        )
    data["mcpServers"] = {**servers, "herd": MCP_ENTRY}
    return Change(MCP_JSON, "updated", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
