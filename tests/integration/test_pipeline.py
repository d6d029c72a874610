"""`herd pipeline FILE.toml` through the real CLI: streaming stages, failures, stdout items."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

from _cli import run_herd

SRC = Path(__file__).resolve().parents[2] / "src"


def run_pipeline(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "p.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "HERD_DB"}
    env.update(PYTHONPATH=str(SRC), XDG_STATE_HOME=str(tmp_path / "state"))
    return run_herd(["pipeline", "p.toml"], cwd=tmp_path, env=env, timeout=120)


STAGE = (
    'sh -c \'echo "{name} $1 start $(date +%s.%N)" >> log; sleep 0.2; '
    'test "$1" != "{bad}" || exit 1; echo "{name} $1 end $(date +%s.%N)" >> log\' _'
)


def test_three_stages_stream_and_a_failing_item_stops_at_its_stage(tmp_path: Path) -> None:
    items = [f"i{n}" for n in range(6)]
    done = run_pipeline(
        tmp_path,
        f"""
items = {json.dumps(items)}
[[stage]]
name = "fetch"
cmd = '''{STAGE.format(name="fetch", bad="none")}'''
workers = 2
[[stage]]
name = "parse"
cmd = '''{STAGE.format(name="parse", bad="i3")}'''
workers = 2
[[stage]]
name = "store"
cmd = '''{STAGE.format(name="store", bad="none")}'''
workers = 2
""",
    )
    assert done.returncode == 1, done.stderr
    assert "failed at parse: i3 after 2 attempts" in done.stderr
    events = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    ends = {(s, i) for s, i, what, _ in events if what == "end"}
    assert {i for s, i in ends if s == "store"} == set(items) - {"i3"}
    assert ("parse", "i3") not in ends and not any(i == "i3" for s, i, *_ in events if s == "store")
    # Streaming: parse started before fetch had finished every item.
    first_parse = min(float(t) for s, _, what, t in events if s == "parse" and what == "start")
    last_fetch = max(float(t) for s, _, what, t in events if s == "fetch" and what == "end")
    assert first_parse < last_fetch
    conn = sqlite3.connect(tmp_path / "state" / "herd" / "herd.db")
    kind, state, summary = conn.execute("SELECT kind, state, summary FROM runs").fetchone()
    assert (kind, state) == ("pipeline", "partial")
    stages = json.loads(summary)["stages"]
    assert stages["parse"]["failed"] == 1 and stages["store"]["succeeded"] == 5


def test_items_from_stdout_feed_the_next_stage(tmp_path: Path) -> None:
    done = run_pipeline(
        tmp_path,
        """
items = ["a", "b"]
[[stage]]
name = "split"
cmd = ["sh", "-c", "echo $1-1; echo $1-2", "_"]
workers = 2
[[stage]]
name = "shout"
cmd = "echo got"
items_from = "stdout"
batch_size = 2
workers = 1
""",
    )
    assert done.returncode == 0, done.stderr
    got = sorted(w for line in done.stdout.splitlines() for w in line.split()[1:])
    assert got == ["a-1", "a-2", "b-1", "b-2"]
    assert all(len(line.split()) == 3 for line in done.stdout.splitlines())  # batches of two


def test_bad_pipeline_file_is_one_clear_error(tmp_path: Path) -> None:
    done = run_pipeline(tmp_path, '[[stage]]\nname = "x"\ncmd = 3\n')
    assert done.returncode == 2
    assert "cmd must be a string or a list" in done.stderr and "Traceback" not in done.stderr
