"""Seeing a run as it goes: the live display on a real pseudo-terminal, the plain lines
under a pipe, `herd status --watch` from another process, and rich kept out of `herd ready`."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _queue_helpers import herd, herd_env, herd_json
from _report_helpers import demo_repo, run_args, task_repo
from rich.console import Console

from herd.engine import events as ev
from herd.engine.states import Outcome, TaskState
from herd.views.live import LiveDisplay

SLOW = {"FAKE_STEPS": "4", "FAKE_SLEEP": "0.3"}


def on_terminal(
    argv: list[str], cwd: Path, env: dict[str, str], *, stream: str = "stderr", timeout: float = 120
) -> tuple[int, str]:
    """Run argv with `stream` on a pseudo-terminal (160x40); return (exit code, what it drew)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    out = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    out[stream] = slave
    proc = subprocess.Popen(
        argv, cwd=cwd, env={**env, "TERM": "xterm-256color"}, stdin=subprocess.DEVNULL, **out
    )  # type: ignore[call-overload]
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: every writer has gone
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
        pytest.fail(f"{argv} did not finish in {timeout}s")
    code = proc.wait(timeout=10)
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_run_on_a_terminal_draws_the_live_display(tmp_path: Path) -> None:
    repo, ids, worker = task_repo(tmp_path)
    code, drawn = on_terminal(
        [sys.executable, "-m", "herd", *run_args(worker, "-j", "3")], repo, herd_env(**SLOW)
    )
    assert code == 1  # three tasks fail on purpose
    text = plain(drawn)
    assert "slot" in text and "last output" in text
    assert re.search(r"w[123]\s+app-\w+\s+1\s+\d+\.\ds\s+step \d/4: working on app-", text)
    assert re.search(r"\d/8\s+\d+ done · \d+ failed · \d+ running · \d+ queued", text)
    assert "ETA" in text and "working" in text
    assert "5 done · 3 failed · 0 running · 0 queued" in text  # the last frame
    assert "task " + ids[2] + " failed: exited with code 3" in text  # failures scroll above
    assert drawn.rstrip().find("\x1b[?25h") != -1  # the cursor came back: stopped cleanly


def test_plain_progress_under_a_pipe(tmp_path: Path) -> None:
    repo, ids, worker = task_repo(tmp_path)
    proc = herd(*run_args(worker, "-j", "2"), cwd=repo, check=1)
    lines = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr and lines
    assert all(re.match(r"herd: \d\d:\d\d:\d\d \S", line) for line in lines), lines
    assert any(f"start  {ids[0]} (attempt 1)" in line for line in lines)
    assert any(f"task {ids[6]} failed: exited with code 1" in line for line in lines)
    assert re.search(r"phase: testing \(5 commits\)", proc.stderr)
    assert lines[-1].endswith("partial (exit 1)")


def test_status_watch_follows_a_run_from_another_process(tmp_path: Path) -> None:
    repo, _, worker = task_repo(tmp_path)
    env = herd_env(**SLOW)
    with (tmp_path / "run.log").open("w") as log:
        running = subprocess.Popen(
            [sys.executable, "-m", "herd", *run_args(worker, "-j", "2")],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while not herd_json("runs", cwd=repo) and time.monotonic() < deadline:
            time.sleep(0.1)
        run_id = herd_json("runs", cwd=repo)[0]["id"]
        code, drawn = on_terminal(
            [sys.executable, "-m", "herd", "status", "--watch"], repo, env, stream="stdout"
        )
    finally:
        assert running.wait(timeout=120) == 1
    assert code == 0
    text = plain(drawn)
    assert f"herd run {run_id}" in text
    assert re.search(r"w[12]\s+app-\w+\s+1\s+\d+\.\ds", text)  # workers seen while busy
    assert "5 done · 3 failed · 0 running · 0 queued" in text and "partial" in text


def test_status_watch_on_a_finished_run_draws_it_once(tmp_path: Path) -> None:
    repo = demo_repo(tmp_path)
    code, drawn = on_terminal(
        [sys.executable, "-m", "herd", "status", "--watch"], repo, herd_env(), stream="stdout", timeout=30
    )
    assert code == 0
    assert "11 done · 1 failed · 0 running · 0 queued" in plain(drawn)


def test_display_replays_a_real_event_stream_and_stops_at_run_end(tmp_path: Path) -> None:
    repo = demo_repo(tmp_path)
    [events_file] = (repo / ".herd" / "runs").glob("*/events.jsonl")
    events = [ev.Event.from_json(json.loads(line)) for line in events_file.read_text().splitlines()]
    screen = io.StringIO()
    display = LiveDisplay(Console(file=screen, force_terminal=True, width=140))
    phases = []
    for event in events:
        display(event)
        phases.append(display.phase)
        if isinstance(event, ev.AttemptStart):
            assert display.live.is_started
    assert not display.live.is_started  # run_end stopped it
    assert {"working", "stacking", "testing", "bisecting", "pushing"} <= set(phases)
    assert display.counts() == {
        "total": 12,
        "done": 11,
        "failed": 1,
        "running": 0,
        "queued": 0,
        "deferred": 0,
    }
    assert "bisect" in plain(screen.getvalue())


def test_display_is_stopped_when_the_run_raises() -> None:
    screen = io.StringIO()
    with (
        pytest.raises(KeyboardInterrupt),
        LiveDisplay(Console(file=screen, force_terminal=True, width=100)) as display,
    ):
        display(ev.RunStart(run="r", tasks=2, waves=1, workers=1, base="", ts=time.time()))
        assert display.live.is_started
        raise KeyboardInterrupt
    assert not display.live.is_started
    assert "\x1b[?25h" in screen.getvalue()


def test_herd_ready_does_not_import_rich(tmp_path: Path) -> None:
    herd("init", "--prefix", "r", cwd=tmp_path)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "herd", "ready"],
        cwd=tmp_path,
        env=herd_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()]
    assert "click" in imported
    assert not [m for m in imported if m == "rich" or m.startswith("rich.")]


def test_map_on_a_terminal_draws_the_same_live_display(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(
        "import sys, time\ntime.sleep(0.3)\nn = int(sys.argv[1])\n"
        "if n == 5:\n    print('cannot parse line 12', file=sys.stderr)\n"
        "    sys.exit(7)\nprint('done', n)\n"
    )
    env = {**herd_env(), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("HERD_DB", None)
    code, drawn = on_terminal(
        [
            sys.executable,
            "-m",
            "herd",
            "map",
            *map(str, range(1, 13)),
            "-j",
            "3",
            "--retries",
            "0",
            "--",
            sys.executable,
            str(job),
        ],
        tmp_path,
        env,
    )
    assert code == 1
    text = plain(drawn)
    assert re.search(r"#\d+\s+\d+\s+1\s+\d+\.\ds", text)  # a running job's row
    assert "11 done · 1 failed · 0 running · 0 queued" in text
    assert "failed #5 5 after 1 attempt: exited with code 7" in text and "| cannot parse line 12" in text
    assert "their stderr is in" in text and "stderr.log" in text


def test_first_frame_has_the_totals_and_the_eta_counts_down() -> None:
    screen = io.StringIO()
    now = [1000.0]
    display = LiveDisplay(Console(file=screen, force_terminal=True, width=140), clock=lambda: now[0])
    display(ev.RunStart(run="r", tasks=4, waves=1, workers=2, base="", ts=1000.0))
    assert "0/4" in plain(screen.getvalue())  # drawn at once, not the 0/0 made up front
    display(ev.AttemptStart(run="r", task="a", attempt=1, worker="w1", ts=1000.0))
    display(
        ev.AttemptEnd(
            run="r",
            task="a",
            attempt=1,
            ts=1010.0,
            duration=10.0,
            outcome=Outcome.OK,
            exit_code=0,
            reason="",
            worker="w1",
        )
    )
    now[0] = 1010.0
    display(ev.TaskEnd(run="r", task="a", state=TaskState.SUCCEEDED, ts=1010.0))
    assert display.eta() == 30.0  # 1 task in 10 s, 3 to go
    now[0] = 1015.0
    assert display.eta() == 25.0  # waiting: it counts down (it used to grow)
    display(ev.Phase(run="r", phase="stacking", detail="1 commit", ts=1015.0))
    assert "phase: stacking (1 commit)" in plain(screen.getvalue())
    display.close()


def test_a_big_import_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    herd("init", "--prefix", "big", cwd=tmp_path)
    lines = [
        json.dumps(
            {
                "id": f"big-{n:05d}",
                "title": f"Issue {n}",
                "status": "open",
                "priority": 2,
                "issue_type": "task",
            }
        )
        for n in range(12_000)
    ]
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    code, drawn = on_terminal([sys.executable, "-m", "herd", "import", "big.jsonl"], tmp_path, herd_env())
    assert code == 0
    assert "herd: reading big.jsonl: 5,000 lines" in drawn
    assert "herd: writing 12,000 issues" in drawn
    under_a_pipe = herd("import", "big.jsonl", cwd=tmp_path)
    assert under_a_pipe.stderr == ""  # progress is for people; logs stay clean
    assert "read 12000 issues from big.jsonl (0 new, 0 updated, 12000 unchanged)" in under_a_pipe.stdout


def test_messages_count_in_words() -> None:
    from herd.units import format_size
    from herd.views.progress import describe

    line = describe(ev.RunStart(run="r", tasks=1, waves=1, workers=1, base="abc"))
    assert line == "run r: 1 task in 1 wave, 1 worker (base abc)"
    assert format_size(104857600) == "100 MiB"
    assert (
        describe(ev.TestRun(purpose="stack", exit_code=0, commits=1, duration=1.0))
        == "test [stack] on 1 commit passed in 1.0s"
    )
    from herd.views.report import AttemptEnding, exit_labels

    timed_out: AttemptEnding = {"exit_code": None, "signal": 15, "outcome": "timeout"}
    assert (
        exit_labels([timed_out, timed_out, {"exit_code": 0, "signal": None, "outcome": "ok"}])
        == "timeout,timeout,0"
    )
