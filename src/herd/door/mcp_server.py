"""`herd mcp`: the queue, plan, runs, status and report as Model Context Protocol tools.

Each tool is a thin call into the same library code the CLI uses and answers with the same
JSON as the command's `--json`. A HerdError becomes an MCP tool error carrying herd's
message and exit code; the server itself keeps serving. Runs, resumes and landings start
in the background (see herd.door.detached) and return at once: an agent polls `status`.

The server opens the store per call (tools run on worker threads; a Store is not shared
between threads), never runs anything through a shell, and rewrites file paths in its
answers relative to the repository: nothing outside the repository is shown.

Requires the official `mcp` SDK (the `mcp` extra); this module is imported only by
`herd mcp`.
"""

from __future__ import annotations

import functools
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from herd import __version__
from herd.errors import HerdError
from herd.store import Store

P = ParamSpec("P")

# Answer keys that hold file paths (attempt logs, detached output, store path).
PATH_KEYS = frozenset({"log", "log_path", "path", "stdout", "stderr", "worktree", "context"})

INSTRUCTIONS = """\
herd runs a batch of independent tasks side by side (one worker and git worktree each) and
lands the results as one change. To run a batch: `ready` (what can run), `create` tasks with
scopes and success criteria, `plan` (must not be refused: waves, conflicts, warnings),
`run_start` (returns the run id at once), poll `status` every 10-60 s until its state is not
`running`, then `report` (expected / processed / failed / deferred, failure groups). Tool
errors carry herd's exit code: 2 bad input, 3 not found, 4 refused by state (fix the plan,
do not retry blindly), 5 landing failed. A run's exit code: 0 all landed, 1 partial (read
the report's failure groups), 130 interrupted (`resume`)."""

Ids = Annotated[list[str], Field(description='Issue ids, e.g. ["herd-a1b"].')]
Argv = Annotated[
    list[str] | None,
    Field(description='A command as an argv list (never run by a shell), e.g. ["pytest", "-q"].'),
]
# resume and land print their first event only when they get going; a few seconds catch an
# immediate refusal (unknown run, nothing to land) without making the agent wait.
QUICK_CHECK = 5.0

RunId = Annotated[str | None, Field(description="Run id (default: the latest run).")]


def build(db: Path) -> MCPServer:
    """The server for the store at `db` (found by `herd mcp` like every other command)."""
    root = Store(db).root  # fails now, with exit 3, when there is no store
    server = MCPServer(
        "herd", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )  # stderr is the agent's console: errors only

    def tool(fn: Callable[P, Any]) -> Callable[P, CallToolResult]:
        """Register `fn` as a tool: its return value is the answer, a HerdError the error."""

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
            try:
                return _answer(fn(*args, **kwargs), root)
            except HerdError as exc:
                return _error(exc)

        # Unstructured: the answer is built here (the `--json` text plus the same data as
        # structured content), not derived from the function's return annotation.
        server.add_tool(call, structured_output=False)
        return call

    def store() -> Store:
        return Store(db)

    def queue() -> Any:
        from herd.queue.core import Queue

        return Queue(store())

    # -- the queue -----------------------------------------------------------------------

    @tool
    def ready(
        limit: int = 100,
        labels: list[str] | None = None,
        sort: Literal["priority", "hybrid", "oldest"] = "priority",
        assignee: str | None = None,
        unassigned: bool = False,
    ) -> Any:
        """Open issues with nothing blocking them, in bd's order (as `herd ready --json`)."""
        return queue().ready(
            limit=limit, labels=labels or [], sort=sort, assignee=assignee, unassigned=unassigned
        )

    @tool
    def blocked() -> Any:
        """Blocked issues, each with `blocked_by` (as `herd blocked --json`)."""
        return queue().blocked()

    @tool
    def show(ids: Ids) -> Any:
        """Issues in full (as `herd show --json`); exit 3 for an unknown id."""
        return queue().show(ids)

    @tool
    def create(
        title: str,
        description: str = "",
        issue_type: str = "task",
        priority: Annotated[int, Field(ge=0, le=4)] = 2,
        scope: Annotated[
            list[str] | None, Field(description="Git-style globs of the paths the task may modify.")
        ] = None,
        out_of_scope: Annotated[
            list[str] | None, Field(description="Globs of paths it must not touch.")
        ] = None,
        criteria: Annotated[list[str] | None, Field(description="Success criteria, one per item.")] = None,
        deps: Annotated[list[str] | None, Field(description="Ids this issue depends on (blocks).")] = None,
        parent: str | None = None,
        labels: list[str] | None = None,
        assignee: str | None = None,
    ) -> Any:
        """Create an issue (as `herd create --json`): the new issue, with its id."""
        return queue().create(
            title,
            description=description,
            issue_type=issue_type,
            priority=priority,
            scope=scope or (),
            out_of_scope=out_of_scope or (),
            criteria=criteria or (),
            deps=deps or [],
            parent=parent,
            labels=labels or [],
            assignee=assignee,
        )

    @tool
    def update(
        issue_id: str,
        status: str | None = None,
        assignee: str | None = None,
        priority: Annotated[int | None, Field(ge=0, le=4)] = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Change fields of an issue (as `herd update --json`)."""
        return queue().update(
            issue_id,
            status=status,
            assignee=assignee,
            priority=priority,
            title=title,
            description=description,
        )

    @tool
    def close(ids: Ids, reason: str | None = None, force: bool = False) -> Any:
        """Close issues; dependents become ready (exit 4 with open blockers unless force)."""
        return queue().close(ids, reason=reason, force=force)

    @tool
    def comment(issue_id: str, text: str, author: str | None = None) -> Any:
        """Add a comment to an issue."""
        return queue().comment(issue_id, text, author)

    @tool
    def dep_add(issue_id: str, depends_on: str, dep_type: str = "blocks") -> Any:
        """ISSUE_ID depends on DEPENDS_ON; a cycle is refused (exit 4)."""
        queue().dep_add(issue_id, depends_on, dep_type)
        return {"issue_id": issue_id, "depends_on_id": depends_on, "type": dep_type}

    # -- a batch -------------------------------------------------------------------------

    @tool
    def plan(
        ids: Ids | None = None,
        ready: bool = False,
        parent: str | None = None,
        jobs: int | None = None,
        include_blockers: bool = False,
    ) -> Any:
        """Can these tasks run side by side? Waves, scope conflicts, warnings, workers (as
        `herd plan --json`); exit 4 when not runnable. Name ids, or ready, or parent."""
        from herd.git.repo import Git
        from herd.run.plan import make_plan, select_tasks

        opened = store()
        task_ids = select_tasks(opened, ids or (), ready=ready, parent=parent)
        files = Git(opened.root).ls_files() if (opened.root / ".git").exists() else []
        return make_plan(opened, task_ids, files, jobs=jobs, include_blockers=include_blockers).to_json()

    @tool
    def run_start(
        ids: Ids | None = None,
        ready: bool = False,
        parent: str | None = None,
        agent: Annotated[
            str | None, Field(description="Agent preset: claude, codex, aider or one from config.")
        ] = None,
        cmd: Argv = None,
        jobs: int | None = None,
        retries: Annotated[int, Field(ge=0)] = 1,
        timeout: Annotated[str | None, Field(description="Per attempt: 90s, 30m, 2h.")] = None,
        test_cmd: Argv = None,
        format_cmd: Argv = None,
        no_integrate: bool = False,
        push: bool = False,
        include_blockers: bool = False,
    ) -> Any:
        """Start `herd run` in the background and return its run id at once; poll `status`.
        A refused plan or bad option is an error here (the process stops before any work)."""
        from herd.door import detached

        args = ["run", *(ids or ())]
        args += _flags(
            ready=ready,
            parent=parent,
            agent=agent,
            cmd=cmd,
            jobs=jobs,
            retries=retries,
            timeout=timeout,
            test_cmd=test_cmd,
            format_cmd=format_cmd,
            no_integrate=no_integrate,
            push=push,
            include_blockers=include_blockers,
        )
        started = detached.start(store(), args)
        event = started.first_event or {}
        return {
            "run": event.get("run"),
            "tasks": event.get("tasks"),
            "waves": event.get("waves"),
            "workers": event.get("workers"),
            **started.to_json(root),
        }

    @tool
    def status(run: RunId = None) -> Any:
        """One run: state, phase, counts, each task's state and last output line, busy
        workers (as `herd status --json`, plus tasks and phase)."""
        from herd.views.status import detail

        return detail(store(), run)

    @tool
    def report(
        run: RunId = None,
        verify_cmd: Argv = None,
        sample: Annotated[int | None, Field(ge=1)] = None,
        seed: int | None = None,
    ) -> Any:
        """The checkpoint (as `herd report --json`): expected / processed / failed / deferred,
        per-task attempts, failure groups; with verify_cmd and sample, a seeded spot-check
        (`{}` in verify_cmd is the task id)."""
        from herd.errors import BadInput
        from herd.views import report as report_mod

        if (verify_cmd is None) != (sample is None):
            raise BadInput("verify_cmd and sample go together")
        opened = store()
        data = report_mod.build(opened, run)
        if verify_cmd is not None and sample is not None:
            report_mod.verify(data, shlex.join(verify_cmd), sample, seed, cwd=opened.root)
        return data

    @tool
    def resume(run: RunId = None) -> Any:
        """Continue an interrupted run in the background (as `herd resume`); poll `status`."""
        from herd.door import detached

        started = detached.start(store(), ["resume", *([run] if run else [])], wait=QUICK_CHECK)
        return {"run": (started.first_event or {}).get("run", run), **started.to_json(root)}

    @tool
    def land(run: str, test_cmd: Argv = None, format_cmd: Argv = None, push: bool = False) -> Any:
        """Land the succeeded tasks of a run that stopped before landing (`--no-integrate`),
        as `herd land RUN`, in the background; poll `status`, then `report`."""
        from herd.door import detached

        args = ["land", run, *_flags(test_cmd=test_cmd, format_cmd=format_cmd, push=push)]
        started = detached.start(store(), args, wait=QUICK_CHECK)
        return {"run": run, "first_event": started.first_event, **started.to_json(root)}

    return server


def _flags(**options: Any) -> list[str]:
    """CLI flags for the detached command: booleans as bare flags, argv lists joined so the
    CLI's shlex split gives back exactly the same list (no shell ever sees them)."""
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(flag)
        elif isinstance(value, list):
            flags += [flag, shlex.join(value)]
        else:
            flags += [flag, str(value)]
    return flags


def _answer(data: Any, root: Path) -> CallToolResult:
    data = _confine(data, root)
    structured = data if isinstance(data, dict) else {"result": data}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False, indent=2))],
        structured_content=structured,
    )


def _error(exc: HerdError) -> CallToolResult:
    text = f"herd: error: {exc} (exit {exc.exit_code})"
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        is_error=True,
        structured_content={"error": str(exc), "exit_code": exc.exit_code},
    )


def _confine(data: Any, root: Path) -> Any:
    """Paths in an answer, relative to the repository; a path outside it shows as its
    file name only."""
    if isinstance(data, dict):
        return {
            k: (_relative(v, root) if k in PATH_KEYS and isinstance(v, str) else _confine(v, root))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_confine(v, root) for v in data]
    return data


def _relative(value: str, root: Path) -> str:
    path = Path(value)
    if not path.is_absolute():
        return value
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def serve(db: Path) -> None:
    """Serve over stdio until the client closes the connection."""
    build(db).run("stdio")
