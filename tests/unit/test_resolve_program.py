"""A map looks its program up on PATH once, as execvp would, before the first job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from herd.items.map_plan import resolve_program


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_first_executable_file_on_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for directory in (first, second, third):
        directory.mkdir()
    (first / "tool").mkdir()  # a directory of that name is not the program
    (second / "tool").write_text("not executable\n")
    found = _executable(third / "tool")
    _executable(tmp_path / "tool")
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (first, second, third))))
    assert resolve_program(["tool", "{}"]) == (str(found), "{}")


def test_paths_and_unknown_programs_are_left_to_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_program(["./tool", "x"]) == ("./tool", "x")
    assert resolve_program(["no-such-tool-here"]) == ("no-such-tool-here",)


def test_an_empty_path_entry_is_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _executable(tmp_path / "tool")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.pathsep + "/nonexistent")
    assert resolve_program(["tool"]) == (os.path.join(os.curdir, "tool"),)
