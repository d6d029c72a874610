"""The click application: the group, shared options, error handling."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from herd import __version__
from herd.cli.fast import compact_json, write_json_lines
from herd.errors import EXIT_INTERRUPTED, HerdError

__all__ = ["cli", "common", "compact_json", "make_context", "warn", "write_json_lines"]

F = TypeVar("F", bound=Callable[..., Any])
#: Commands whose option defaults come from herd.toml / [tool.herd] (`herd land` takes the
#: same landing flags as `herd run`).
TEAM_DEFAULTS_FOR = ("run", "land")


class Context:
    """What every command needs: where the store is and how to print."""

    def __init__(self, db: str | None, as_json: bool) -> None:
        self.db = db
        self.as_json = as_json

    def store(self, *, runs: bool = False) -> Any:
        """The store found upwards (or named); commands about runs also fall back to the
        per-user store `herd map` uses outside a repository."""
        from herd.errors import NotFound
        from herd.store import Store, find_db, user_store_path

        try:
            return Store(find_db(self.db))
        except NotFound:
            if runs and user_store_path().exists():
                return Store(user_store_path())
            raise

    def queue(self) -> Any:
        from herd.queue.core import Queue

        return Queue(self.store())

    def emit(self, data: Any, text: Callable[[], object] | None = None) -> None:
        """JSON on stdout when asked, else the human rendering."""
        if self.as_json:
            if isinstance(data, list):
                write_json_lines(map(compact_json, data))
            else:
                click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        elif text is not None:
            text()


def common(func: F) -> F:
    """`--json` and `--db` on every command, as DESIGN.md promises."""
    func = click.option("--json", "as_json", is_flag=True, help="Machine output on stdout.")(func)
    func = click.option(
        "--db",
        "db",
        envvar="HERD_DB",
        metavar="PATH",
        help="Store file (default: .herd/herd.db found upwards; env HERD_DB).",
    )(func)
    return func


def make_context(db: str | None, as_json: bool) -> Context:
    parent = click.get_current_context().find_root().obj
    if isinstance(parent, Context):
        db = db or parent.db
        as_json = as_json or parent.as_json
    return Context(db, as_json)


def warn(message: str) -> None:
    click.echo(f"herd: warning: {message}", err=True)


#: Where each command lives: a command's module is imported when the command runs (or
#: when help lists them all), so `herd update --claim` does not pay for `herd run`'s imports.
COMMAND_MODULES = {
    **dict.fromkeys(
        ("init", "create", "show", "list", "ready", "blocked", "update", "close", "reopen", "stats"),
        "queue_cmds",
    ),
    **dict.fromkeys(("dep", "comment", "comments", "label"), "annotate_cmds"),
    **dict.fromkeys(("import", "export"), "jsonl_cmds"),
    "plan": "plan_cmds",
    **dict.fromkeys(("run", "resume", "land", "runs", "status"), "run_cmds"),
    **dict.fromkeys(("map", "pipeline"), "map_cmds"),
    "report": "report_cmds",
    "demo": "demo_cmds",
    "mcp": "mcp_cmds",
    **dict.fromkeys(("config", "completion"), "config_cmds"),
}


class _LazyGroup(click.Group):
    """click's lazy-loading group: commands register themselves when their module loads."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = COMMAND_MODULES.get(cmd_name)
            if module is not None:
                _import_commands(module)
            else:
                _register_batch_commands()  # a name not in the map: look everywhere
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_batch_commands()
        return sorted(self.commands)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="herd", message="%(prog)s %(version)s")
@click.option("--db", envvar="HERD_DB", metavar="PATH", help="Store file (env HERD_DB).")
@click.option("--json", "as_json", is_flag=True, help="Machine output on stdout.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, as_json: bool) -> None:
    """herd: run a batch of independent tasks concurrently and land them as one change."""
    ctx.obj = Context(db, as_json)
    if ctx.invoked_subcommand in TEAM_DEFAULTS_FOR:
        from herd import settings

        # The team's herd.toml supplies these commands' defaults; their flags still win.
        ctx.default_map = settings.default_map(TEAM_DEFAULTS_FOR)


def run(args: list[str]) -> None:
    # Decided from argv, not from the Context: a usage error happens before any command
    # made one. After `--` (herd map's command) a `--json` belongs to the job, not to us.
    as_json = "--json" in (args[: args.index("--")] if "--" in args else args)

    def fail(message: str, exit_code: int, label: str = "error: ") -> None:
        click.echo(f"herd: {label}{message}", err=True)
        if as_json:
            # Scripts read stdout: the error is there too, as the one object they parse.
            with contextlib.suppress(BrokenPipeError):
                click.echo(json.dumps({"error": message, "exit_code": exit_code}, ensure_ascii=False))
        sys.exit(exit_code)

    try:
        cli.main(args=args, prog_name="herd", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted", EXIT_INTERRUPTED, label="")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line, like every other error: what is wrong and where to look.
        where = exc.ctx.command_path if exc.ctx is not None else "herd"
        fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except HerdError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED, label="")
    except BrokenPipeError:
        # `herd list | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        sys.exit(0)


def _register_batch_commands() -> None:
    """Import every command module (help, completion, and the tests that walk them all)."""
    for module in dict.fromkeys(COMMAND_MODULES.values()):
        _import_commands(module)


def _import_commands(module: str) -> None:
    import importlib

    try:
        importlib.import_module(f"herd.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"herd.cli.{module}":
            raise


def path_arg(value: str) -> Path:
    return Path(value)
