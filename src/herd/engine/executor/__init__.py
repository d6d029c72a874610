"""Executors run jobs; the coordinator only sees `Executor`, `JobSpec` and `JobResult`."""

from types import ModuleType

from herd.engine.executor.base import Executor, JobResult, JobSpec
from herd.engine.executor.local import LocalExecutor

__all__ = ["Executor", "JobResult", "JobSpec", "LocalExecutor", "load_dask"]


def load_dask() -> ModuleType:
    """`herd.engine.executor.dask`, imported only when asked for: `distributed` is an extra."""
    import importlib

    from herd.errors import BadInput
    from herd.install import extra_hint

    try:
        return importlib.import_module("herd.engine.executor.dask")
    except ModuleNotFoundError as exc:
        raise BadInput(
            f"--executor dask needs the dask extra: {extra_hint('dask')} ({exc.name} is missing)"
        ) from None
