"""`herd mcp` driven by the MCP SDK's own client over stdio: the real server process, a real
repo and store, a run started in the background with a fake agent that edits and commits.

Run with `-s` to see the transcript (tools listed, status polled, the report)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from _queue_helpers import herd
from _run_helpers import Project

pytest.importorskip("mcp", reason="the mcp extra is not installed (pip install -e '.[mcp]')")

from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

TOOLS = {
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


def _say(text: str) -> None:
    print(text, flush=True)


def _data(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    return json.loads(text)


def _error(result: CallToolResult) -> tuple[str, int | None]:
    assert result.is_error, f"expected a tool error, got {result.content}"
    structured = result.structured_content or {}
    return result.content[0].text, structured.get("exit_code")  # type: ignore[union-attr]


def _server(p: Project, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "herd", "mcp", *args], cwd=str(p.repo), env=p.env
    )


def _in_process(p: Project, monkeypatch: pytest.MonkeyPatch) -> MCPServer:
    """The same server inside pytest, reached through the SDK's in-memory transport: no
    `herd mcp` process (the first test drives that one), and its code is measured."""
    from herd.door.mcp_server import build

    for key, value in p.env.items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(p.repo)
    return build(p.repo / ".herd" / "herd.db")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, files=3)


def test_an_agent_runs_a_batch_through_the_mcp_server(project: Project) -> None:
    p = project

    async def session() -> None:
        async with Client(_server(p), read_timeout_seconds=120) as client:
            listed = await client.list_tools()
            names = {tool.name for tool in listed.tools}
            _say(f"tools: {', '.join(sorted(names))}")
            assert names == TOOLS
            create_schema = next(t for t in listed.tools if t.name == "create").input_schema
            assert create_schema["required"] == ["title"]
            assert {"scope", "out_of_scope", "criteria", "priority"} <= set(create_schema["properties"])

            ids = []
            for n in range(3):
                issue = _data(
                    await client.call_tool(
                        "create",
                        {
                            "title": f"Edit module {n}",
                            "description": f"edit: src/m{n}.py",
                            "scope": [f"src/m{n}.py"],
                            "criteria": ["the module has a new line"],
                        },
                    )
                )
                ids.append(issue["id"])
                _say(f"create -> {issue['id']} scope {issue['metadata']['herd']['scope']}")
            ready = _data(await client.call_tool("ready", {}))
            assert {i["id"] for i in ready} == set(ids)

            plan = _data(await client.call_tool("plan", {"ids": ids}))
            _say(
                f"plan -> waves {plan['waves']}, conflicts {plan['conflicts']}, "
                f"warnings {plan['warnings']}, workers {plan['workers']}"
            )
            assert len(plan["waves"]) == 1 and not plan["conflicts"]

            clock = time.monotonic()
            started = _data(
                await client.call_tool("run_start", {"ids": ids, "cmd": [str(p.agent)], "jobs": 3})
            )
            _say(f"run_start -> {json.dumps(started)} ({time.monotonic() - clock:.2f}s)")
            run_id = started["run"]
            assert run_id and started["tasks"] == 3
            assert not Path(started["stdout"]).is_absolute()

            while True:
                status = _data(await client.call_tool("status", {"run": run_id}))
                _say(
                    f"status -> {status['state']} phase={status['phase']} "
                    f"counts={status['counts']} tasks="
                    + ", ".join(f"{t['id']}:{t['state']}" for t in status["tasks"])
                )
                if status["state"] != "running":
                    break
                assert time.monotonic() - clock < 90, "the run did not end in 90 s"
                await anyio.sleep(0.5)
            assert status["state"] == "done" and status["exit_code"] == 0
            assert {t["state"] for t in status["tasks"]} == {"landed"}

            report = _data(
                await client.call_tool(
                    "report",
                    {
                        "run": run_id,
                        "verify_cmd": ["git", "grep", "-q", "edited by {}", "HEAD"],
                        "sample": 2,
                        "seed": 7,
                    },
                )
            )
            _say(
                "report -> "
                + json.dumps(
                    {k: report[k] for k in ("run", "state", "exit_code", "counts", "failure_groups")}
                )
            )
            _say(
                f"report verification -> {report['verification']['passed']}/"
                f"{report['verification']['sample']} passed (seed 7)"
            )
            assert report["counts"]["expected"] == 3 and report["counts"]["processed"] == 3
            assert report["counts"]["failed"] == 0 and report["counts"]["deferred"] == 0
            assert report["verification"]["passed"] == 2
            for task in report["tasks"]:
                for attempt in task["attempts"]:
                    assert attempt["log"] is None or not Path(attempt["log"]).is_absolute()
            closed = _data(await client.call_tool("show", {"ids": ids}))
            assert {i["status"] for i in closed} == {"closed"}

    anyio.run(session)
    for n in range(3):
        assert "edited by" in (p.repo / "src" / f"m{n}.py").read_text()


def test_bad_input_is_a_tool_error_and_the_server_keeps_serving(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project
    server = _in_process(p, monkeypatch)

    async def session() -> None:
        async with Client(server, read_timeout_seconds=60) as client:
            text, code = _error(await client.call_tool("show", {"ids": ["t-nope"]}))
            _say(f"show unknown id -> {text}")
            assert code == 3 and "t-nope" in text

            a = _data(await client.call_tool("create", {"title": "A"}))["id"]
            b = _data(await client.call_tool("create", {"title": "B"}))["id"]
            _data(await client.call_tool("dep_add", {"issue_id": a, "depends_on": b}))
            text, code = _error(await client.call_tool("dep_add", {"issue_id": b, "depends_on": a}))
            _say(f"dep_add making a cycle -> {text}")
            assert code == 4 and "cycle" in text

            bad = _data(await client.call_tool("create", {"title": "Bad glob", "scope": ["src/bad\\"]}))["id"]
            text, code = _error(await client.call_tool("plan", {"ids": [bad]}))
            _say(f"plan with a bad glob -> {text}")
            assert code == 2 and "glob" in text

            text, code = _error(await client.call_tool("plan", {"ids": [a]}))
            _say(f"plan of a blocked task -> {text}")
            assert code == 4

            text, code = _error(await client.call_tool("run_start", {"ids": [b]}))
            _say(f"run_start without agent or cmd -> {text}")
            assert code == 2 and "--agent" in text

            text, code = _error(await client.call_tool("create", {"title": "P", "priority": 9}))
            _say(f"create with priority 9 -> {text}")
            assert code is None and "priority" in text

            text, code = _error(await client.call_tool("status", {"run": "nope"}))
            assert code == 3
            text, code = _error(await client.call_tool("resume", {"run": "nope"}))
            _say(f"resume unknown run -> {text}")
            assert code == 3

            result = await client.call_tool("no_such_tool", {})
            assert result.is_error
            # Still serving after all of that.
            assert len(_data(await client.call_tool("ready", {}))) == 2  # A waits for B

    anyio.run(session)


def test_resume_continues_a_crashed_run_in_the_background(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project
    ids = [p.create(f"Edit module {n}", f"edit: src/m{n}.py", scope=[f"src/m{n}.py"]) for n in range(2)]
    crashed = herd(
        "run",
        *ids,
        "--cmd",
        str(p.agent),
        cwd=p.repo,
        check=None,
        env={**p.env, "HERD_FAILPOINT": "mid-stack"},
    )
    assert crashed.returncode == 99
    run_id = p.latest_run()

    server = _in_process(p, monkeypatch)

    async def session() -> None:
        async with Client(server, read_timeout_seconds=60) as client:
            resumed = _data(await client.call_tool("resume", {"run": run_id}))
            _say(f"resume -> {json.dumps(resumed)}")
            assert resumed["run"] == run_id
            deadline = time.monotonic() + 60
            while (status := _data(await client.call_tool("status", {"run": run_id})))["state"] == "running":
                assert time.monotonic() < deadline, "the resumed run did not end in 60 s"
                await anyio.sleep(0.5)
            _say(f"status after resume -> {status['state']} {status['counts']}")
            assert status["state"] == "done" and status["counts"] == {"landed": 2}
            text, code = _error(await client.call_tool("resume", {"run": run_id}))
            _say(f"resume a finished run -> {text}")
            assert code == 4

    anyio.run(session)
