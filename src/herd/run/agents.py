"""Agent presets and command templates: how a worker command is built, never through a shell.

A preset is an argv template whose elements may contain the placeholders
`{id}` (also written `{}`, as `herd map` and `--verify-cmd` write it), `{context}`,
`{worktree}`, `{prompt}`; each is replaced inside its own argv element, so task text
can never be parsed by a shell. Any other `{name}` is refused before a run starts.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from herd.errors import BadInput

PLACEHOLDERS = ("{id}", "{}", "{context}", "{worktree}", "{prompt}")
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
# What looks like a placeholder: `{name}` (`{1:2}` or `{"a": 1}` in an inline script do not).
_LOOKS_LIKE_ONE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")

PROMPT = (
    "You are a herd worker with exactly one task. Read the task context in {context} and do "
    "the task in this directory ({worktree}). Change only files in the task's scope and never "
    "files out of scope. Meet every success criterion. Commit your work locally with git "
    "(one or more commits); do not push, do not touch other branches, and do not edit the "
    "issue tracker. Exit when done."
)


@dataclass(frozen=True)
class Agent:
    name: str
    argv: tuple[str, ...]
    cost_field: str | None = None  # key of a JSON object in stdout holding the cost in USD


BUILTIN: Mapping[str, Agent] = {
    "claude": Agent(
        "claude",
        ("claude", "-p", "{prompt}", "--output-format", "json", "--permission-mode", "acceptEdits"),
        cost_field="total_cost_usd",
    ),
    # codex 0.171 dropped `--full-auto`; `exec` never asks for approval, the sandbox lets it
    # write in its worktree (herd commits what it leaves uncommitted).
    "codex": Agent("codex", ("codex", "exec", "--sandbox", "workspace-write", "{prompt}")),
    # aider 0.86 leaves files in the repository root that would be outside any task's scope:
    # with --yes-always it adds `.aider*` to .gitignore (--no-gitignore), writes its chat and
    # input history there (moved next to the context file, outside the worktree) and keeps a
    # repo-map cache in `.aider.tags.cache.v4/` (--map-tokens 0: no repo map, no cache). A
    # repository that ignores `.aider*` can define a preset without the last two.
    "aider": Agent(
        "aider",
        (
            "aider",
            "--yes-always",
            "--no-auto-commits",
            "--no-gitignore",
            "--no-analytics",
            "--no-check-update",
            "--map-tokens",
            "0",
            "--chat-history-file",
            "{context}.chat-history.md",
            "--input-history-file",
            "{context}.input-history",
            "--message-file",
            "{context}",
        ),
    ),
}


def load(name: str, config_path: Path | None, team: Mapping[str, Agent] | None = None) -> Agent:
    """A preset by name: the team's (`herd.toml`) override or add to the built-ins, and the
    personal `.herd/config.toml` [agents.NAME] override both."""
    presets = {**BUILTIN, **(team or {}), **read_presets(config_path)}
    if name not in presets:
        raise BadInput(
            f"unknown agent {name!r}; built in: {', '.join(sorted(BUILTIN))}, or add "
            f"[agents.{name}] to herd.toml or .herd/config.toml"
        )
    return presets[name]


def read_presets(config_path: Path | None) -> dict[str, Agent]:
    """The [agents.NAME] tables of a TOML file (none when it does not exist)."""
    if config_path is None or not config_path.exists():
        return {}
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{config_path}: {exc}; fix the TOML") from None
    return presets_from(config.get("agents") or {}, str(config_path))


def presets_from(tables: Mapping[str, object], where: str) -> dict[str, Agent]:
    """Agents from [agents.NAME] tables read from `where` (named in errors)."""
    presets = {}
    for key, table in tables.items():
        argv = table.get("argv") if isinstance(table, dict) else None
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise BadInput(f'{where}: [agents.{key}] needs argv = ["program", ...]')
        cost = table.get("cost_field") if isinstance(table, dict) else None
        presets[key] = Agent(key, tuple(argv), cost if isinstance(cost, str) else None)
    return presets


def from_command(command: str) -> Agent:
    """`--cmd`: split once with shlex, like a shell would split words, and never run by one."""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise BadInput(f"--cmd {command!r}: {exc}") from None
    if not argv:
        raise BadInput("--cmd is empty")
    return Agent("cmd", argv)


def build_argv(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Substitute placeholders in one pass; each value stays inside the argv element it
    replaced (`{id}` or `--task={id}`), so no value can add or split arguments."""
    prompt = PROMPT.format(context=values["context"], worktree=values["worktree"])
    table = {
        "{id}": values["id"],
        "{}": values["id"],
        "{context}": values["context"],
        "{worktree}": values["worktree"],
        "{prompt}": prompt,
    }
    return [_PLACEHOLDER.sub(lambda m: table[m.group(0)], arg) for arg in template]


def unknown_placeholders(argv: Sequence[str]) -> list[str]:
    """`{name}`s in a template that herd would pass through unfilled (a typo, most likely)."""
    found = [m.group(0) for arg in argv for m in _LOOKS_LIKE_ONE.finditer(arg)]
    return list(dict.fromkeys(p for p in found if p not in PLACEHOLDERS))


def read_cost(agent: Agent, output: str) -> float | None:
    """The run's cost from the agent's JSON output, when its preset says where it is."""
    if not agent.cost_field:
        return None
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        value = data.get(agent.cost_field) if isinstance(data, dict) else None
        if isinstance(value, int | float):
            return float(value)
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return None
    value = data.get(agent.cost_field) if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else None
