"""Queue commands (names and flags follow bd where the two overlap)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from herd.cli.app import cli, common, make_context, warn
from herd.errors import EXIT_REFUSED, BadInput, Refused
from herd.queue.model import Record
from herd.units import plural


def _line(issue: Record) -> str:
    extra = f" @{issue['assignee']}" if issue.get("assignee") else ""
    return (f"{issue['id']} [P{issue.get('priority', 2)}] [{issue.get('issue_type', 'task')}] "
            f"{issue.get('status')}{extra} - {issue.get('title', '')}")


def _lines(issues: list[Record], empty: str) -> None:
    if not issues:
        click.echo(empty)
    for issue in issues:
        click.echo(_line(issue))


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
            click.echo(f"\n  {key.capitalize()}:\n" + _indent(issue[key]))
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
        click.echo(f"\n  Comment by {comment.get('author')} at {comment.get('created_at')}:\n"
                   + _indent(comment.get("text", "")))
    click.echo()


def _each(render: Callable[[Record], None], issues: list[Record]) -> None:
    for issue in issues:
        render(issue)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines())


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@cli.command()
@click.option("--prefix", help="Id prefix (default: the directory's name).")
@click.option("--agent-files", is_flag=True,
              help="Also write the hypervisor playbook for agents: .claude/agents/"
                   "herd-hypervisor.md, a section of AGENTS.md, the herd entry of .mcp.json.")
@common
def init(prefix: str | None, agent_files: bool, db: str | None, as_json: bool) -> None:
    """Create .herd/ in the repository root (store, config, gitignore)."""
    from herd.door import agent_files as files
    from herd.queue.core import init as init_store

    ctx = make_context(db, as_json)
    root = _repo_root(Path.cwd())
    if not (root / ".git").exists() and not ctx.db:
        warn(f"{root} is not in a git repository: the queue works here, but `herd run` needs "
             "one (git init, commit your files, then herd init there)")

    # Checked before anything is written: a refused file (the user's own) leaves nothing.
    changes = files.plan(root) if agent_files else []
    store = init_store(root, prefix, Path(ctx.db) if ctx.db else None)
    written = [change.to_json() for change in files.write(root, changes)]

    def text() -> None:
        click.echo(f"herd: store at {store.path} (prefix {store.get_config('issue_prefix')})")
        for change in written:
            click.echo(f"herd: {change['action']} {change['path']}")

    ctx.emit({"path": str(store.path), "prefix": store.get_config("issue_prefix"),
              **({"agent_files": written} if agent_files else {})}, text)


def _repo_root(start: Path) -> Path:
    here = start.resolve()
    for directory in (here, *here.parents):
        if (directory / ".git").exists():
            return directory
    return here


@cli.command()
@click.argument("title")
@click.option("-d", "--description", default="", help="Description.")
@click.option("-t", "--type", "issue_type", default="task", show_default=True,
              help="bug, feature, task, epic, chore (or your own).")
@click.option("-p", "--priority", type=int, default=2, show_default=True, help="0 (urgent) to 4.")
@click.option("--scope", multiple=True, metavar="GLOB", help="Paths the task may modify.")
@click.option("--out-of-scope", multiple=True, metavar="GLOB", help="Paths it must not touch.")
@click.option("--criteria", multiple=True, metavar="TEXT", help="A success criterion (repeat).")
@click.option("--deps", multiple=True, metavar="ID,..", help="Ids this depends on (blocks).")
@click.option("--parent", metavar="ID", help="Parent (epic); the id becomes PARENT.N.")
@click.option("-l", "--label", "labels", multiple=True, metavar="LABEL", help="A label (repeatable).")
@click.option("-a", "--assignee", help="Who the issue is assigned to.")
@common
def create(title: str, description: str, issue_type: str, priority: int, scope: tuple[str, ...],
           out_of_scope: tuple[str, ...], criteria: tuple[str, ...], deps: tuple[str, ...],
           parent: str | None, labels: tuple[str, ...], assignee: str | None, db: str | None,
           as_json: bool) -> None:
    """Create an issue; prints its id."""
    ctx = make_context(db, as_json)
    issue = ctx.queue().create(
        title, description=description, issue_type=issue_type, priority=priority,
        scope=scope, out_of_scope=out_of_scope, criteria=criteria, deps=_split(deps),
        parent=parent, labels=_split(labels), assignee=assignee)
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
def list_cmd(statuses: tuple[str, ...], include_closed: bool, label: str | None,
             issue_type: str | None, limit: int, db: str | None, as_json: bool) -> None:
    """List issues (closed hidden unless --all or asked for)."""
    ctx = make_context(db, as_json)
    issues = ctx.queue().list_issues(statuses=_split(statuses) or None, include_closed=include_closed,
                              label=label, issue_type=issue_type, limit=limit)
    ctx.emit(issues, lambda: _lines(issues, "no issues"))


@cli.command()
@click.option("-n", "--limit", type=int, default=100, show_default=True, help="0 = no limit.")
@click.option("-l", "--label", "labels", multiple=True, help="Only issues with this label "
              "(repeat: all of them).")
@click.option("-s", "--sort", type=click.Choice(["priority", "hybrid", "oldest"]),
              default="priority", show_default=True,
              help="priority: most urgent first, newest first within a priority; hybrid: the "
                   "last 48 hours by priority, then oldest first; oldest: oldest first.")
@click.option("-a", "--assignee", help="Only this assignee's issues.")
@click.option("-u", "--unassigned", is_flag=True, help="Only issues nobody is assigned to.")
@click.option("--claim", is_flag=True, help="Claim the first ready unassigned issue "
              "(compare-and-swap); prints nothing to claim as an empty list with --json.")
@click.option("--actor", help="Who claims (default: HERD_ACTOR, BD_ACTOR or your user name).")
@common
def ready(limit: int, labels: tuple[str, ...], sort: str, assignee: str | None,
          unassigned: bool, claim: bool, actor: str | None, db: str | None,
          as_json: bool) -> None:
    """Open work with nothing blocking it, in bd's order."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    if claim:
        if assignee:
            raise BadInput("--claim cannot be combined with --assignee (it claims only "
                           "unassigned issues)")
        issue = queue.claim_next_ready(actor, labels=_split(labels), sort=sort)
        # As bd: nothing to claim is not an error; --json gives a list either way.
        ctx.emit([issue] if issue else [],
                 lambda: click.echo(f"claimed {_line(issue)}" if issue
                                    else "nothing ready to claim"))
        return
    issues = queue.ready(limit=limit, labels=_split(labels), sort=sort, assignee=assignee,
                         unassigned=unassigned)
    if not ctx.as_json:
        _warn_dangling(queue)
    ctx.emit(issues, lambda: _lines(issues, "nothing is ready"))


def _warn_dangling(queue: Any) -> None:
    dangling = queue.dangling()
    if dangling:
        issue_id, target, dep_type = dangling[0]
        warn(f"{plural(len(dangling), 'dependency', 'dependencies')} point"
             f"{'s' if len(dangling) == 1 else ''} at ids not in the store (e.g. {issue_id} "
             f"-> {target} [{dep_type}]); they do not block")


@cli.command()
@common
def blocked(db: str | None, as_json: bool) -> None:
    """Blocked issues, each with what blocks it."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    issues = queue.blocked()
    if not ctx.as_json:
        _warn_dangling(queue)

    def text() -> None:
        if not issues:
            click.echo("nothing is blocked")
        for issue in issues:
            click.echo(f"{_line(issue)}\n    blocked by: {', '.join(issue['blocked_by'])}")

    ctx.emit(issues, text)


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
@click.option("--lease", default=_LEASE_DEFAULT, show_default=True, metavar="DURATION",
              help="How long the claim holds (e.g. 90s, 30m, 2h); after it expires the "
                   "issue is ready again and anyone may claim it.")
@common
def update(issue_ids: tuple[str, ...], status: str | None, assignee: str | None,
           priority: int | None, title: str | None, description: str | None, claim: bool,
           actor: str | None, lease: str, db: str | None, as_json: bool) -> None:
    """Change fields of one or more issues, or claim one."""
    ctx = make_context(db, as_json)
    queue = ctx.queue()
    if claim:
        if len(issue_ids) > 1:
            raise BadInput("--claim takes one issue at a time (each claim is its own "
                           "compare-and-swap)")
        if any(v is not None for v in (status, assignee)):
            raise BadInput("--claim sets status and assignee itself; drop --status/--assignee")
        from herd.units import duration

        issue = queue.claim(issue_ids[0], actor, duration(lease))
        if any(v is not None for v in (priority, title, description)):
            issue = queue.update(issue_ids[0], priority=priority, title=title,
                                 description=description)
        issues = [issue]
    else:
        queue.show(list(issue_ids))  # every id exists, or nothing changes (exit 3)
        issues = [queue.update(issue_id, status=status, assignee=assignee, priority=priority,
                               title=title, description=description) for issue_id in issue_ids]
    # One id answers with the issue, as before (bd's shape); several with the list.
    ctx.emit(issues[0] if len(issues) == 1 else issues,
             lambda: _each(lambda i: click.echo(f"updated {_line(i)}"), issues))


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("-r", "--reason", help="Why it is closed (kept as close_reason).")
@click.option("-f", "--force", is_flag=True,
              help="Close even when pinned, blocked or an epic with open children.")
@common
def close(ids: tuple[str, ...], reason: str | None, force: bool, db: str | None,
          as_json: bool) -> None:
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


@cli.group()
def dep() -> None:
    """Dependencies: A depends on B."""


@dep.command("add")
@click.argument("issue_id")
@click.argument("depends_on")
@click.option("-t", "--type", "dep_type", default="blocks", show_default=True,
              help="blocks, parent-child, related, discovered-from, waits-for, ...")
@common
def dep_add(issue_id: str, depends_on: str, dep_type: str, db: str | None, as_json: bool) -> None:
    """ISSUE_ID depends on DEPENDS_ON (refused if it makes a cycle)."""
    ctx = make_context(db, as_json)
    ctx.queue().dep_add(issue_id, depends_on, dep_type)
    ctx.emit({"issue_id": issue_id, "depends_on_id": depends_on, "type": dep_type},
             lambda: click.echo(f"{issue_id} depends on {depends_on} ({dep_type})"))


@dep.command("rm")
@click.argument("issue_id")
@click.argument("depends_on")
@click.option("-t", "--type", "dep_type", help="Only the dependency of this type.")
@common
def dep_rm(issue_id: str, depends_on: str, dep_type: str | None, db: str | None,
           as_json: bool) -> None:
    """Remove a dependency."""
    ctx = make_context(db, as_json)
    ctx.queue().dep_rm(issue_id, depends_on, dep_type)
    ctx.emit({"issue_id": issue_id, "depends_on_id": depends_on, "removed": True},
             lambda: click.echo(f"{issue_id} no longer depends on {depends_on}"))


@dep.command("cycles")
@common
def dep_cycles(db: str | None, as_json: bool) -> None:
    """Dependency cycles anywhere in the store (exit 4 when there are any)."""
    ctx = make_context(db, as_json)
    found = ctx.queue().cycles()
    ctx.emit(found, lambda: click.echo("\n".join(" -> ".join(c) for c in found)
                                       if found else "no cycles"))
    if found:
        sys.exit(EXIT_REFUSED)


@dep.command("tree")
@click.argument("issue_id")
@common
def dep_tree(issue_id: str, db: str | None, as_json: bool) -> None:
    """What an issue depends on, as a tree."""
    ctx = make_context(db, as_json)
    lines = ctx.queue().tree(issue_id)
    ctx.emit({"id": issue_id, "tree": lines}, lambda: click.echo("\n".join(lines)))


@cli.command()
@click.argument("issue_id")
@click.argument("text")
@click.option("--author", help="Who wrote it (default: HERD_ACTOR, BD_ACTOR or your user name).")
@common
def comment(issue_id: str, text: str, author: str | None, db: str | None, as_json: bool) -> None:
    """Add a comment."""
    ctx = make_context(db, as_json)
    added = ctx.queue().comment(issue_id, text, author)
    ctx.emit(added, lambda: click.echo(f"comment {added['id']} added to {issue_id}"))


@cli.command()
@click.argument("issue_id")
@common
def comments(issue_id: str, db: str | None, as_json: bool) -> None:
    """An issue's comments."""
    ctx = make_context(db, as_json)
    found = ctx.queue().comments(issue_id)

    def text() -> None:
        if not found:
            click.echo(f"no comments on {issue_id}")
        for c in found:
            click.echo(f"[{c.get('author')} at {c.get('created_at')}]\n{_indent(c.get('text', ''))}")

    ctx.emit(found, text)


@cli.group()
def label() -> None:
    """Labels."""


@label.command("add")
@click.argument("issue_id")
@click.argument("name")
@common
def label_add(issue_id: str, name: str, db: str | None, as_json: bool) -> None:
    """Add a label."""
    ctx = make_context(db, as_json)
    changed = ctx.queue().label(issue_id, name, add=True)
    ctx.emit({"id": issue_id, "label": name, "changed": changed},
             lambda: click.echo(f"{issue_id}: label {name} " +
                                ("added" if changed else "already there")))


@label.command("remove")
@click.argument("issue_id")
@click.argument("name")
@common
def label_remove(issue_id: str, name: str, db: str | None, as_json: bool) -> None:
    """Remove a label."""
    ctx = make_context(db, as_json)
    changed = ctx.queue().label(issue_id, name, add=False)
    ctx.emit({"id": issue_id, "label": name, "changed": changed},
             lambda: click.echo(f"{issue_id}: label {name} " +
                                ("removed" if changed else "was not there")))


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
        warn(f"{plural(len(result.dangling), 'dependency', 'dependencies')} point"
             f"{'s' if len(result.dangling) == 1 else ''} at ids not in the store (e.g. "
             f"{issue_id} -> {target} [{dep_type}]); they do not block")
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
    parts = [f"{result.created} new", f"{result.updated} updated",
             f"{result.unchanged} unchanged"]
    if result.stale:
        parts.append(f"{result.stale} older than the store's copy, kept the store's")
    if result.tombstones:
        parts.append(f"{result.tombstones} tombstones not imported, {result.deleted} of them "
                     "deleted a stored issue")
    if result.skipped_lines:
        parts.append(f"{result.skipped_lines} lines that are not issues skipped")
    noun = "issue" if result.read == 1 else "issues"
    return f"read {result.read} {noun} from {path} ({', '.join(parts)})"


@cli.command("export")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="File (default: stdout).")
@click.option("--all", "include_ephemeral", is_flag=True,
              help="Include ephemeral issues (wisps), left out by default as bd does.")
@common
def export_cmd(output: Path | None, include_ephemeral: bool, db: str | None,
               as_json: bool) -> None:
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
        raise BadInput(f"{output}: cannot write: {exc.strerror}; check the directory exists "
                       "and is writable") from None
    if ctx.as_json:
        ctx.emit({"path": str(output), "exported": count})
    else:
        click.echo(f"exported {plural(count, 'issue')} to {output}", err=True)
