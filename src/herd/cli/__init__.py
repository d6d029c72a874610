"""Command line: argument parsing and rendering only. Library code raises HerdError;
this is the one place that turns errors into messages and exit codes."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        # Answered before importing anything: `herd --version` should cost a bare interpreter.
        from herd import __version__

        print(f"herd {__version__}")
        return
    if args[:1] == ["map"]:
        from herd.cli import map_fast

        if map_fast.run(args, whole_process=argv is None):
            return
    from herd.cli import fast

    if fast.run(args):
        return
    from herd.cli.app import run

    run(args)
