"""Start a herd command in the background and hand back what it is doing, at once.

An agent driving herd (through `herd mcp`) must not block for the hour a run can take:
`run`, `resume` and `land` are started as their own `herd` process, detached from the
caller (own session: closing the agent's terminal or MCP connection does not stop the
run), with `--json` so its first event names the run. That process is the supervisor of
its workers, as when a person types the command; its own output goes to files under
`.herd/detached/`, never to the caller's stdin/stdout (the MCP channel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from herd.engine.executor.output import read_file_tail
from herd.engine.journal import new_run_id
from herd.errors import HerdError
from herd.store import Store

STARTUP_TIMEOUT = 120.0  # planning 1,000 tasks takes well under a second; this is generous


class StartedJson(TypedDict):
    pid: int
    exit_code: int | None
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Started:
    pid: int
    first_event: dict[str, Any] | None  # None: still starting, or ended before any event
    exit_code: int | None  # set when the process already ended
    stdout: Path
    stderr: Path

    def to_json(self, root: Path) -> StartedJson:
        return {
            "pid": self.pid,
            "exit_code": self.exit_code,
            "stdout": _relative(self.stdout, root),
            "stderr": _relative(self.stderr, root),
        }


class CommandFailed(HerdError):
    """The background command stopped with an error: its own message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def start(store: Store, args: Sequence[str], *, wait: float = STARTUP_TIMEOUT) -> Started:
    """Run `herd --db STORE --json ARGS...` detached. Return once it printed its first event
    (which names the run) or after `wait` seconds (still going, no event yet); raise
    CommandFailed with herd's own message and exit code when it stopped with an error
    before any event (a plan refused, an unknown run)."""
    out_dir = store.herd_dir / "detached"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{new_run_id()}-{args[0]}"
    stdout, stderr = stem.with_suffix(".jsonl"), stem.with_suffix(".err")
    argv = [sys.executable, "-m", "herd", "--db", str(store.path), "--json", *args]
    env = {**os.environ, "HERD_PROGRESS": "plain"}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            argv,
            cwd=store.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
        )
    # Reap it when it ends, so a long-lived server does not collect zombies.
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    deadline = time.monotonic() + wait
    while True:
        event = _first_event(stdout)
        code = process.poll()
        if event is not None or code is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if event is None and code is not None:
        event = _first_event(stdout)  # written just before it exited
    if event is not None and "event" not in event and "error" in event:
        # With --json an error is also an object on stdout: the command stopped up front.
        raise CommandFailed(str(event["error"]), int(event.get("exit_code") or 1))
    if event is None and code not in (None, 0):
        raise CommandFailed(_error_line(stderr) or f"`herd {args[0]}` exited with {code}", int(code or 1))
    return Started(process.pid, event, code, stdout, stderr)


def _first_event(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            line = handle.readline()
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        return None  # not written whole yet
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _error_line(path: Path) -> str:
    """herd's one-line error (without the `herd: error: ` prefix) from the child's stderr."""
    lines = read_file_tail(path).decode(errors="replace").strip().splitlines()
    for line in reversed(lines):
        if line.startswith("herd: error: "):
            return line.removeprefix("herd: error: ")
    return lines[-1] if lines else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name
