"""`herd init --agent-files`: the subagent, the AGENTS.md section and the .mcp.json entry;
a user's own files are merged into or refused, never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _queue_helpers import herd

from herd.door import agent_files
from herd.errors import Refused

MCP_TOOLS = {
    "ready",
    "blocked",
    "show",
    "create",
    "update",
    "close",
    "comment",
    "dep_add",
    "plan",
    "run_start",
    "status",
    "report",
    "resume",
    "land",
}


def _write(root: Path) -> dict[str, str]:
    changes = agent_files.write(root, agent_files.plan(root))
    return {str(c.path): c.action for c in changes}


def test_init_agent_files_writes_the_three_files(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    done = herd("init", "--agent-files", "--json", cwd=tmp_path)
    assert {(c["path"], c["action"]) for c in json.loads(done.stdout)["agent_files"]} == {
        (".claude/agents/herd-hypervisor.md", "created"),
        ("AGENTS.md", "created"),
        (".mcp.json", "created"),
    }
    assert (tmp_path / ".herd" / "herd.db").exists()
    assert json.loads((tmp_path / ".mcp.json").read_text()) == {
        "mcpServers": {"herd": {"command": "herd", "args": ["mcp"]}}
    }
    agents_md = (tmp_path / "AGENTS.md").read_text()
    assert agents_md.count(agent_files.BEGIN) == 1 and "herd plan" in agents_md
    # Again: nothing changes, nothing is duplicated.
    again = herd("init", "--agent-files", "--json", cwd=tmp_path)
    assert {c["action"] for c in json.loads(again.stdout)["agent_files"]} == {"unchanged"}
    assert (tmp_path / "AGENTS.md").read_text() == agents_md


def test_the_subagent_has_the_frontmatter_claude_code_reads(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    _write(tmp_path)
    text = (tmp_path / ".claude/agents/herd-hypervisor.md").read_text()
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    assert meta["name"] == "herd-hypervisor" and meta["description"]
    tools = [t.strip() for t in meta["tools"].split(",")]
    # Claude Code names MCP tools mcp__<server>__<tool>; every herd tool is allowed.
    assert {t.removeprefix("mcp__herd__") for t in tools if t.startswith("mcp__herd__")} == MCP_TOOLS
    for needed in ("plan", "run_start", "status", "report", "exit code", "When to stop"):
        assert needed in body


def test_user_files_are_merged_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("# My rules\n\nAlways run the linter.\n")
    (tmp_path / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"other": {"command": "other-server"}}, "extra": 1})
    )
    assert _write(tmp_path) == {
        ".claude/agents/herd-hypervisor.md": "created",
        "AGENTS.md": "updated",
        ".mcp.json": "updated",
    }
    agents_md = (tmp_path / "AGENTS.md").read_text()
    assert agents_md.startswith("# My rules\n\nAlways run the linter.\n\n" + agent_files.BEGIN)
    config = json.loads((tmp_path / ".mcp.json").read_text())
    assert config["mcpServers"]["other"] == {"command": "other-server"} and config["extra"] == 1
    assert config["mcpServers"]["herd"] == agent_files.MCP_ENTRY
    # The user edits around herd's section; a rerun replaces only the section.
    edited = agents_md.replace("herd plan", "HERD PLAN") + "\n## After\n\nmore rules\n"
    (tmp_path / "AGENTS.md").write_text(edited)
    assert _write(tmp_path)["AGENTS.md"] == "updated"
    rewritten = (tmp_path / "AGENTS.md").read_text()
    assert "HERD PLAN" not in rewritten and rewritten.endswith("\n## After\n\nmore rules\n")
    assert rewritten.startswith("# My rules\n")


@pytest.mark.parametrize(
    "path, content, message",
    [
        (".claude/agents/herd-hypervisor.md", "---\nname: mine\n---\nmy own agent\n", "overwrite"),
        (".mcp.json", "{not json", "not valid JSON"),
        (".mcp.json", json.dumps({"mcpServers": {"herd": {"command": "my-herd"}}}), "differs"),
        ("AGENTS.md", agent_files.BEGIN + "\nno end marker\n", "unbalanced"),
    ],
)
def test_a_conflicting_file_is_refused_and_nothing_is_written(
    tmp_path: Path, path: str, content: str, message: str
) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(content)
    with pytest.raises(Refused, match=message):
        agent_files.plan(tmp_path)
    (tmp_path / ".git").mkdir()
    done = herd("init", "--agent-files", cwd=tmp_path, check=4)
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert (tmp_path / path).read_text() == content
    others = {".claude/agents/herd-hypervisor.md", "AGENTS.md", ".mcp.json"} - {path}
    assert not any((tmp_path / other).exists() for other in others)
    assert not (tmp_path / ".herd").exists()
