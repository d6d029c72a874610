"""`herd map` without click, in GNU parallel's grammar (`herd map [-j N] [-k] CMD ARGS :::
ITEMS`) and in herd's own (`herd map [--from FILE|-] [-j N] -- CMD ARGS`), with their common
flags: what scripts run in loops, where click's import (~25 ms of CPU) is a fifth of a short
map's cost.

Only the flags below, each as click reads it (`-j 4`, `-j4`, `--jobs=4`); anything else
(another flag, items before `--`, `--help`, a flag given twice, a value click would refuse)
returns False and the click command in `map_cmds` handles it, usage errors included. Both
hand the same `MapRequest` to `map_main.run_map`.
"""

from __future__ import annotations

import contextlib
import sys

# flag -> (MapRequest field, takes a value)
_FLAGS: dict[str, tuple[str, bool]] = {
    "-j": ("jobs", True),
    "--jobs": ("jobs", True),
    "-n": ("batch_size", True),
    "--batch-size": ("batch_size", True),
    "--max-args": ("batch_size", True),
    "--retries": ("retries", True),
    "--timeout": ("timeout", True),
    "--halt": ("halt", True),
    "-a": ("arg_files", True),
    "--arg-file": ("arg_files", True),
    "--from": ("from_file", True),
    "--db": ("db", True),
    "-k": ("keep_order", False),
    "--keep-order": ("keep_order", False),
    "-0": ("null", False),
    "--null": ("null", False),
    "--link": ("link", False),
    "--xapply": ("link", False),
    "--tag": ("tag", False),
    "--json": ("as_json", False),
}
_SHORT_WITH_VALUE = ("-j", "-n", "-a")


def parse(args: list[str]) -> dict[str, object] | None:
    """MapRequest's fields from `args` (`map` first), or None to leave them to click."""
    if not args or args[0] != "map":
        return None
    fields: dict[str, object] = {}
    arg_files: list[str] = []
    rest = args[1:]
    command: list[str] | None = None
    if "--" in rest:
        # herd's own form: the options, then everything after the first `--` verbatim.
        cut = rest.index("--")
        rest, command = rest[:cut], rest[cut + 1 :]
        if not command:
            return None
    while rest and rest[0].startswith("-") and rest[0] != "-":
        word = rest.pop(0)
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not eq and name[:2] in _SHORT_WITH_VALUE and len(name) > 2:
            name, eq, value = name[:2], "=", name[2:]  # -j4
        spec = _FLAGS.get(name)
        if spec is None:
            return None
        field, takes_value = spec
        if takes_value and not eq:
            if not rest:
                return None
            value = rest.pop(0)
        elif not takes_value and eq:
            return None
        if field == "arg_files":
            arg_files.append(value)
            continue
        if field in fields:
            return None  # given twice: click's rule (the last wins) is not worth copying
        fields[field] = value if takes_value else True
    if "retries" in fields:
        try:
            fields["retries"] = int(str(fields["retries"]))
        except ValueError:
            return None  # click says what is wrong with it
    fields["arg_files"] = tuple(arg_files)
    if command is None:
        fields["words"] = rest
        fields["gnu_grammar"] = True
    elif rest:
        return None  # items before `--`: click reads them
    else:
        fields["words"] = command
        fields["gnu_grammar"] = False
    return fields


def run(args: list[str], *, whole_process: bool = False) -> bool:
    """Run `herd map ARGS` here when they parse; False to leave them to click.

    `whole_process`: this process is `herd` itself (not a caller that runs the CLI in its
    own process, as the tests do): once the map has ended (its journal committed, its store
    and files closed) the process exits at once with the map's code, without the
    interpreter's clean-up of every module (~5 ms of a short map)."""
    fields = parse(args)
    if fields is None:
        return False
    from herd.cli.fast import answering_errors
    from herd.cli.map_main import MapRequest, run_map

    try:
        with answering_errors(as_json=bool(fields.get("as_json"))):
            run_map(MapRequest(**fields))  # type: ignore[arg-type]
    except SystemExit as done:
        if not whole_process or not isinstance(done.code, int | None):
            raise
        _exit_now(done.code or 0)
    if whole_process:
        _exit_now(0)
    return True


def _exit_now(code: int) -> None:
    import os

    for stream in (sys.stdout, sys.stderr):
        # A closed or vanished reader: nothing left to say.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
