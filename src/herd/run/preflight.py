"""Checks made before a run claims anything: what would fail later for a reason known now.

A run that would fail at landing (a test command that cannot parse, a remote that
does not exist) or whose every attempt would fail (a program that is not there)
fails here instead: BadInput (exit 2), no task claimed, no worktree, no run row.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from herd.errors import BadInput
from herd.git.repo import Git, GitError
from herd.run.agents import BUILTIN, Agent, unknown_placeholders

if TYPE_CHECKING:
    from herd.run.batch import LandingOptions

INSTALL_HINTS = {
    "claude": "install Claude Code (npm install -g @anthropic-ai/claude-code)",
    "codex": "install Codex (npm install -g @openai/codex)",
    "aider": "install aider (python -m pip install aider-install && aider-install)",
}


def repository(git: Git) -> str:
    """The commit every worker starts from; a clear error outside a repository or in one
    with no commit yet (instead of git's own message halfway through a run)."""
    try:
        git.toplevel()
    except GitError:
        raise BadInput(
            f"{git.repo} is not in a git repository: herd run gives each worker a "
            "worktree of one. Run `git init`, commit your files, then run again "
            "(the queue commands work without git)"
        ) from None
    head = git.rev_parse_or_none("HEAD")
    if head is None:
        raise BadInput(
            f"the git repository at {git.repo} has no commits yet: workers start "
            "from HEAD. Commit your files first (git add -A && git commit -m "
            "'first commit'), then run again"
        )
    return head


def agent(git: Git, chosen: Agent, base: str, started_in: Path | None = None) -> Agent:
    """The agent with its program checked (and a relative path the worktree would not have
    made absolute); BadInput naming where herd looked and what to do."""
    flag = "--cmd" if chosen.name == "cmd" else f"--agent {chosen.name}"
    unknown = unknown_placeholders(chosen.argv)
    if unknown:
        raise BadInput(
            f"{flag}: unknown placeholder {', '.join(unknown)}; herd fills in {{id}} "
            "(or {}), {context}, {worktree} and {prompt}"
        )
    program = chosen.argv[0]
    if "{" in program:
        return chosen  # e.g. {worktree}/fix.sh: known only per worktree
    resolved = _program(git, program, base, started_in or Path.cwd(), flag, chosen.name)
    return chosen if resolved == program else replace(chosen, argv=(resolved, *chosen.argv[1:]))


def _program(git: Git, program: str, base: str, started_in: Path, flag: str, name: str) -> str:
    if os.sep not in program:
        if shutil.which(program):
            return program
        hint = (
            f"{INSTALL_HINTS[name]}, or run any command with --cmd"
            if name in BUILTIN and name in INSTALL_HINTS
            else "install it, or give its path"
        )
        raise BadInput(f"{flag}: command not found: {program!r} is not on PATH; {hint}")
    path = Path(program)
    if path.is_absolute():
        if not os.access(path, os.X_OK) or not path.is_file():
            raise BadInput(f"{flag}: {program} does not exist or is not executable")
        return program
    if _tracked(git, base, program):  # workers run in a worktree of the base commit
        return program
    relative = os.path.normpath(program)
    here = (started_in / program).resolve()
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    raise BadInput(
        f"{flag}: command not found: {program} (workers run in a worktree of commit "
        f"{base[:12]}, which has no {relative}, and it is not in {started_in} either). "
        "Untracked files are not in worktrees: commit it, or give its absolute path"
    )


def _tracked(git: Git, base: str, program: str) -> bool:
    relative = os.path.normpath(program)
    return not relative.startswith("..") and git.rev_parse_or_none(f"{base}:{relative}") is not None


def landing(git: Git, options: LandingOptions, base: str, branch: str | None) -> None:
    """What landing needs, checked now: its commands parse and exist, the branch name is
    valid, the remote exists and answers when pushing."""
    for what, command in (("--test-cmd", options.test_cmd), ("--format-cmd", options.format_cmd)):
        if command:
            _landing_command(git, what, command, base)
    if not options.integrate:
        return
    if options.branch and not git.branch_name_ok(options.branch):
        raise BadInput(
            f"--branch {options.branch!r} is not a valid branch name (git check-ref-format --branch)"
        )
    if branch is None:
        raise BadInput("HEAD is detached: say which branch to land on with --branch B (or --no-integrate)")
    if options.push:
        problem = git.remote_problem(options.remote)
        if problem:
            raise BadInput(f"--push: {problem}")


def _landing_command(git: Git, what: str, command: str, base: str) -> None:
    from herd.run.landing_cmd import split_command

    argv = split_command(what, command)
    program = argv[0]
    if os.sep not in program:
        if not shutil.which(program):
            raise BadInput(f"{what}: command not found: {program!r} is not on PATH")
    elif Path(program).is_absolute():
        if not Path(program).is_file():
            raise BadInput(f"{what}: command not found: {program}")
    elif not _tracked(git, base, program):
        # Landing runs it in a worktree of the stack, where only committed files are.
        raise BadInput(
            f"{what}: command not found: {program} is not committed at "
            f"{base[:12]}; untracked files are not in worktrees: commit it or "
            "give its absolute path"
        )
