"""What the worker phase works with: the run's options, one task's attempts, a verdict on
an attempt, and what the phase produced (landing reads only that)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple, NotRequired, TypedDict

from herd import units
from herd.engine.executor.output import last_lines
from herd.engine.policies import Budget, Halt, MemoryLimit, Policies, Retries, TimeLimit
from herd.engine.states import Outcome
from herd.errors import EXIT_OK, EXIT_PARTIAL
from herd.git.worktree import Worktree
from herd.queue.model import Record
from herd.run.agents import Agent
from herd.run.scope import Scope

TAIL_LINES = 40
# A worker's log keeps its last 64 MiB (HERD_WORKER_LOG_LIMIT overrides, e.g. 512M): an
# agent stuck printing in a loop must not fill the disk.
WORKER_LOG_LIMIT = 64 * 2**20


def worker_log_limit() -> int:
    value = os.environ.get("HERD_WORKER_LOG_LIMIT", "")
    return units.size(value) if value else WORKER_LOG_LIMIT


class AgentJson(TypedDict):
    name: str
    argv: list[str]
    cost_field: str | None


class RunOptionsJson(TypedDict):
    """RunOptions as the journal keeps them (a run's `args.options`), for `herd resume`."""

    agent: AgentJson
    workers: int
    retries: int
    timeout: float | None
    max_memory: int | None
    rate_per_min: float | None
    budget_usd: float | None
    lease_seconds: float
    grace: float
    skip_taken: NotRequired[bool]
    halt: NotRequired[str | None]


@dataclass
class RunOptions:
    agent: Agent
    workers: int
    retries: int = 1
    timeout: float | None = None
    max_memory: int | None = None
    rate_per_min: float | None = None
    budget_usd: float | None = None
    lease_seconds: float = 600.0
    grace: float = 5.0
    skip_taken: bool = False  # --ready: a task another run claims first is skipped, no failure
    halt: str | None = None  # GNU parallel's --halt: now|soon,fail|success|done=N|P%

    def to_json(self) -> RunOptionsJson:
        return {
            "agent": {
                "name": self.agent.name,
                "argv": list(self.agent.argv),
                "cost_field": self.agent.cost_field,
            },
            "workers": self.workers,
            "retries": self.retries,
            "timeout": self.timeout,
            "max_memory": self.max_memory,
            "rate_per_min": self.rate_per_min,
            "budget_usd": self.budget_usd,
            "lease_seconds": self.lease_seconds,
            "grace": self.grace,
            "skip_taken": self.skip_taken,
            "halt": self.halt,
        }

    @classmethod
    def from_json(cls, data: RunOptionsJson) -> RunOptions:
        spec = data["agent"]
        return cls(
            agent=Agent(spec["name"], tuple(spec["argv"]), spec.get("cost_field")),
            workers=data["workers"],
            retries=data["retries"],
            timeout=data["timeout"],
            max_memory=data["max_memory"],
            rate_per_min=data["rate_per_min"],
            budget_usd=data["budget_usd"],
            lease_seconds=data["lease_seconds"],
            grace=data["grace"],
            skip_taken=bool(data.get("skip_taken", False)),
            halt=data.get("halt"),
        )

    def policies(self, units: int | None = None) -> Policies:
        """The attempt policies of a run: the same classes `herd map` and `herd pipeline` use."""
        return Policies(
            [
                Retries(self.retries),
                TimeLimit(self.timeout),
                MemoryLimit(self.max_memory),
                Budget(self.budget_usd),
                Halt.parse(self.halt, units),
            ]
        )


@dataclass
class TaskRun:
    task: Record
    wave: int
    scope: Scope
    actor: str = ""
    attempt: int = 0
    evidence: list[str] = field(default_factory=list)
    worktree: Worktree | None = None
    slot: int = 0
    base: str = ""  # the commit this task's worktree starts from (set per wave)
    started: bool = False  # the current attempt's worker was submitted
    cost: float | None = None  # what the current attempt's agent reported, in USD

    @property
    def id(self) -> str:
        return str(self.task["id"])

    @property
    def key(self) -> str:
        """The executor's job key for the current attempt."""
        return f"{self.id}#{self.attempt}"


class Verdict(NamedTuple):
    outcome: Outcome
    reason: str
    sha: str | None  # the squashed commit, when the attempt succeeded


@dataclass
class WorkResult:
    """What the worker phase produced: committed branches and failures."""

    succeeded: dict[str, str] = field(default_factory=dict)  # task id -> commit sha
    failed: dict[str, str] = field(default_factory=dict)  # task id -> reason
    deferred: dict[str, str] = field(default_factory=dict)  # task id -> why not attempted
    skipped: dict[str, str] = field(default_factory=dict)  # taken by another run (--ready)
    cost_usd: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed or self.deferred else EXIT_OK


def tail_of(text: str) -> str:
    """The last lines of a worker's output, as comments and evidence quote them."""
    return last_lines(text, TAIL_LINES)
