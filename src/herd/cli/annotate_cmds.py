"""Dependencies, comments and labels on issues (bd's `dep`, `comment(s)`, `label`)."""

from __future__ import annotations

import sys

import click

from herd.cli.app import cli, common, make_context
from herd.cli.queue_cmds import indent_text
from herd.errors import EXIT_REFUSED


@cli.group()
def dep() -> None:
    """Dependencies: A depends on B."""


@dep.command("add")
@click.argument("issue_id")
@click.argument("depends_on")
@click.option(
    "-t",
    "--type",
    "dep_type",
    default="blocks",
    show_default=True,
    help="blocks, parent-child, related, discovered-from, waits-for, ...",
)
@common
def dep_add(issue_id: str, depends_on: str, dep_type: str, db: str | None, as_json: bool) -> None:
    """ISSUE_ID depends on DEPENDS_ON (refused if it makes a cycle)."""
    ctx = make_context(db, as_json)
    ctx.queue().dep_add(issue_id, depends_on, dep_type)
    ctx.emit(
        {"issue_id": issue_id, "depends_on_id": depends_on, "type": dep_type},
        lambda: click.echo(f"{issue_id} depends on {depends_on} ({dep_type})"),
    )


@dep.command("rm")
@click.argument("issue_id")
@click.argument("depends_on")
@click.option("-t", "--type", "dep_type", help="Only the dependency of this type.")
@common
def dep_rm(issue_id: str, depends_on: str, dep_type: str | None, db: str | None, as_json: bool) -> None:
    """Remove a dependency."""
    ctx = make_context(db, as_json)
    ctx.queue().dep_rm(issue_id, depends_on, dep_type)
    ctx.emit(
        {"issue_id": issue_id, "depends_on_id": depends_on, "removed": True},
        lambda: click.echo(f"{issue_id} no longer depends on {depends_on}"),
    )


@dep.command("cycles")
@common
def dep_cycles(db: str | None, as_json: bool) -> None:
    """Dependency cycles anywhere in the store (exit 4 when there are any)."""
    ctx = make_context(db, as_json)
    found = ctx.queue().cycles()
    ctx.emit(found, lambda: click.echo("\n".join(" -> ".join(c) for c in found) if found else "no cycles"))
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
            click.echo(f"[{c.get('author')} at {c.get('created_at')}]\n{indent_text(c.get('text', ''))}")

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
    ctx.emit(
        {"id": issue_id, "label": name, "changed": changed},
        lambda: click.echo(f"{issue_id}: label {name} " + ("added" if changed else "already there")),
    )


@label.command("remove")
@click.argument("issue_id")
@click.argument("name")
@common
def label_remove(issue_id: str, name: str, db: str | None, as_json: bool) -> None:
    """Remove a label."""
    ctx = make_context(db, as_json)
    changed = ctx.queue().label(issue_id, name, add=False)
    ctx.emit(
        {"id": issue_id, "label": name, "changed": changed},
        lambda: click.echo(f"{issue_id}: label {name} " + ("removed" if changed else "was not there")),
    )
