"""The built-in agent presets against the real programs: every flag a preset passes (and
every literal value it gives a flag) must be in that program's own `--help`.

The programs are not a dependency of herd; each check skips with a reason when its program
is not on PATH (or on HERD_AGENT_PATH, a PATH-style list searched first, for copies
installed outside the project, e.g. `npm install --prefix DIR @anthropic-ai/claude-code`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from herd.run.agents import BUILTIN, PLACEHOLDERS


def _find(program: str) -> str | None:
    path = os.pathsep.join(p for p in (os.environ.get("HERD_AGENT_PATH"), os.environ.get("PATH")) if p)
    return shutil.which(program, path=path)


def _command_and_flags(argv: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(program and subcommands, [(flag, literal value or None)]) of a preset's argv."""
    command = []
    for arg in argv:
        if arg.startswith("-") or arg in PLACEHOLDERS:
            break
        command.append(arg)
    flags: list[tuple[str, str | None]] = []
    rest = argv[len(command) :]
    for n, arg in enumerate(rest):
        if not arg.startswith("-"):
            continue
        flag, _, inline = arg.partition("=")
        after = rest[n + 1] if n + 1 < len(rest) else None
        value = inline or (after if after and not after.startswith("-") else None)
        # Only a literal word can be checked against the help's list of choices.
        literal = value is not None and (value.isidentifier() or "-" in value)
        templated = value is not None and any(p in value for p in PLACEHOLDERS)
        flags.append((flag, value if literal and not templated else None))
    return command, flags


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_preset_flags_are_in_the_programs_help(name: str, tmp_path: Path) -> None:
    preset = BUILTIN[name]
    command, flags = _command_and_flags(preset.argv)
    program = _find(command[0])
    if program is None:
        pytest.skip(f"{command[0]} is not installed (put it on PATH or HERD_AGENT_PATH)")
    env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [program, *command[1:], "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    help_text = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} --help exited {done.returncode}:\n{help_text}"
    version = subprocess.run(
        [program, "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    print(f"{name}: {version.stdout.strip() or version.stderr.strip()}")
    for flag, value in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), (
            f"preset {name}: {flag} is not in `{' '.join(command)} --help`"
        )
        if value is not None:
            assert value in help_text, (
                f"preset {name}: {flag} {value}: {value!r} is not in `{' '.join(command)} --help`"
            )
