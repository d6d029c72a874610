"""herd as a library: the same engine as the CLI, called from Python.

    import herd

    outcome = herd.run_batch(["t-1a2b", "t-3c4d"], cmd=["my-agent", "{context}"], repo=".")
    result = herd.map(["echo", "{}"], ["a", "b", "c"])

Both return typed outcomes (`herd.RunOutcome`, `herd.MapOutcome`) and raise `HerdError`
subclasses (each with its `exit_code`) instead of printing or exiting. Both install
herd's SIGINT/SIGTERM handling while they run when called from the main thread.
"""

from __future__ import annotations

import io
import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from herd.engine.journal import Journal, Listener
from herd.errors import BadInput
from herd.items.mapper import MapOptions, MapOutcome, plan, start
from herd.run.attempts import RunOptions
from herd.run.batch import LandingOptions, RunOutcome
from herd.store import Store, find_db, user_store_path


def run_batch(
    ids: Sequence[str] = (),
    *,
    cmd: Sequence[str] | str | None = None,
    agent: str | None = None,
    repo: str | os.PathLike[str] = ".",
    ready: bool = False,
    jobs: int | None = None,
    retries: int = 1,
    timeout: float | None = None,
    halt: str | None = None,
    integrate: bool = True,
    test_cmd: str | None = None,
    push: bool = False,
    remote: str = "origin",
    branch: str | None = None,
    listeners: Sequence[Listener] = (),
) -> RunOutcome:
    """`herd run`: the tasks `ids` (or every ready one with `ready=True`) of the queue in
    `repo`, each by `cmd` (an argv; `{id}`, `{context}`, `{worktree}` are filled in) or a
    preset `agent`, side by side in their own worktrees; then landed unless
    `integrate=False`. `timeout` is seconds per attempt; `halt` as `--halt`."""
    from herd import settings
    from herd.engine.policies import Halt
    from herd.run import agents, batch

    if (cmd is None) == (agent is None):
        raise BadInput("say what runs each task: cmd=[...] or agent=NAME (one of them)")
    store = Store(find_db(start=Path(repo).resolve()))
    if cmd is not None:
        chosen = agents.from_command(cmd if isinstance(cmd, str) else shlex.join(cmd))
    else:
        chosen = agents.load(str(agent), store.herd_dir / "config.toml", team=settings.load().agents)
    Halt.parse(halt)
    options = RunOptions(agent=chosen, workers=jobs or 1, retries=retries, timeout=timeout, halt=halt)
    landing = LandingOptions(integrate=integrate, test_cmd=test_cmd, push=push, remote=remote, branch=branch)
    return batch.start(
        store, ids=ids, ready=ready, jobs=jobs, options=options, landing=landing, listeners=listeners
    )


def map(
    command: Sequence[str],
    items: Iterable[str],
    *,
    jobs: int | None = None,
    batch_size: int = 1,
    retries: int = 0,
    timeout: float | None = None,
    halt: str | None = None,
    keep_order: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    out: IO[bytes] | None = None,
) -> MapOutcome:
    """`herd map`: `command` (an argv; `{}` is the item) once per item, `jobs` at a time,
    journaled like the CLI's (`herd map --resume RUN` continues it). The jobs' stdout goes
    to `out` (default: collected in `MapOutcome.stdout`)."""
    from herd.engine.policies import Halt

    if not command:
        raise BadInput("map: command is empty")
    Halt.parse(halt)
    store = Store(Path(db) if db else _item_store_path(), create=True)
    options = MapOptions(
        argv=tuple(command),
        workers=jobs or min(8, os.cpu_count() or 1),
        batch_size=batch_size,
        retries=retries,
        timeout=timeout,
        keep_order=keep_order,
        cwd=Path(cwd).resolve() if cwd else Path.cwd(),
        halt=halt,
    )
    values = list(items)
    journal = Journal.create(store, "map", options.to_args())
    collected = io.BytesIO()
    outcome = start(
        journal, values, options, plan(len(values), options), out=out if out is not None else collected
    )
    if out is None:
        outcome.stdout = collected.getvalue()
    return outcome


def _item_store_path() -> Path:
    from herd.errors import NotFound

    try:
        return find_db(None)
    except NotFound:
        return user_store_path()
