"""The hypervisor, landing and `herd map` driven inside pytest through the in-process executor.

No herd process and no worker process: `batch.start` / `mapper.start` are called as a
library, with `InProcessExecutor` injected where the CLI injects the local pool. The fake
agent is a Python function, but its work is real: it reads the context file herd wrote,
edits files in the task's worktree and commits them with git; landing stacks, tests and
pushes to a real bare remote; the store is real SQLite. The same behaviours through the
real CLI with real worker processes and signals are in test_run.py and test_run_crash.py.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_repo

from herd.engine.executor import Executor
from herd.engine.executor.inprocess import Call, InProcessExecutor
from herd.engine.journal import Journal, TaskState
from herd.errors import EXIT_OK, EXIT_PARTIAL
from herd.items import mapper
from herd.queue.core import Queue, init
from herd.run import batch
from herd.run.agents import Agent
from herd.run.attempts import RunOptions


class FakeAgent:
    """An agent as a function. Orders come from the task's description, one per line:
    `edit: PATH`, `fail-attempts: N`, `hang` (waits until herd stops it)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, call: Call) -> int:
        context = Path(call.env["HERD_CONTEXT_FILE"]).read_text(encoding="utf-8")
        description = context.split("### Description", 1)[-1]
        orders = [
            line.strip()
            for line in description.split("### Previous attempt failed")[0].splitlines()
            if line.strip()
        ]
        attempt = int(call.env["HERD_ATTEMPT"])
        with self.lock:
            self.calls.append(
                {
                    "task": call.env["HERD_TASK_ID"],
                    "attempt": attempt,
                    "cwd": call.cwd,
                    "argv": call.argv,
                    "context": context,
                }
            )
        print(f"fake agent: {call.env['HERD_TASK_ID']} attempt {attempt}", file=call.stdout)
        failing = next((int(o.split(":")[1]) for o in orders if o.startswith("fail-attempts:")), 0)
        if attempt <= failing:
            print("boom: the tests are red", file=call.stderr)
            return 3
        if "hang" in orders:
            call.sleep(600)
        for order in orders:
            if order.startswith("edit:"):
                path = call.cwd / order.split(":", 1)[1].strip()
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as f:
                    f.write(f"edited by {call.env['HERD_TASK_ID']} attempt {attempt}\n")
        call.run(["git", "add", "-A"])
        call.run(["git", "commit", "-q", "-m", f"work on {call.env['HERD_TASK_ID']}"])
        return 0


@dataclass
class World:
    repo: Path
    remote: Path
    queue: Queue
    agent: FakeAgent
    program: Path

    def task(self, title: str, *orders: str, scope: str) -> str:
        return str(
            self.queue.create(title, description="\n".join(orders), scope=[scope], criteria=["it works"])[
                "id"
            ]
        )

    def factory(self, options: RunOptions) -> Executor:
        return InProcessExecutor(options.workers, programs={str(self.program): self.agent}, grace=0.5)

    def run(self, *ids: str, push: bool = True, **options: Any) -> batch.RunOutcome:
        run_options = RunOptions(agent=Agent("cmd", (str(self.program),)), workers=1, **options)
        landing = batch.LandingOptions(push=push, test_cmd="git diff --quiet HEAD")
        return batch.start(
            self.queue.store,
            ids=ids,
            jobs=len(ids),
            options=run_options,
            landing=landing,
            executor_factory=self.factory,
        )


@pytest.fixture
def world(tmp_path: Path) -> World:
    repo, remote = make_repo(tmp_path)
    store = init(repo, "t")
    # The program must exist for pre-flight; the executor runs the function registered under it.
    program = tmp_path / "agent"
    program.write_text("#!/bin/sh\nexit 99\n")
    program.chmod(0o755)
    return World(repo, remote, Queue(store, actor="test"), FakeAgent(), program)


def test_tasks_run_in_their_worktrees_land_and_push_once(world: World) -> None:
    ids = [world.task(f"task {n}", f"edit: src/new{n}.py", scope=f"src/new{n}.py") for n in range(3)]
    before = git(world.remote, "rev-parse", "main")
    outcome = world.run(*ids)
    assert outcome.exit_code == EXIT_OK, outcome.to_json()
    assert sorted(outcome.work.succeeded) == sorted(ids)
    assert outcome.landing is not None
    assert sorted(outcome.landing.landed) == sorted(ids) and outcome.landing.tests == 1
    # Each call ran in its own worktree, not in the user's repository.
    cwds = {call["task"]: call["cwd"] for call in world.agent.calls}
    assert set(cwds) == set(ids) and world.repo not in cwds.values()
    assert len(set(cwds.values())) == 3
    # One push carrying one squashed commit per task, on top of what the remote had.
    assert git(world.remote, "rev-list", "--count", f"{before}..main") == "3"
    for n in range(3):
        shown = git(world.remote, "show", f"main:src/new{n}.py")
        assert shown.startswith("edited by t-") and "attempt 1" in shown
    assert all(r["status"] == "closed" for r in world.queue.show(ids))


def test_a_failed_attempt_is_retried_once_with_its_evidence(world: World) -> None:
    flaky = world.task("flaky", "fail-attempts: 1", "edit: src/flaky.py", scope="src/flaky.py")
    broken = world.task("broken", "fail-attempts: 5", "edit: src/broken.py", scope="src/broken.py")
    outcome = world.run(flaky, broken)
    assert outcome.exit_code == EXIT_PARTIAL
    assert list(outcome.work.succeeded) == [flaky] and list(outcome.work.failed) == [broken]
    attempts = sorted((c["task"], c["attempt"]) for c in world.agent.calls)
    assert attempts == sorted([(flaky, 1), (flaky, 2), (broken, 1), (broken, 2)])
    retry = next(c for c in world.agent.calls if c["task"] == flaky and c["attempt"] == 2)
    assert "### Previous attempt failed" in retry["context"]
    assert "boom: the tests are red" in retry["context"]
    assert "flaky" in git(world.remote, "log", "-1", "--format=%B", "main")
    [given_back] = world.queue.show([broken])
    assert given_back["status"] == "open" and not given_back.get("assignee")


def test_a_task_past_its_timeout_is_stopped_and_the_rest_lands(world: World) -> None:
    slow = world.task("slow", "hang", scope="src/slow.py")
    quick = world.task("quick", "edit: src/quick.py", scope="src/quick.py")
    outcome = world.run(slow, quick, timeout=1.0, retries=0)
    assert list(outcome.work.succeeded) == [quick] and list(outcome.work.failed) == [slow]
    journal = Journal.open(world.queue.store, outcome.run_id)
    states = {row["task_id"]: row["state"] for row in journal.tasks()}
    assert states[slow] == TaskState.FAILED.value
    assert git(world.remote, "show", "main:src/quick.py").startswith("edited by")
    [attempt] = journal.attempts(slow)
    assert attempt["outcome"] == "timeout" and attempt["signal"] == 15, attempt
    assert attempt["worker"] == "inprocess/w1" or attempt["worker"] == "inprocess/w2"
    # Its log holds what it printed before it was stopped.
    assert Path(str(attempt["log_path"])).read_text() == f"fake agent: {slow} attempt 1\n"


# -- herd map ---------------------------------------------------------------------------


class InProcessMap(mapper.MapOptions):
    """`herd map` with its jobs on the in-process executor."""

    def make_executor(self, slots: int) -> Executor:
        return InProcessExecutor(slots, programs={"upper": upper, "flaky": flaky})


def upper(call: Call) -> int:
    for item in call.argv[1:]:
        print(item.upper(), file=call.stdout)
    return 0


_flaky_seen: set[str] = set()


def flaky(call: Call) -> int:
    """Fails the first time it sees an item; writes a marker file in its cwd when it passes."""
    item = call.argv[1]
    if item not in _flaky_seen:
        _flaky_seen.add(item)
        print(f"first try of {item} fails", file=call.stderr)
        return 1
    (call.cwd / f"{item}.done").write_text("ok\n")
    print(item, file=call.stdout)
    return 0


def _map(
    tmp_path: Path, items: list[str], argv: tuple[str, ...], **options: Any
) -> tuple[mapper.MapOutcome, bytes, Journal]:
    store = init(tmp_path, "m")
    map_options = InProcessMap(argv=argv, cwd=tmp_path, **options)
    the_plan = mapper.plan(len(items), map_options)
    journal = Journal.create(store, "map", {**map_options.to_args(), "items": len(items)})
    out = io.BytesIO()
    outcome = mapper.start(journal, items, map_options, the_plan, out=out)
    return outcome, out.getvalue(), journal


def test_map_keeps_order_and_batches_items(tmp_path: Path) -> None:
    items = [f"item{n}" for n in range(40)]
    outcome, out, journal = _map(tmp_path, items, ("upper", "{}"), workers=4, batch_size=3, keep_order=True)
    assert outcome.exit_code == 0 and outcome.counts == {"succeeded": 14}, outcome.end_event().to_json()
    assert out.decode().splitlines() == [item.upper() for item in items]
    assert len(journal.tasks()) == 14  # 40 items in batches of 3
    assert all(t["state"] == TaskState.SUCCEEDED.value for t in journal.tasks())


def test_map_retries_a_failed_item_and_records_both_attempts(tmp_path: Path) -> None:
    _flaky_seen.clear()
    outcome, out, journal = _map(tmp_path, ["a", "b"], ("flaky", "{}"), workers=2, batch_size=1, retries=1)
    assert outcome.exit_code == 0 and outcome.counts == {"succeeded": 2}, outcome.end_event().to_json()
    assert sorted(out.decode().split()) == ["a", "b"]
    assert (tmp_path / "a.done").exists() and (tmp_path / "b.done").exists()
    for task in journal.tasks():
        assert int(task["attempts"]) == 2
