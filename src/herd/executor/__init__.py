"""Executors run jobs; the coordinator only sees `Executor`, `JobSpec` and `JobResult`."""

from herd.executor.base import Executor, JobResult, JobSpec
from herd.executor.local import LocalExecutor

__all__ = ["Executor", "JobResult", "JobSpec", "LocalExecutor"]
