"""Every command and option says what it does, and shell completion works."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from herd.cli import app, queue_cmds  # noqa: F401  (queue_cmds registers its commands)

SRC = Path(__file__).resolve().parents[2] / "src"


def commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    app._register_batch_commands()
    missing = []
    for path, command in commands(app.cli, "herd"):
        if not (command.help or "").strip():
            missing.append(path)
        missing += [
            f"{path} {'/'.join(p.opts)}"
            for p in command.params
            if isinstance(p, click.Option) and not (p.help or "").strip()
        ]
    assert missing == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(shell: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "herd", "completion", shell],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=True,
    )
    assert "_HERD_COMPLETE" in proc.stdout


def test_completion_completes_commands_and_options(tmp_path: Path) -> None:
    # What the bash script does on <TAB>: run herd with the words typed so far.
    herd = tmp_path / "herd"
    herd.write_text(f'#!/bin/sh\nexec {sys.executable} -m herd "$@"\n')
    herd.chmod(0o755)
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "_HERD_COMPLETE": "bash_complete",
        "COMP_WORDS": "herd run --exe",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run([str(herd)], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.splitlines() == ["plain,--executor"]
    env.update(COMP_WORDS="herd comp", COMP_CWORD="1")
    proc = subprocess.run([str(herd)], capture_output=True, text=True, env=env, check=True)
    assert "plain,completion" in proc.stdout.splitlines()
