"""`herd map` in GNU parallel's grammar runs without click (cli/map_fast.py) and answers
exactly as the click command does: same stdout, stderr and exit code, for real jobs run by
real `python -m herd` processes. What the fast path does not read is left to click."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import in_process
from _queue_helpers import herd_env

from herd.cli.map_fast import parse

CLICK_ONLY = "import sys; from herd.cli.app import run; run(sys.argv[1:])"
_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
_VARYING = re.compile(r'(in \d+\.\d+s|"(ts|elapsed|started)": [0-9.]+)')


def _herd(
    args: list[str], cwd: Path, state: Path, stdin: str | None, *, click: bool = False, real: bool = False
) -> subprocess.CompletedProcess[str]:
    """`herd ARGS` through its entry point (the fast path first) or click's own; in this
    process, or as a real one (`real`: where the fast path ends the process itself)."""
    env = herd_env(XDG_STATE_HOME=str(state))
    if not real:
        from herd.cli.app import run

        return in_process(args, cwd=cwd, env=env, input=stdin or "", entry=run if click else None)
    argv = [sys.executable, "-c", CLICK_ONLY] if click else [sys.executable, "-m", "herd"]
    return subprocess.run(
        [*argv, *args], cwd=cwd, env=env, input=stdin or "", capture_output=True, text=True, timeout=60
    )


def _normal(text: str, state: Path) -> str:
    """Without what differs between two runs: run ids, times, where each keeps its state."""
    lines = [line for line in text.splitlines() if '"event": "progress"' not in line]
    text = "\n".join(lines).replace(str(state), "<state>").replace(state.name + "/", "<state>/")
    return _VARYING.sub("<t>", _RUN_ID.sub("<run>", text))


CASES: list[tuple[list[str], str | None]] = [
    (["map", "-j2", "-k", "echo", ":::", "a", "b", "c"], None),
    (["map", "--jobs=2", "--keep-order", "echo", "{}", "x", ":::", "a", "b"], None),
    (["map", "-k", "-n", "2", "echo", ":::", "a", "b", "c"], None),
    (["map", "-k", "--max-args=2", "--link", "echo", ":::", "a", "b", ":::", "1", "2"], None),
    (["map", "false", ":::", "a"], None),
    (["map", "--retries", "1", "sh", "-c", "echo try >&2; exit 3", ":::", "a"], None),
    (["map", "-j1", "--halt", "now,fail=1", "sh", "-c", "exit 4", ":::", "a", "b"], None),
    (["map", "--tag", "-k", "--timeout", "30s", "echo", ":::", "a", "b"], None),
    (["map", "--json", "echo", ":::", "a"], None),
    (["map", "-k", "echo", "from stdin:"], "a\nb\n"),
    (["map", "-0", "-k", "echo"], "a b\0c\0"),
    (["map", "-k", "-a", "items.txt", "echo"], None),
    (["map", "-j", "0", "-k", "echo", ":::", "a", "b"], None),
    (["map", "-n", "zero", "echo", ":::", "a"], None),
    (["map", "--json", "-n", "zero", "echo", ":::", "a"], None),
    (["map", "-j", "2"], None),
    (["map", "echo", "{nope}", ":::", "a"], None),
    (["map", "no-such-program-here", ":::", "a"], None),
    (["map", "-k", "echo"], ""),
    # herd's own form: options, `--`, the command (what bench_map runs)
    (["map", "--from", "-", "-j", "4", "-k", "--", "echo", "x"], "a\nb\n"),
    (["map", "-k", "--from=items.txt", "--", "echo", "--", "{}"], None),
    (["map", "-k", "--", "echo", ":::", "a", "b"], None),
    (["map", "--json", "--from", "-", "--", "false"], "a\n"),
    (["map", "--from", "items.txt", "-k", "echo"], None),
]


REAL = {
    "map -j2 -k echo ::: a b c",
    "map false ::: a",
    "map --json echo ::: a",
    "map -n zero echo ::: a",
    "map --from - -j 4 -k -- echo x",
}


@pytest.mark.parametrize(("args", "stdin"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_the_fast_path_answers_as_click_does(args: list[str], stdin: str | None, tmp_path: Path) -> None:
    assert parse(args) is not None, "this case should take the fast path"
    (tmp_path / "items.txt").write_text("one\ntwo\n")
    real = " ".join(args) in REAL  # a few as real processes too: the fast path exits by itself
    fast_state, click_state = tmp_path / "fast", tmp_path / "click"
    fast = _herd(args, tmp_path, fast_state, stdin, real=real)
    slow = _herd(args, tmp_path, click_state, stdin, click=True, real=real)
    assert (fast.returncode, _normal(fast.stdout, fast_state), _normal(fast.stderr, fast_state)) == (
        slow.returncode,
        _normal(slow.stdout, click_state),
        _normal(slow.stderr, click_state),
    )
    if "--json" in args and fast.returncode == 0:
        assert json.loads(fast.stdout.splitlines()[-1])["event"] == "run_end"


@pytest.mark.parametrize(
    "args",
    [
        ["map", "--retries", "x", "true", ":::", "a"],  # click names the bad value
        ["map", "-j2", "-j3", "true", ":::", "a"],  # twice: the last wins in click
        ["map", "--eta", "true", ":::", "a"],
        ["map", "--help"],
        ["map", "a", "b", "--", "echo"],  # items before `--`
        ["map", "-k", "--"],  # no command
        ["map", "-j", "--", "echo"],  # -j without its value
        ["map", "-kj2", "true", ":::", "a"],  # grouped short flags
        ["map", "--json=1", "true", ":::", "a"],
        ["map", "-j"],
        ["run", "-j2"],
    ],
)
def test_what_the_fast_path_does_not_read_goes_to_click(args: list[str]) -> None:
    assert parse(args) is None


def test_options_stop_at_the_command_as_in_gnu_parallel() -> None:
    fields = parse(["map", "-j4", "-a", "f1", "--arg-file=f2", "grep", "-k", "x", ":::", "-j"])
    assert fields is not None
    assert fields["jobs"] == "4"
    assert fields["arg_files"] == ("f1", "f2")
    assert fields["words"] == ["grep", "-k", "x", ":::", "-j"]
    assert "keep_order" not in fields


@pytest.mark.parametrize("args", [["map", "true", ":::", "a"], ["map", "-j4", "--", "true", ":::", "a"]])
def test_a_map_imports_only_what_it_uses(args: list[str], tmp_path: Path) -> None:
    """A short map's cost is mostly its imports: no click, dataclasses, psutil or rich for
    `herd map CMD ::: ITEMS` (issue 16: import only what the command uses)."""
    code = (
        "import sys\n"
        "from herd.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = ('click', 'dataclasses', 'inspect', 'psutil', 'rich', 'shutil', 'socket')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=herd_env(XDG_STATE_HOME=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
