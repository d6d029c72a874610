"""Agent presets end to end: fake `claude`, `codex`, `aider` (and a custom one) on PATH.

Each fake checks its own argv the way the real tool would parse it (a wrong
preset makes it exit 2), records what it got, edits the file in its task's
scope and, like the real tool, commits or leaves committing to herd.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from _run_helpers import Project

FAKE_TOOL = r"""#!PYTHON
import json, os, re, subprocess, sys

name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
context_file = os.environ["HERD_CONTEXT_FILE"]
context = open(context_file, encoding="utf-8").read()

def bad(why):
    print(f"{name}: bad arguments ({why}): {args}", file=sys.stderr)
    sys.exit(2)

if name == "claude":
    if len(args) != 6 or args[0] != "-p" or args[2:] != ["--output-format", "json",
                                                         "--permission-mode", "acceptEdits"]:
        bad("want -p PROMPT --output-format json --permission-mode acceptEdits")
    if context_file not in args[1]:
        bad("the prompt does not name the context file")
elif name == "codex":
    if args[:1] != ["exec"] or len(args) < 2 or context_file not in args[-1]:
        bad("want exec ... PROMPT")
elif name == "aider":
    if "--message-file" not in args or args[args.index("--message-file") + 1] != context_file:
        bad("want --message-file CONTEXT")
    context = open(args[args.index("--message-file") + 1], encoding="utf-8").read()
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as f:
    f.write(json.dumps({"tool": name, "argv": args, "task": os.environ["HERD_TASK_ID"],
                        "cwd": os.getcwd()}) + "\n")
path = re.search(r"^\*\*Scope\*\*: (\S+)", context, re.M).group(1)
with open(path, "a", encoding="utf-8") as f:
    f.write(f"{name} was here\n")
if name != "aider":  # aider runs with --no-auto-commits: herd commits what it left
    subprocess.run(["git", "commit", "-qam", f"{name} edit"], check=True)
cost = float(os.environ.get("FAKE_COST", "0.03"))
if name == "claude":
    print("thinking...")
    print(json.dumps({"type": "result", "is_error": False, "total_cost_usd": cost,
                      "result": "done"}))
else:
    print(json.dumps({"cost": cost, "tokens": 10}))
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path, files=8)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = FAKE_TOOL.replace("PYTHON", f"{sys.executable} -S", 1)  # stdlib only: no site
    for name in ("claude", "codex", "aider", "mytool"):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    p.env["PATH"] = f"{bin_dir}{os.pathsep}{p.env['PATH']}"
    return p


def _agent_run(p: Project, *args: str, check: int = 0) -> list[dict[str, object]]:
    done = p.herd("run", *args, "--no-integrate", "--json", check=check)
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("agent", ["claude", "codex", "aider"])
def test_builtin_preset_runs_the_tool_with_its_argv(project: Project, agent: str) -> None:
    p = project
    task = p.create(f"Use {agent}", scope=["src/m0.py"])
    events = _agent_run(p, task, "--agent", agent)
    [call] = p.calls()
    assert call["tool"] == agent
    argv = call["argv"]
    context = str(p.repo / ".herd" / "runs" / str(events[0]["run"]) / task / "context-1.md")
    if agent == "claude":
        assert argv[0] == "-p" and argv[2:] == ["--output-format", "json", "--permission-mode", "acceptEdits"]
        assert context in argv[1] and str(call["cwd"]) in argv[1]
    elif agent == "codex":
        assert argv[0] == "exec" and context in argv[-1]
    else:
        assert argv[argv.index("--message-file") + 1] == context
    run_id = events[0]["run"]
    diff = p.git("show", "--format=", f"herd/{run_id}/{task}")
    assert f"+{agent} was here" in diff
    ends = [e for e in events if e["event"] == "task_end"]
    assert ends[0]["state"] == "succeeded"


def test_claude_cost_is_read_from_total_cost_usd(project: Project) -> None:
    p = project
    ids = [p.create(f"T{n}", scope=[f"src/m{n}.py"]) for n in range(2)]
    done = p.herd("run", *ids, "--agent", "claude", "--no-integrate")
    assert "cost $0.06" in done.stdout
    run_id = p.latest_run()
    import sqlite3

    with sqlite3.connect(p.repo / ".herd" / "herd.db") as db:
        costs = [row[0] for row in db.execute("SELECT cost_usd FROM attempts WHERE run_id = ?", (run_id,))]
    assert costs == [0.03, 0.03]


def test_budget_stops_starting_tasks_and_leaves_the_rest_open(project: Project) -> None:
    p = project
    ids = [p.create(f"T{n}", scope=[f"src/m{n}.py"]) for n in range(5)]
    done = p.herd(
        "run", *ids, "--agent", "claude", "-j", "1", "--budget-usd", "0.05", "--no-integrate", check=1
    )
    assert len(p.calls()) == 2, "the budget was reached after two tasks of $0.03"
    ran = {c["task"] for c in p.calls()}
    skipped = [t for t in ids if t not in ran]
    assert len(skipped) == 3
    for task_id in skipped:
        shown = p.show(task_id)
        assert shown["status"] == "open" and not shown.get("assignee"), shown
        assert f"skipped {task_id}  the run's budget was reached" in done.stdout


def test_config_overrides_a_builtin_and_adds_a_preset(project: Project) -> None:
    p = project
    (p.repo / ".herd" / "config.toml").write_text(
        "[agents.claude]\n"
        'argv = ["claude", "-p", "{prompt}", "--output-format", "json", '
        '"--permission-mode", "acceptEdits"]\n'
        'cost_field = "no_such_field"\n'
        "\n"
        "[agents.mine]\n"
        'argv = ["mytool", "--task={id}", "--in", "{worktree}", "{context}"]\n'
        'cost_field = "cost"\n'
    )
    claude_task = p.create("Claude, costless", scope=["src/m0.py"])
    done = p.herd("run", claude_task, "--agent", "claude", "--no-integrate")
    assert "cost $" not in done.stdout, "cost_field was overridden"
    mine = p.create("Mine", scope=["src/m1.py"])
    done = p.herd("run", mine, "--agent", "mine", "--no-integrate")
    call = p.calls()[-1]
    assert call["tool"] == "mytool"
    assert call["argv"][0] == f"--task={mine}"
    assert call["argv"][1:3] == ["--in", call["cwd"]]
    assert call["argv"][3].endswith(f"{mine}/context-1.md")
    assert "cost $0.03" in done.stdout


def test_unknown_agent_and_bad_config_are_usage_errors(project: Project) -> None:
    p = project
    task = p.create("T", scope=["src/m0.py"])
    unknown = p.herd("run", task, "--agent", "nope", "--no-integrate", check=2)
    assert "unknown agent 'nope'" in unknown.stderr and "[agents.nope]" in unknown.stderr
    (p.repo / ".herd" / "config.toml").write_text('[agents.broken]\nargv = "not a list"\n')
    broken = p.herd("run", task, "--agent", "broken", "--no-integrate", check=2)
    assert "[agents.broken] needs argv" in broken.stderr
    both = p.herd("run", task, "--agent", "claude", "--cmd", "true", check=2)
    assert "--agent NAME or --cmd CMD" in both.stderr
    assert p.calls() == [] and p.show(task)["status"] == "open"


def test_a_missing_agent_program_is_refused_before_anything_starts(project: Project) -> None:
    p = project
    p.env["PATH"] = "/usr/bin:/bin"
    task = p.create("T", scope=["src/m0.py"])
    refused = p.herd("run", task, "--agent", "claude", "--no-integrate", check=2)
    assert "'claude' is not on PATH" in refused.stderr
    assert "npm install -g @anthropic-ai/claude-code" in refused.stderr
    assert "--cmd" in refused.stderr and "Traceback" not in refused.stderr
    shown = p.show(task)
    assert shown["status"] == "open" and not shown.get("assignee") and not p.comments(task)
    assert p.latest_run_or_none() is None
    assert not (p.repo / ".herd" / "worktrees").exists() or not any(
        (p.repo / ".herd" / "worktrees").iterdir()
    )
