"""A worker's log keeps only its last N MiB, and says so: an agent printing in a loop cannot
fill the disk."""

from __future__ import annotations

import sys
from pathlib import Path

from _run_helpers import Project

from herd.engine.executor import JobSpec, LocalExecutor

CHATTY = (
    "import sys\n"
    "for n in range(40000):\n"
    "    sys.stdout.write(f'line {n:06d} ' + 'x' * 64 + '\\n')\n"
    "print('the last line', file=sys.stderr)\n"
)


def test_a_capped_log_keeps_the_end_and_says_what_was_dropped(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with LocalExecutor(1) as ex:
        ex.submit(JobSpec("chatty", (sys.executable, "-c", CHATTY), log_path=log, log_limit=2**20))
        [result] = list(ex.results())
    assert result.exit_code == 0
    text = log.read_text()
    first, rest = text.split("\n", 1)
    assert first.startswith("[herd: this log keeps the last 1 MiB of output;"), first
    assert "earlier bytes were dropped" in first
    assert len(rest) <= 2**20
    assert rest.endswith("line 039999 " + "x" * 64 + "\nthe last line\n")
    assert "the last line" in result.tail
    assert not list(tmp_path.glob("*.older"))


def test_a_small_log_is_left_whole(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with LocalExecutor(1) as ex:
        ex.submit(JobSpec("quiet", (sys.executable, "-c", "print('hello')"), log_path=log, log_limit=2**20))
        list(ex.results())
    assert log.read_text() == "hello\n"


def test_a_worker_log_is_capped_in_a_run(tmp_path: Path) -> None:
    p = Project(tmp_path)
    agent = tmp_path / "chatty_agent.py"
    agent.write_text(CHATTY + "open('src/a.py', 'a').write('done\\n')\n")
    task = p.create("chatty", scope=["src/a.py"])
    p.env["HERD_WORKER_LOG_LIMIT"] = "1M"
    p.herd("run", task, "--cmd", f"{sys.executable} {agent}")
    [log] = (p.repo / ".herd" / "runs").glob("*/*/attempt-1.log")
    assert log.stat().st_size < 2**20 + 200
    assert log.read_text().startswith("[herd: this log keeps the last 1 MiB")
