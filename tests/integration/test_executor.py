"""The local executor against real processes and real signals."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import background_pids

from herd.engine.executor import JobResult, JobSpec, LocalExecutor
from herd.errors import BadInput

MB = 1024 * 1024


def run_all(ex: LocalExecutor, jobs: list[JobSpec]) -> dict[str, JobResult]:
    for job in jobs:
        ex.submit(job)
    return {r.key: r for r in ex.results()}


def run_one(job: JobSpec, **options: float) -> JobResult:
    with LocalExecutor(1, **options) as ex:  # type: ignore[arg-type]
        return run_all(ex, [job])[job.key]


def is_alive(pid: int) -> bool:
    """A zombie waiting for an uninterested reaper counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def dies_soon(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: a straggler may need a moment to exit."""
    deadline = time.monotonic() + 2
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_pid(path: Path) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def our_children(recursive: bool = True) -> list[psutil.Process]:
    """This process's children, less the suite's own background checkers (ruff, mypy)."""
    return [p for p in psutil.Process().children(recursive=recursive) if p.pid not in background_pids()]


def assert_no_children() -> None:
    assert our_children() == []


def test_exit_codes_pass_through() -> None:
    with LocalExecutor(4) as ex:
        jobs = [JobSpec(f"j{code}", ("sh", "-c", f"exit {code}")) for code in (0, 1, 3, 42)]
        results = run_all(ex, jobs)
    assert {key: r.exit_code for key, r in results.items()} == {
        "j0": 0,
        "j1": 1,
        "j3": 3,
        "j42": 42,
    }
    assert results["j0"].ok and not results["j1"].ok
    assert all(r.worker.startswith("local/w") for r in results.values())
    assert_no_children()


def test_job_killed_by_signal_reports_the_signal() -> None:
    result = run_one(JobSpec("k", ("sh", "-c", "kill -USR1 $$")))
    assert result.exit_code is None
    assert result.signal == signal.SIGUSR1
    assert not result.ok


def test_command_not_found_is_127_with_error_text() -> None:
    result = run_one(JobSpec("nf", ("herd-no-such-command-xyz", "arg")))
    assert result.exit_code == 127
    assert result.error is not None and "herd-no-such-command-xyz" in result.error
    assert "not found" in result.error
    assert not result.ok


def test_missing_cwd_is_reported_not_raised(tmp_path: Path) -> None:
    result = run_one(JobSpec("cwd", ("true",), cwd=tmp_path / "missing"))
    assert result.exit_code == 127
    assert result.error is not None and "missing" in result.error


def test_cwd_is_used(tmp_path: Path) -> None:
    result = run_one(JobSpec("cwd", ("pwd",), cwd=tmp_path, capture_stdout=True))
    assert result.stdout == f"{tmp_path}\n".encode()


def test_timeout_kills_term_ignoring_job_and_its_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"trap '' TERM; sleep 100 & echo $! > {pidfile}; sleep 100"
    started = time.monotonic()
    result = run_one(JobSpec("slow", ("sh", "-c", script), timeout=0.5), grace=0.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert result.signal == signal.SIGKILL  # SIGTERM was ignored; the grace ran out
    assert 1.0 <= elapsed < 5.0
    assert dies_soon(read_pid(pidfile))
    assert_no_children()


def test_timeout_stops_at_sigterm_when_the_job_obeys() -> None:
    result = run_one(JobSpec("slow", ("sleep", "100"), timeout=0.3), grace=5.0)
    assert result.timed_out
    assert result.signal == signal.SIGTERM
    assert result.duration < 3.0


def test_stragglers_of_a_finished_job_are_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    result = run_one(JobSpec("bg", ("sh", "-c", f"sleep 100 & echo $! > {pidfile}")))
    assert result.exit_code == 0
    assert dies_soon(read_pid(pidfile))


def test_max_memory_kills_a_job_that_allocates() -> None:
    allocate = "import time; x = b'x' * (300 * 1024 * 1024); time.sleep(30)"
    job = JobSpec("hog", (sys.executable, "-c", allocate), max_memory=100 * MB, timeout=60)
    result = run_one(job, memory_poll_interval=0.05, grace=1.0)
    assert result.out_of_memory and not result.ok
    assert not result.timed_out
    assert result.duration < 15
    assert_no_children()


def test_max_memory_leaves_a_small_job_alone() -> None:
    job = JobSpec("small", ("sh", "-c", "sleep 0.3"), max_memory=500 * MB)
    result = run_one(job, memory_poll_interval=0.05)
    assert result.ok and not result.out_of_memory


def test_rate_limit_spaces_starts() -> None:
    with LocalExecutor(4, rate_per_min=600) as ex:  # one start per 0.1 s
        results = run_all(ex, [JobSpec(str(i), ("true",)) for i in range(5)])
    starts = sorted(r.started_at for r in results.values())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.09 for gap in gaps), gaps


def test_concurrency_never_exceeds_slots(tmp_path: Path) -> None:
    script = 'date +%s.%N > "$1.start"; sleep 0.1; date +%s.%N > "$1.end"'
    jobs = [JobSpec(str(i), ("sh", "-c", script, "sh", str(tmp_path / str(i)))) for i in range(24)]
    with LocalExecutor(3) as ex:
        results = run_all(ex, jobs)
    assert all(r.ok for r in results.values())
    events: list[tuple[float, int]] = []
    for i in range(24):
        events.append((float((tmp_path / f"{i}.start").read_text()), 1))
        events.append((float((tmp_path / f"{i}.end").read_text()), -1))
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    assert peak == 3
    assert {r.worker for r in results.values()} == {"local/w1", "local/w2", "local/w3"}


def test_cancel_all_leaves_no_process_behind(tmp_path: Path) -> None:
    stubborn = "trap '' TERM; sleep 100 & echo $! > {0}; sleep 100"
    polite = "sleep 100 & echo $! > {0}; wait"
    jobs = [
        JobSpec(str(i), ("sh", "-c", (stubborn if i % 2 else polite).format(tmp_path / f"{i}.pid")))
        for i in range(4)
    ]
    queued = [JobSpec(f"q{i}", ("true",)) for i in range(3)]
    with LocalExecutor(4, grace=0.5) as ex:
        for job in jobs + queued:
            ex.submit(job)
        assert ex.wait(timeout=0.3) == []
        leaders = [p.pid for p in our_children(recursive=False)]
        grandchildren = [read_pid(tmp_path / f"{i}.pid") for i in range(4)]
        results = {r.key: r for r in ex.cancel_all()}
        assert ex.cancel_all() == []
        assert ex.outstanding == 0
    assert set(results) == {"0", "1", "2", "3", "q0", "q1", "q2"}
    assert all(r.cancelled and not r.ok for r in results.values())
    assert results["1"].signal == signal.SIGKILL
    assert results["q0"].error is not None
    assert all(dies_soon(pid) for pid in leaders + grandchildren)
    assert_no_children()


def test_capture_stdout_returns_output_whole() -> None:
    write = "import sys; sys.stdout.write('x' * 1_000_000); sys.stderr.write('done\\n')"
    result = run_one(JobSpec("big", (sys.executable, "-c", write), capture_stdout=True))
    assert result.ok
    assert result.stdout == b"x" * 1_000_000
    assert result.tail == "done\n"


def test_capture_stdout_with_log_sends_stderr_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    job = JobSpec("j", ("sh", "-c", "echo out; echo err >&2"), capture_stdout=True, log_path=log)
    result = run_one(job)
    assert result.stdout == b"out\n"
    assert log.read_text() == "err\n"
    assert result.tail == "err\n"


def test_tail_is_the_last_lines_in_memory() -> None:
    result = run_one(JobSpec("seq", ("seq", "1", "1000")))
    lines = result.tail.splitlines()
    assert lines[-1] == "1000"
    assert 30 <= len(lines) <= 40
    assert lines == [str(n) for n in range(1001 - len(lines), 1001)]
    assert result.stdout is None


def test_tail_is_the_last_lines_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "attempt.log"
    script = "seq 1 5000; echo failing >&2"
    result = run_one(JobSpec("seq", ("sh", "-c", script), log_path=log))
    assert log.read_text().count("\n") == 5001
    lines = result.tail.splitlines()
    assert lines[-1] == "failing"
    assert lines[-2] == "5000"
    assert len(lines) == 40


def test_env_vars_are_merged_over_the_environment() -> None:
    job = JobSpec(
        "env",
        ("sh", "-c", 'echo "$HERD_X|${PATH:+path}"'),
        env={"HERD_X": "a b"},
        capture_stdout=True,
    )
    assert run_one(job).stdout == b"a b|path\n"


def test_argv_is_never_a_shell(tmp_path: Path) -> None:
    job = JobSpec("lit", ("echo", "$(touch x)", "; touch y"), cwd=tmp_path, capture_stdout=True)
    result = run_one(job)
    assert result.stdout == b"$(touch x) ; touch y\n"
    assert list(tmp_path.iterdir()) == []


def test_shell_string_argv_is_refused() -> None:
    with pytest.raises(BadInput):
        JobSpec("s", "echo hi")  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        JobSpec("s", ())


def test_wait_returns_empty_on_timeout_then_the_result() -> None:
    with LocalExecutor(2) as ex:
        ex.submit(JobSpec("s", ("sleep", "0.3")))
        assert ex.wait(timeout=0.05) == []
        assert ex.outstanding == 1
        (result,) = ex.wait()
        assert result.ok and ex.outstanding == 0
        assert ex.wait(timeout=0.05) == []


def test_coordinator_loop_refills_slots() -> None:
    keys = [str(i) for i in range(200)]
    seen: list[str] = []
    with LocalExecutor(4) as ex:
        todo = list(keys)
        while todo or ex.outstanding:
            while todo and ex.outstanding < ex.slots:
                ex.submit(JobSpec(todo.pop(), ("true",)))
            seen += [r.key for r in ex.wait() if r.ok]
    assert sorted(seen) == sorted(keys)
    assert_no_children()


def test_public_surface() -> None:
    import herd.engine.executor

    assert sorted(herd.engine.executor.__all__) == [
        "Executor",
        "JobResult",
        "JobSpec",
        "LocalExecutor",
        "load_dask",
    ]
    executor: herd.engine.executor.Executor = LocalExecutor(1)  # the pool satisfies the protocol
    executor.close()


def test_wait_zero_polls_without_blocking() -> None:
    with LocalExecutor(1) as ex:
        ex.submit(JobSpec("t", ("true",)))
        time.sleep(0.2)  # long finished; wait(0) must still notice
        started = time.monotonic()
        results = ex.wait(timeout=0)
        assert time.monotonic() - started < 0.1
        assert [r.key for r in results] == ["t"]


@pytest.mark.parametrize("elsewhere", [False, True], ids=["here", "elsewhere"])
def test_a_job_starts_alone_in_its_session_with_default_signals(tmp_path: Path, elsewhere: bool) -> None:
    """Own session and process group, stdin from /dev/null, SIGPIPE not ignored (Python
    ignores it and exec would pass that on), no descriptor of ours but 0, 1 and 2."""
    held = open(tmp_path / "held", "w")  # noqa: SIM115  (close-on-exec, like all of ours)
    probe = (
        "import os, sys\n"
        "print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())\n"
        "print(sys.stdin.read() == '', os.readlink('/proc/self/fd/0'))\n"
        "print(sorted(int(fd) for fd in os.listdir('/proc/self/fd') if int(fd) > 2))\n"
    )
    cwd = tmp_path if elsewhere else None
    try:
        result = run_one(JobSpec("probe", (sys.executable, "-c", probe), cwd=cwd, capture_stdout=True))
        # Not a Python probe for signals: Python ignores SIGPIPE itself at start-up.
        status = run_one(JobSpec("sigs", ("cat", "/proc/self/status"), cwd=cwd, capture_stdout=True))
    finally:
        held.close()
    assert result.ok and status.ok, result.tail + status.tail
    lines = (result.stdout or b"").decode().splitlines()
    assert lines[0] == "True True"
    assert lines[1] == "True /dev/null"
    assert lines[2] == "[3]"  # only the listdir's own descriptor
    ignored = next(
        line for line in (status.stdout or b"").decode().splitlines() if line.startswith("SigIgn:")
    )
    assert not int(ignored.split()[1], 16) & (1 << (signal.SIGPIPE - 1))


def test_a_program_found_on_the_jobs_own_path(tmp_path: Path) -> None:
    """A PATH in the job's env is where its program is looked up (not the supervisor's)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "herd-only-here"
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    result = run_one(
        JobSpec("path", ("herd-only-here",), env={"PATH": f"{bindir}:/usr/bin:/bin"}, capture_stdout=True)
    )
    assert result.stdout == b"found\n"


@pytest.mark.parametrize("epoll", [True, False], ids=["epoll", "selectors"])
def test_the_wait_set_reports_what_became_readable(epoll: bool) -> None:
    """The executor's wait set: raw epoll on Linux, `selectors` elsewhere; both answer the
    same (a written pipe, a hung-up one, a removed one never)."""
    from herd.engine.executor.local import _Watch

    watch = _Watch(epoll=epoll)
    pipes = [os.pipe() for _ in range(3)]
    open_fds = {fd for pair in pipes for fd in pair}
    try:
        for n, (r, _) in enumerate(pipes):
            watch.add(r, f"pipe {n}")
        assert watch.wait(0) == []
        os.write(pipes[0][1], b"x")
        os.close(pipes[1][1])  # hung up: readable (EOF)
        open_fds.discard(pipes[1][1])
        os.write(pipes[2][1], b"x")
        watch.remove(pipes[2][0])
        assert sorted(map(str, watch.wait(1.0))) == ["pipe 0", "pipe 1"]
    finally:
        watch.close()
        for fd in open_fds:
            os.close(fd)
