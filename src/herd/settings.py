"""Team defaults: a checked-in `herd.toml` (or `[tool.herd]` in `pyproject.toml`).

`.herd/` is git-ignored and personal; what a team shares (its test and format
commands, how many workers, whether to push, agent presets) lives beside the
code. Precedence, highest first: the command line's flags, this file, herd's
defaults. Agent presets: the personal `.herd/config.toml`, this file, built-ins.

    test_cmd = "pytest -q"
    format_cmd = "ruff format ."
    jobs = 4
    push = true
    remote = "origin"
    timeout = "30m"

    [agents.mine]
    argv = ["my-agent", "--task-file", "{context}"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.errors import BadInput

if TYPE_CHECKING:
    from herd.run.agents import Agent

FILE_NAME = "herd.toml"
#: Each shared setting: its type and herd's own default.
DEFAULTS: dict[str, tuple[type, Any]] = {
    "test_cmd": (str, None),
    "format_cmd": (str, None),
    "jobs": (int, None),
    "push": (bool, False),
    "remote": (str, "origin"),
    "timeout": (str, None),
}
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "default", or the file (and table) it came from


@dataclass(frozen=True)
class Settings:
    file: Path | None
    values: dict[str, Setting]
    agents: dict[str, Agent] = field(default_factory=dict)

    def from_file(self) -> dict[str, Any]:
        """Only what the file sets, as click option values (a default_map)."""
        return {k: s.value for k, s in self.values.items() if s.source != DEFAULT_SOURCE}

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file) if self.file else None,
            "settings": {k: {"value": s.value, "source": s.source} for k, s in self.values.items()},
            "agents": {name: list(agent.argv) for name, agent in sorted(self.agents.items())},
        }


def find(start: Path) -> tuple[Path, str, dict[str, Any]] | None:
    """The nearest `herd.toml`, or `pyproject.toml` with [tool.herd], from `start` up to the
    repository root: (file, where to say it came from, its table)."""
    for folder in (start.resolve(), *start.resolve().parents):
        own = folder / FILE_NAME
        if own.is_file():
            return own, str(own), _parse(own)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            table = _parse(pyproject).get("tool", {}).get("herd")
            if isinstance(table, dict):
                return pyproject, f"{pyproject} [tool.herd]", table
        if (folder / ".git").exists():
            break  # a parent project's settings are not this repository's
    return None


def load(start: Path | None = None) -> Settings:
    """The effective settings for a command started in `start` (default: the cwd)."""
    found = find(start or Path.cwd())
    values = {key: Setting(default, DEFAULT_SOURCE) for key, (_, default) in DEFAULTS.items()}
    if found is None:
        return Settings(None, values)
    from herd.run.agents import presets_from

    path, where, table = found
    agents = presets_from(table.get("agents") or {}, where)
    for key, raw in table.items():
        if key == "agents":
            continue
        if key not in DEFAULTS:
            raise BadInput(f"{where}: unknown setting {key!r}; known: {', '.join(DEFAULTS)}, [agents.NAME]")
        values[key] = Setting(_checked(key, raw, where), where)
    return Settings(path, values, agents)


def _checked(key: str, raw: Any, where: str) -> Any:
    kind = DEFAULTS[key][0]
    if key == "timeout" and isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = f"{raw}s"  # a bare number is seconds, as on the command line
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise BadInput(f"{where}: {key} must be {_kind_name(kind)}, not {raw!r}")
    if key == "timeout":
        from herd import units

        try:
            units.duration(str(raw))
        except BadInput as exc:
            raise BadInput(f"{where}: timeout: {exc}") from None
    if key == "jobs" and isinstance(raw, int) and raw < 1:
        raise BadInput(f"{where}: jobs must be 1 or more, not {raw}")
    return raw


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", bool: "true or false"}[kind]


def _parse(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: {exc}; fix the TOML") from None


def default_map(commands: Sequence[str], start: Path | None = None) -> dict[str, dict[str, Any]]:
    """click's default_map: the file's values become the defaults of these commands' options,
    so a flag on the command line still wins."""
    chosen = load(start).from_file()
    return {command: dict(chosen) for command in commands} if chosen else {}
