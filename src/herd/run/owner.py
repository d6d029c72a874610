"""Who drives a run: one process, named so that it cannot be mistaken for another.

A run row records its owner as `ROLE@HOST:PID:STARTED:TOKEN`. The start time
tells a dead herd from a live process that reused its pid; the token is unique
per process and goes into the run's actor names, so claims made by a process
that lost the run are not mistaken for the new owner's. `herd resume` takes a
run over only when its owner is gone, with a compare-and-swap on this string.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from herd.structs import struct

if TYPE_CHECKING:
    from herd.store.journal import RunRow

# Start times read twice for the same process can differ by rounding (psutil derives them
# from boot time and clock ticks).
_START_SLACK = 1.0


@struct(frozen=True)
class Owner:
    role: str  # run, map, pipeline (the process that created the run) or resume
    host: str
    pid: int
    started: float  # the process's start time, seconds since the epoch
    token: str

    def __str__(self) -> str:
        return f"{self.role}@{self.host}:{self.pid}:{self.started:.2f}:{self.token}"

    @classmethod
    def this_process(cls, role: str) -> Owner:
        return cls(role, _hostname(), os.getpid(), _start_time(os.getpid()) or 0.0, os.urandom(3).hex())

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        if not text or "@" not in text:
            return None
        role, rest = text.split("@", 1)
        parts = rest.rsplit(":", 3)
        if len(parts) != 4:
            return None
        host, pid, started, token = parts
        try:
            return cls(role, host, int(pid), float(started), token)
        except ValueError:
            return None

    def alive(self) -> bool:
        """False when this process is certainly gone. A process on another host cannot be
        checked from here: it counts as alive (refusing is the safe side)."""
        if self.host != _hostname():
            return True
        started = _start_time(self.pid)
        if started is None:
            return False
        if not started or not self.started:  # one of the two start times is unknown
            return True
        return abs(started - self.started) <= _START_SLACK


def _hostname() -> str:
    """`socket.gethostname()` (the same name, from uname) without importing socket and,
    for the token, os.urandom rather than secrets: both imports cost every run's start."""
    return os.uname().nodename


def run_owner_alive(run: RunRow) -> bool:
    """Whether the process recorded as a run's owner still exists (runs recorded before
    owners were, have only a pid)."""
    pid = run.get("pid")
    if pid == os.getpid():
        return False  # this process is asking to drive it, so it does not drive it now
    owner = Owner.parse(run.get("owner"))
    if owner is not None:
        return owner.alive()
    return pid is not None and _start_time(int(pid)) is not None


def _start_time(pid: int) -> float | None:
    """When process `pid` started; None when there is no such process (or only its zombie)."""
    try:
        return _proc_start_time(pid)
    except OSError:
        return _psutil_start_time(pid)  # no /proc (not Linux) or an unreadable one


def _psutil_start_time(pid: int) -> float | None:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return 0.0  # someone else's live process: it exists, its age is unknown


_boot_time: float | None = None


def _proc_start_time(pid: int) -> float | None:
    """Linux: the start time from /proc, computed as psutil computes it (boot time plus
    the start in clock ticks), so owners written by either compare equal. Importing psutil
    cost every run and map ~10 ms before its first job. OSError when /proc cannot answer."""
    global _boot_time
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        if not os.path.isdir("/proc/self"):
            raise  # no /proc at all: not an answer about `pid`
        return None
    # "pid (comm) state ... starttime ...": comm may hold spaces and parentheses.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime"):
                    _boot_time = float(line.split()[1])
                    break
            else:
                raise OSError("no btime in /proc/stat")
    return _boot_time + int(fields[19]) / os.sysconf("SC_CLK_TCK")
