"""The in-process executor: registered Python programs in threads, real results.

The programs here do real work (files, git in the job's cwd); what is in-process is only
where the program runs. The hypervisor and `herd map` drive it through their usual
injection points (`executor_factory`, `MapOptions.make_executor`) in
test_inprocess_run.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import git, make_repo

from herd.engine.executor import JobSpec
from herd.engine.executor.inprocess import Call, InProcessExecutor, Stopped, register, unregister


def committer(call: Call) -> int:
    """Writes a file named by argv[1] in its cwd and commits it, like an agent."""
    name = call.argv[1]
    (call.cwd / name).write_text(f"{call.env['WHO']}\n")
    call.run(["git", "add", name])
    call.run(["git", "commit", "-q", "-m", f"add {name}"])
    print(f"committed {name}", file=call.stdout)
    return 0


def test_a_program_runs_in_the_jobs_cwd_and_env_and_commits_for_real(tmp_path: Path) -> None:
    repo, _ = make_repo(tmp_path)
    with InProcessExecutor(2, programs={"commit": committer}) as pool:
        pool.submit(JobSpec("a", ("commit", "one.txt"), cwd=repo, env={"WHO": "first"}))
        [result] = list(pool.results())
    assert result.ok and result.exit_code == 0 and result.worker == "inprocess/w1"
    assert "committed one.txt" in result.tail
    assert git(repo, "log", "-1", "--format=%s") == "add one.txt"
    assert git(repo, "show", "HEAD:one.txt") == "first"
    assert "WHO" not in os.environ  # the job's env is the job's, not ours


def test_exit_codes_exceptions_and_missing_programs(tmp_path: Path) -> None:
    def fails(call: Call) -> int:
        print("last words", file=call.stderr)
        return 3

    def raises(call: Call) -> int:
        raise RuntimeError("exploded")

    def exits(call: Call) -> int:
        raise SystemExit(5)

    programs = {"fails": fails, "raises": raises, "exits": exits}
    with InProcessExecutor(3, programs=programs) as pool:
        for name in ("fails", "raises", "exits", "nowhere"):
            pool.submit(JobSpec(name, (name,), cwd=tmp_path))
        results = {r.key: r for r in pool.results()}
    assert results["fails"].exit_code == 3 and "last words" in results["fails"].tail
    assert not results["fails"].ok
    assert results["raises"].exit_code == 1 and "RuntimeError: exploded" in results["raises"].tail
    assert results["exits"].exit_code == 5
    assert results["nowhere"].exit_code == 127
    assert results["nowhere"].error == "command not found: nowhere"


def test_captured_stdout_is_whole_and_stderr_goes_to_the_log(tmp_path: Path) -> None:
    def chatty(call: Call) -> int:
        for n in range(500):
            print(f"out {n}", file=call.stdout)
        print("err line", file=call.stderr)
        return 0

    log = tmp_path / "job.log"
    with InProcessExecutor(1, programs={"chatty": chatty}) as pool:
        pool.submit(JobSpec("c", ("chatty",), capture_stdout=True, log_path=log))
        [result] = list(pool.results())
    assert result.stdout is not None
    assert result.stdout.decode().splitlines() == [f"out {n}" for n in range(500)]
    assert log.read_text() == "err line\n"
    assert result.tail == "err line\n"


def test_slots_bound_how_many_run_at_once() -> None:
    lock = threading.Lock()
    running, most = 0, 0

    def busy(call: Call) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return 0

    with InProcessExecutor(2, programs={"busy": busy}) as pool:
        for n in range(6):
            pool.submit(JobSpec(str(n), ("busy",)))
        assert pool.outstanding == 6
        results = list(pool.results())
    assert len(results) == 6 and all(r.ok for r in results)
    assert most == 2
    assert {r.worker for r in results} == {"inprocess/w1", "inprocess/w2"}


def test_a_timeout_stops_a_cooperating_program_and_abandons_one_that_ignores_it() -> None:
    stopped = threading.Event()

    def polite(call: Call) -> int:
        try:
            call.sleep(60)
        except Stopped:
            stopped.set()
            raise
        return 0

    release = threading.Event()

    def stubborn(call: Call) -> int:
        release.wait(60)
        return 0

    pool = InProcessExecutor(2, programs={"polite": polite, "stubborn": stubborn}, grace=0.2)
    started = time.monotonic()
    pool.submit(JobSpec("p", ("polite",), timeout=0.2))
    pool.submit(JobSpec("s", ("stubborn",), timeout=0.2))
    results = {r.key: r for r in pool.results()}
    elapsed = time.monotonic() - started
    release.set()
    pool.close()
    assert stopped.is_set()
    assert results["p"].timed_out and results["p"].signal == signal.SIGTERM
    assert results["p"].exit_code is None and not results["p"].ok
    assert results["s"].timed_out and results["s"].signal == signal.SIGKILL
    assert elapsed < 5, elapsed


def test_cancel_all_stops_running_jobs_and_drops_queued_ones() -> None:
    started = threading.Event()

    def waits(call: Call) -> int:
        started.set()
        call.sleep(60)
        return 0

    pool = InProcessExecutor(1, programs={"waits": waits})
    pool.submit(JobSpec("running", ("waits",)))
    pool.submit(JobSpec("queued", ("waits",)))
    assert pool.wait(0) == []
    assert started.wait(10)
    results = {r.key: r for r in pool.cancel_all(grace=5)}
    assert results["running"].cancelled and results["running"].signal == signal.SIGTERM
    assert results["queued"].cancelled and results["queued"].error == "cancelled before it started"
    assert pool.outstanding == 0 and pool.cancel_all() == []
    pool.close()
    with pytest.raises(Exception, match="closed"):
        pool.submit(JobSpec("late", ("waits",)))


def test_the_global_registry_names_programs_for_every_executor() -> None:
    register("hello-test", lambda call: print("hi", *call.argv[1:], file=call.stdout) or 0)
    try:
        with InProcessExecutor(1) as pool:
            pool.submit(JobSpec("h", ("hello-test", "there"), capture_stdout=True))
            [result] = list(pool.results())
    finally:
        unregister("hello-test")
    assert result.stdout == b"hi there\n"
    with InProcessExecutor(1) as pool:
        pool.submit(JobSpec("h", ("hello-test",)))
        [gone] = list(pool.results())
    assert gone.exit_code == 127


def test_hurry_gives_up_on_a_job_that_ignores_the_stop_at_once() -> None:
    release = threading.Event()

    def stubborn(call: Call) -> int:
        release.wait(60)
        return 0

    pool = InProcessExecutor(1, programs={"stubborn": stubborn})
    pool.submit(JobSpec("s", ("stubborn",)))
    assert pool.wait(0) == []
    # A second Ctrl-C arrives while cancel_all waits out a 60 s grace.
    threading.Timer(0.2, pool.hurry).start()
    started = time.monotonic()
    [result] = pool.cancel_all(grace=60)
    release.set()
    assert time.monotonic() - started < 10
    assert result.cancelled and result.signal == signal.SIGKILL
