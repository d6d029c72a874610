"""Queue commands (names and flags follow bd where the two overlap)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from herd.cli.app import cli, common, make_context, warn, write_json_lines
from herd.cli.fast import issue_line
from herd.errors import BadInput, Refused
from herd.queue.model import Record
from herd.units import plural

_line = issue_line


def _lines(issues: Iterable[Record], empty: str) -> None:
    shown = False
    for issue in issues:
        click.echo(_line(issue))
        shown = True
    if not shown:
        click.echo(empty)


def _details(issue: Record) -> None:
    from herd.queue.model import criteria_of, scope_of

    click.echo(_line(issue))
    for key in ("created_at", "updated_at", "closed_at", "close_reason"):
        if issue.get(key):
            click.echo(f"  {key.replace('_', ' ')}: {issue[key]}")
    if issue.get("labels"):
        click.echo(f"  labels: {', '.join(issue['labels'])}")
    scope, out_of_scope = scope_of(issue)
    if scope:
        click.echo(f"  scope: {', '.join(scope)}")
    if out_of_scope:
        click.echo(f"  out of scope: {', '.join(out_of_scope)}")
    for key in ("description", "design", "notes"):
        if issue.get(key):
            click.echo(f"\n  {key.capitalize()}:\n" + indent_text(issue[key]))
    criteria = criteria_of(issue)
    if criteria:
        click.echo("\n  Success criteria:")
        for n, text in enumerate(criteria, start=1):
            click.echo(f"    {n}. {text}")
    deps = issue.get("dependencies") or []
    if deps:
        click.echo("\n  Depends on:")
        for dep in deps:
            click.echo(f"    {dep['depends_on_id']} ({dep.get('type', 'blocks')})")
    for comment in issue.get("comments") or []:
        click.echo(
            f"\n  Comment by {comment.get('author')} at {comment.get('created_at')}:\n"
            + indent_text(comment.get("text", ""))
        )
    click.echo()


def _each(render: Callable[[Record], None], issues: list[Record]) -> None:
    for issue in issues:
        render(issue)


def indent_text(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines())


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@cli.command()
@click.option("--prefix", help="Id prefix (default: the directory's name).")
@click.option(
    "--agent-files",
    is_flag=True,
    help="Also write the hypervisor playbook for agents: .claude/agents/"
    "herd-hypervisor.md, a section of AGENTS.md, the herd entry of .mcp.json.",
)
@common
def init(prefix: str | None, agent_files: bool, db: str | None, as_json: bool) -> None:
    """Create .herd/ in the repository root (store, config, gitignore)."""
    from herd.door import agent_files as files
    from herd.queue.core import init as init_store

    ctx = make_context(db, as_json)
    root = _repo_root(Path.cwd())
    if not (root / ".git").exists() and not ctx.db:
        warn(
            f"{root} is not in a git repository: the queue works here, but `herd run` needs "
            "one (git init, commit your files, then herd init there)"
        )

    # Checked before anything is written: a refused file (the user's own) leaves nothing.
    changes = files.plan(root) if agent_files else []
    store = init_store(root, prefix, Path(ctx.db) if ctx.db else None)
    written = [change.to_json() for change in files.write(root, changes)]

    def text() -> None:
        click.echo(f"herd: store at {store.path} (prefix {store.get_config('issue_prefix')})")
        for change in written:
            click.echo(f"herd: {change['action']} {change['path']}")

    ctx.emit(
        {
            "path": str(store.path),
            "prefix": store.get_config("issue_prefix"),
            **({"agent_files": written} if agent_files else {}),
        },
        text,
    )


def _repo_root(start: Path) -> Path:
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return here


@cli.command()
@click.argument("title")
@click.option("-d", "--description", default="", help="Description.")
@click.option(
    "-t",
    "--type",
    "issue_type",
    default="task",
    show_default=True,
    help="bug, feature, task, epic, chore (or your own).",
)
@click.option("-p", "--priority", type=int, default=2, show_default=True, help="0 (urgent) to 4.")
@click.option("--scope", multiple=True, metavar="GLOB", help="Paths the task may modify.")
@click.option("--out-of-scope", multiple=True, metavar="GLOB", help="Paths it must not touch.")
@click.option("--criteria", multiple=True, metavar="TEXT", help="A success criterion (repeat).")
@click.option("--deps", multiple=True, metavar="ID,..", help="Ids this depends on (blocks).")
@click.option("--parent", metavar="ID", help="Parent (epic); the id becomes PARENT.N.")
@click.option("-l", "--label", "labels", multiple=True, metavar="LABEL", help="A label (repeatable).")
@click.option("-a", "--assignee", help="Who the issue is assigned to.")
@common
def create(
    title: str,
    description: str,
    issue_type: str,
    priority: int,
    scope: tuple[str, ...],
    out_of_scope: tuple[str, ...],
    criteria: tuple[str, ...],
    deps: tuple[str, ...],
    parent: str | None,
    labels: tuple[str, ...],
    assignee: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Create an issue; prints its id."""
    ctx = make_context(db, as_json)
    issue = ctx.queue().create(
        title,
        description=description,
        issue_type=issue_type,
        priority=priority,
        scope=scope,
        out_of_scope=out_of_scope,
        criteria=criteria,
        deps=_split(deps),
        parent=parent,
        labels=_split(labels),
        assignee=assignee,
    )
    ctx.emit(issue, lambda: click.echo(issue["id"]))


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@common
def show(ids: tuple[str, ...], db: str | None, as_json: bool) -> None:
    """Show issues in full."""
    ctx = make_context(db, as_json)
    issues = ctx.queue().show(list(ids))
    ctx.emit(issues, lambda: _each(_details, issues))


@cli.command("list")
@click.option("-s", "--status", "statuses", multiple=True, help="Statuses (comma separated).")
@click.option("--all", "include_closed", is_flag=True, help="Include closed issues.")
@click.option("-l", "--label", help="Only issues with this label.")
@click.option("-t", "--type", "issue_type", help="Only issues of this type.")
@click.option("-n", "--limit", type=int, default=0, help="0 = no limit.")
@common
def list_cmd(
    statuses: tuple[str, ...],
    include_closed: bool,
    label: str | None,
    issue_type: str | None,
    limit: int,
    db: str | None,
    as_json: bool,
) -> None:
    """List issues (closed hidden unless --all or asked for)."""
    ctx = make_context(db, as_json)
    issues = ctx.queue().list_json(
        statuses=_split(statuses) or None,
        include_closed=include_closed,
        label=label,
        issue_type=issue_type,
        limit=limit,
    )
    if ctx.as_json:
        write_json_lines(issues)
    else:
        _lines(map(json.loads, issues), "no issues")


@cli.command()
@click.option("-n", "--limit", type=int, default=100, show_default=True, help="0 = no limit.")
@click.option(
    "-l", "--label", "labels", multiple=True, help="Only issues with this label (repeat: all of them)."
)
@click.option(
    "-s",
    "--sort",
    type=click.Choice(["priority", "hybrid", "oldest"]),
    default="priority",
    show_default=True,
    help="priority: most urgent first, newest first within a priority; hybrid: the "
    "last 48 hours by priority, then oldest first; oldest: oldest first.",
)
@click.option("-a", "--assignee", help="Only this assignee's issues.")
@click.option("-u", "--unassigned", is_flag=True, help="Only issues nobody is assigned to.")
@click.option(
    "--claim",
    is_flag=True,
    help="Claim the first ready unassigned issue "
    "(compare-and-swap); prints nothing to claim as an empty list with --json.",
)
@click.option("--actor", help="Who claims (default: HERD_ACTOR, BD_ACTOR or your user name).")
@common
def ready(
    limit: int,
    labels: tuple[str, ...],
    sort: str,
    assignee: str | None,
    unassigned: bool,
    claim: bool,
    actor: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    """Open work with nothing blocking it, in bd's order."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    if claim:
        if assignee:
            raise BadInput("--claim cannot be combined with --assignee (it claims only unassigned issues)")
        issue = queue.claim_next_ready(actor, labels=_split(labels), sort=sort)
        # As bd: nothing to claim is not an error; --json gives a list either way.
        ctx.emit(
            [issue] if issue else [],
            lambda: click.echo(f"claimed {_line(issue)}" if issue else "nothing ready to claim"),
        )
        return
    issues = queue.ready_json(
        limit=limit, labels=_split(labels), sort=sort, assignee=assignee, unassigned=unassigned
    )
    if ctx.as_json:
        write_json_lines(issues)
        return
    _lines(map(json.loads, issues), "nothing is ready")
    _warn_dangling(queue)


def _warn_dangling(queue: Any) -> None:
    dangling = queue.dangling()
    if dangling:
        issue_id, target, dep_type = dangling[0]
        warn(
            f"{plural(len(dangling), 'dependency', 'dependencies')} point"
            f"{'s' if len(dangling) == 1 else ''} at ids not in the store (e.g. {issue_id} "
            f"-> {target} [{dep_type}]); they do not block"
        )


@cli.command()
@common
def blocked(db: str | None, as_json: bool) -> None:
    """Blocked issues, each with what blocks it."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    issues = queue.blocked_json()
    if ctx.as_json:
        write_json_lines(issues)
        return
    shown = False
    for issue in map(json.loads, issues):
        click.echo(f"{_line(issue)}\n    blocked by: {', '.join(issue['blocked_by'])}")
        shown = True
    if not shown:
        click.echo("nothing is blocked")
    _warn_dangling(queue)


_LEASE_DEFAULT = "30m"  # herd.queue.core.DEFAULT_LEASE_SECONDS, as a flag value


@cli.command()
@click.argument("issue_ids", nargs=-1, required=True)
@click.option("-s", "--status", help="New status: open, in_progress, blocked, deferred, ...")
@click.option("-a", "--assignee", help="New assignee.")
@click.option("-p", "--priority", type=int, help="New priority, 0 (urgent) to 4.")
@click.option("--title", help="New title.")
@click.option("-d", "--description", help="New description.")
@click.option("--claim", is_flag=True, help="Compare-and-swap claim: exit 4 if someone has it.")
@click.option("--actor", help="Who claims (default: HERD_ACTOR, BD_ACTOR or your user name).")
@click.option(
    "--lease",
    default=_LEASE_DEFAULT,
    show_default=True,
    metavar="DURATION",
    help="How long the claim holds (e.g. 90s, 30m, 2h); after it expires the "
    "issue is ready again and anyone may claim it.",
)
@common
def update(
    issue_ids: tuple[str, ...],
    status: str | None,
    assignee: str | None,
    priority: int | None,
    title: str | None,
    description: str | None,
    claim: bool,
    actor: str | None,
    lease: str,
    db: str | None,
    as_json: bool,
) -> None:
    """Change fields of one or more issues, or claim one."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    if claim:
        if len(issue_ids) > 1:
            raise BadInput("--claim takes one issue at a time (each claim is its own compare-and-swap)")
        if any(v is not None for v in (status, assignee)):
            raise BadInput("--claim sets status and assignee itself; drop --status/--assignee")
        from herd.units import duration

        issue = queue.claim(issue_ids[0], actor, duration(lease))
        if any(v is not None for v in (priority, title, description)):
            issue = queue.update(issue_ids[0], priority=priority, title=title, description=description)
        issues = [issue]
    else:
        queue.show(list(issue_ids))  # every id exists, or nothing changes (exit 3)
        issues = [
            queue.update(
                issue_id,
                status=status,
                assignee=assignee,
                priority=priority,
                title=title,
                description=description,
            )
            for issue_id in issue_ids
        ]
    # One id answers with the issue, as before (bd's shape); several with the list.
    ctx.emit(
        issues[0] if len(issues) == 1 else issues,
        lambda: _each(lambda i: click.echo(f"updated {_line(i)}"), issues),
    )


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("-r", "--reason", help="Why it is closed (kept as close_reason).")
@click.option(
    "-f", "--force", is_flag=True, help="Close even when pinned, blocked or an epic with open children."
)
@common
def close(ids: tuple[str, ...], reason: str | None, force: bool, db: str | None, as_json: bool) -> None:
    """Close issues; their dependents become ready in the same command.

    As bd: an issue a guard refuses is reported and the others are closed; the exit code
    is 0 when at least one closed, 4 when none did."""
    ctx = make_context(db, as_json)
    result = ctx.queue().close_each(list(ids), reason=reason, force=force)
    issues = result.closed
    if result.refused and not issues:
        raise Refused("; ".join(result.refused))
    for refusal in result.refused:
        warn(refusal)
    ctx.emit(issues, lambda: _each(lambda i: click.echo(f"closed {_line(i)}"), issues))


@cli.command()
@click.argument("issue_id")
@click.option("-r", "--reason", help="Why it is reopened (added as a comment).")
@common
def reopen(issue_id: str, reason: str | None, db: str | None, as_json: bool) -> None:
    """Reopen a closed issue."""
    ctx = make_context(db, as_json)
    issue = ctx.queue().reopen(issue_id, reason)
    ctx.emit(issue, lambda: click.echo(f"reopened {_line(issue)}"))


@cli.command()
@common
def stats(db: str | None, as_json: bool) -> None:
    """Counts by status, as bd's stats."""
    ctx = make_context(db, as_json)
    summary = ctx.queue().stats()

    def text() -> None:
        for key, value in summary["summary"].items():
            click.echo(f"{key.replace('_', ' '):>20}: {value}")

    ctx.emit(summary, text)
