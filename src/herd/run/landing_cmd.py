"""Landing's own children, the format and test commands, run supervised like workers.

Each runs under a one-slot local executor: its own process group, the run's
`--test-timeout`, SIGTERM then SIGKILL of the whole group when it overruns or
when herd is asked to stop, its output in a log whose tail is kept.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from herd.engine.executor.base import JobSpec
from herd.engine.executor.local import LocalExecutor
from herd.engine.executor.output import read_file_tail
from herd.engine.shutdown import Shutdown
from herd.errors import BadInput, LandingFailed

_LOG_TAIL_BYTES = 16384
# How often a running command looks for a stop request (seconds).
_SIGNAL_POLL = 0.2


class Stopped(Exception):
    """A signal arrived while the command ran; it has been stopped, group and all."""


@dataclass(frozen=True)
class CommandRun:
    exit_code: int
    output: str  # the end of the log
    log: Path


def split_command(flag: str, command: str) -> list[str]:
    """A landing command's argv, split like shell words (never run by a shell); BadInput
    names `flag` when it does not parse or is empty. Pre-flight and landing both use it."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise BadInput(f"{flag} {command!r} does not parse: {exc}") from None
    if not argv:
        raise BadInput(f"{flag} is empty; give a program to run")
    return argv


def run_landing_command(
    command: str,
    kind: str,
    cwd: Path,
    log: Path,
    *,
    timeout: float | None,
    grace: float,
    shutdown: Shutdown,
    env: dict[str, str],
) -> CommandRun:
    """Run `command` (parsed like a shell word list, never run by one) in `cwd`.

    Raises LandingFailed when it overruns `timeout`, Stopped when `shutdown` is requested
    while it runs (a second signal kills it without grace)."""
    argv = split_command(f"--{kind}-cmd", command)
    log.parent.mkdir(parents=True, exist_ok=True)
    # Its git (if any) never wanders above the worktree it runs in.
    env = {"GIT_CEILING_DIRECTORIES": str(cwd.resolve().parent), **env}
    job = JobSpec(key=kind, argv=tuple(argv), cwd=cwd, timeout=timeout, log_path=log, env=env)
    with LocalExecutor(1, grace=grace) as executor:
        shutdown.on_hurry(executor.hurry)
        executor.submit(job)
        while True:
            done = executor.wait(_SIGNAL_POLL)
            if done:
                result = done[0]
                break
            if shutdown.requested:
                executor.cancel_all(shutdown.grace(grace))  # SIGTERM, grace, SIGKILL: all gone
                raise Stopped(kind)
    output = read_file_tail(log, _LOG_TAIL_BYTES).decode(errors="replace")
    if result.error:
        output += f"\nherd: {result.error}\n"
    if result.timed_out:
        raise LandingFailed(
            f"the {kind} command timed out after {timeout:g}s (its process group was "
            f"killed): {command}; nothing was landed (output: {log}); once it is fixed, "
            f"`herd resume {env.get('HERD_RUN_ID', 'RUN')}` lands the run"
        )
    code = result.exit_code if result.exit_code is not None else 128 + (result.signal or 0)
    return CommandRun(code, output, log)
