"""How herd stops on SIGINT and SIGTERM: one design for run, landing, map and pipeline.

The signal handler only records the signal; it never raises. The engine's loop
looks at the flag between steps and stops on its own terms: it starts nothing
new, stops its running jobs (SIGTERM, grace, SIGKILL), journals every attempt it
cut short and gives every claimed task back. A second signal makes that stop
hurry (running jobs are killed at once) but never skips the clean-up: as in
trio, children are always reaped and state is always saved, whatever arrives
while that happens. A KeyboardInterrupt raised in the middle of clean-up is
what left tasks claimed before this module existed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from herd.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Shutdown:
    """The stop request of one engine run; shared by everything that run drives."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._on_hurry: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        """A signal arrived: start nothing new, stop what runs, save state."""
        return bool(self.signals)

    @property
    def hurried(self) -> bool:
        """A second signal arrived: no grace period for running jobs."""
        return len(self.signals) > 1

    def grace(self, normal: float) -> float:
        return 0.0 if self.hurried else normal

    def on_hurry(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the signal handler) when the second signal arrives; an
        executor passes its `hurry`, which kills its running jobs without waiting."""
        self._on_hurry.append(callback)
        if self.hurried:
            callback()

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Record a stop request, as the signal handler does (tests and embedders call it)."""
        self.signals.append(signum)
        if len(self.signals) == 2:
            for callback in self._on_hurry:
                with contextlib.suppress(Exception):  # a handler must not raise
                    callback()

    def check(self, where: str, resume_hint: str = "") -> None:
        """Raise Interrupted when a stop was requested: for engines that stop between steps."""
        if self.requested:
            hint = f"; state saved: {resume_hint}" if resume_hint else ""
            raise Interrupted(f"interrupted {where}{hint}")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request(signum)


@contextlib.contextmanager
def handling_signals(shutdown: Shutdown | None = None) -> Iterator[Shutdown]:
    """SIGINT and SIGTERM set `shutdown` for the duration of the block (a nested use with
    the same object keeps the outer handlers). Off the main thread, where Python delivers
    no signals, the handlers are not installed and only `request()` stops the run."""
    shutdown = shutdown or Shutdown()
    current = signal.getsignal(signal.SIGINT)
    nested = getattr(current, "__self__", None) is shutdown
    if nested or threading.current_thread() is not threading.main_thread():
        yield shutdown
        return
    previous = {sig: signal.signal(sig, shutdown._handle) for sig in STOP_SIGNALS}
    try:
        yield shutdown
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
