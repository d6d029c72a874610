"""The same command lines through GNU parallel and `herd map`, outputs compared.

Each case is GNU parallel's options, then the command and its sources: GNU parallel runs
`parallel OPTIONS COMMAND...`, herd runs `herd map OPTIONS -- COMMAND...` (and, for the
cases marked so, GNU parallel's own grammar without `--`). Output is compared byte for
byte when it is ordered (-k, or one job), as sorted lines otherwise. `show` prints each
of its arguments in brackets, so argument boundaries are compared too, not only text.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
GNU_PARALLEL = Path("/usr/bin/parallel")

pytestmark = pytest.mark.skipif(
    not GNU_PARALLEL.exists(),
    reason="GNU parallel is not installed at /usr/bin/parallel (apt-get install parallel; "
    ".ci/run installs it): these tests compare herd map with GNU parallel",
)

EDGE_PATHS = [
    "a",
    "a.b",
    "a.tar.gz",
    ".bashrc",
    "dir/.bashrc",
    "a.b/c",
    "a/b/",
    "/",
    "/a",
    "a//b",
    "./x",
    ".",
    "a/b.c.d",
    "sp ace/f.x",
    "x.",
]


@dataclass(frozen=True)
class Case:
    name: str
    options: tuple[str, ...]
    command: tuple[str, ...]
    stdin: str | None = None
    ordered: bool = True
    dashless: bool = False
    """Also run `herd map OPTIONS COMMAND...` (no `--`), as GNU parallel's grammar."""
    files: dict[str, str] = field(default_factory=dict)
    fails: bool = False


def case(name: str, options: str | list[str], *command: str, **kw: object) -> Case:
    opts = tuple(options.split()) if isinstance(options, str) else tuple(options)
    return Case(name, opts, command, **kw)  # type: ignore[arg-type]


FILES = {
    "abc-file": "A\nB\nC\n",
    "def-file": "D\nE\nF\n",
    "tsv-file.tsv": "f1\tf2\nA\tB\nC\tD\n",
    "lines": "one\n\nthree\n",
    "csv": "a,b\nc\n",
}

CASES = [
    # input sources
    case("args", "-k", "echo", ":::", "a", "b", "c", dashless=True),
    case("product_two_sources", "-k", "echo", ":::", "a", "b", ":::", "1", "2", dashless=True),
    case("product_three_sources", "-k", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x", "y"),
    case("linked_sources", "-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2", "3"),
    case("linked_shorter_cut", "-k", "echo", ":::", "A", "B", "C", "D", "E", ":::+", "F", "G"),
    case("link_option_repeats_shorter", "-k --link", "echo", ":::", "A", "B", "C", "D", "E", ":::", "F", "G"),
    case("file_source", "-k", "echo", "::::", "abc-file", files=FILES),
    case("two_file_sources", "-k", "echo", "::::", "abc-file", "def-file", files=FILES),
    case("args_then_linked_file", "-k", "echo", ":::", "A", "B", "C", "::::+", "def-file", files=FILES),
    case(
        "tutorial_mixed_linked",
        "-k",
        "echo",
        "::::",
        "abc-file",
        ":::+",
        "G",
        "H",
        "I",
        "::::",
        "def-file",
        files=FILES,
    ),
    case("arg_file_option", "-k -a abc-file -a def-file", "echo", files=FILES),
    case("stdin_default", "-k", "echo", stdin="a\nb\nc\n", dashless=True),
    case("stdin_empty_is_nothing_to_do", "-k", "echo", stdin=""),
    case("file_empty_is_nothing_to_do", "-k", "echo", "::::", "empty", files={"empty": ""}),
    case("stdin_keeps_empty_lines", "-k", "show", "x{}", stdin="a\n\nb\n"),
    case("stdin_last_line_without_newline", "-k", "echo", stdin="a\nb"),
    case("file_dash_is_stdin", "-k", "echo", "::::", "-", stdin="s1\ns2\n"),
    case("null_separated", "-k -0", "show", stdin="a\nb\0c d\0"),
    case("colsep", "-k --colsep ,", "show", "{2}", "{1}", "::::", "csv", files=FILES),
    case(
        "colsep_tab_tutorial",
        ["-k", "--colsep", "\t"],
        "echo",
        "1={1}",
        "2={2}",
        "::::",
        "tsv-file.tsv",
        files=FILES,
    ),
    case("colsep_on_args", "-k --colsep :", "echo", "{3}{2}{1}", ":::", "a:b:c", "d:e"),
    # replacement strings (GNU parallel's edge cases: no extension, dotfiles, slashes, `.`)
    case("rs_item", "-k", "show", "{}", ":::", *EDGE_PATHS),
    case("rs_no_extension", "-k", "show", "{.}", ":::", *EDGE_PATHS),
    case("rs_basename", "-k", "show", "{/}", ":::", *EDGE_PATHS),
    case("rs_dirname", "-k", "show", "{//}", ":::", *EDGE_PATHS),
    case("rs_basename_no_extension", "-k", "show", "{/.}", ":::", *EDGE_PATHS),
    case("rs_inside_argument", "-k", "show", "out/{/.}.png", "--in={}", ":::", "d/a.jpg", "b"),
    case("rs_seq", "-k", "echo", "{#}", ":::", "A", "B", "C"),
    case("rs_slot_one_worker", "-k -j1", "echo", "{%}", "{}", ":::", "A", "B", "C"),
    case("rs_positional_tutorial", "-k", "echo", "{1}", "and", "{2}", ":::", "A", "B", ":::", "C", "D"),
    case(
        "rs_positional_negative",
        "-k",
        "echo",
        "1={1}",
        "2={2}",
        "3={3}",
        "-1={-1}",
        "-2={-2}",
        "-3={-3}",
        ":::",
        "A",
        "B",
        ":::",
        "C",
        "D",
        ":::",
        "E",
        "F",
    ),
    case(
        "rs_positional_paths_tutorial",
        "-k",
        "echo",
        "/={1/}",
        "//={1//}",
        "/.={1/.}",
        ".={1.}",
        ":::",
        "A/B.C",
        "D/E.F",
    ),
    case("rs_positional_past_last", "-k", "show", "{1}", "{3}", "x{3}", ":::", "a", "b", ":::", "c"),
    case("rs_all_values_inside_argument", "-k", "show", "x{}y", ":::", "a", "b", ":::", "c"),
    case("rs_none_appends_all_values", "-k", "show", "pre", ":::", "a", "b c", ":::", "d"),
    case("rs_value_with_spaces", "-k", "show", "{}", "x{.}y", ":::", "a b.c", "  "),
    case("tutorial_path_strings", "-k", "echo", "{}", "{.}", "{/}", "{//}", "{/.}", ":::", "A/B.C"),
    # -n: several items per job
    case("n2_appended", "-k -n2", "show", ":::", "a", "b", "c", "d", "e"),
    case("n2_whole_placeholder", "-k -n2", "show", "{}", ":::", "a", "b", "c"),
    case("n2_positional", "-k -n2", "show", "{2}", "{1}", ":::", "a", "b", "c", "d"),
    case(
        "n2_inside_argument_and_paths", "-k -n2", "show", "x{}y", "{.}", "{/}", ":::", "d/a.x", "b.y", "c.z"
    ),
    case("n3_seq", "-k -n3", "show", "{#}", "{}", ":::", "1", "2", "3", "4", "5", "6", "7"),
    # a command as one string: a shell command line, values quoted
    case("shell_string_pipe", "-k", "echo {} | tr a-z A-Z", ":::", "abc", "def"),
    case("shell_string_quoting", "-k", "printf '[%s]\\n' {} {.}", ":::", "it's", "a  b.c", "$HOME", "*"),
    case("shell_string_sequence", "-k -j4", "sleep 0.{}; echo {}", ":::", "3", "1", "2"),
    # output shaping
    case("keep_order_reverse_finish", "-k -j3", "sleep 0.{}; echo {}", ":::", "4", "2", "0"),
    case("unordered_lines", "-j3", "echo", ":::", "a", "b", "c", "d", ordered=False),
    case("tag", "-k --tag", "echo", ":::", "a", "b"),
    case("tag_two_sources", "-k --tag", "echo", ":::", "a", "b", ":::", "1", "2"),
    case("tag_multiline_output", "-k --tag", "printf 'x\\ny\\n'; echo {}", ":::", "a", "b"),
    case("tagstring", "-k --tagstring {2}-x", "echo", ":::", "a", "b", ":::", "1", "2"),
    case("tagstring_seq", "-k --tagstring job{#}", "echo", ":::", "a", "b"),
    # -j forms
    case("jobs_percent", "-k -j 50%", "echo", ":::", "a", "b", "c"),
    case("jobs_plus", "-k -j +1", "echo", ":::", "a", "b", "c"),
    case("jobs_minus", "-k -j -1", "echo", ":::", "a", "b", "c"),
    case("jobs_zero", "-k -j0", "echo", ":::", "a", "b", "c"),
    # flags that change when, not what
    case("delay", "-k --delay 0.1", "echo", ":::", "a", "b", "c"),
    case("memfree", "-k --memfree 1M", "echo", ":::", "a", "b"),
    case("load", "-k --load 1000", "echo", ":::", "a", "b"),
    case("load_percent", "-k --load 10000%", "echo", ":::", "a", "b"),
    case("eta", "-k --eta", "echo", ":::", "a", "b"),
    case("progress", "-k --progress", "echo", ":::", "a", "b"),
    case("bar", "-k --bar", "echo", ":::", "a", "b"),
    case("timeout", "-k --timeout 1", "sleep {}; echo {}", ":::", "0", "3", fails=True),
    case(
        "timeout_percent",
        "-k -j1 --timeout 300%",
        "sleep {}; echo {}",
        ":::",
        "0.1",
        "0.1",
        "0.1",
        "0.1",
        "3",
        fails=True,
    ),
    case("failing_jobs", "-k", "echo {}; exit {}", ":::", "0", "1", "0", fails=True),
]


def _show(tmp_path: Path) -> Path:
    show = tmp_path / "bin" / "show"
    show.parent.mkdir(exist_ok=True)
    show.write_text(f"#!{sys.executable}\nimport sys\nprint(''.join(f'[{{a}}]' for a in sys.argv[1:]))\n")
    show.chmod(0o755)
    return show.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HERD_DB"}
    env.update(
        PATH=f"{_show(tmp_path)}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(SRC),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PARALLEL_HOME=str(tmp_path / ".parallel"),
        HERD_PROGRESS="plain",
    )
    return env


def _run(argv: list[str], tmp_path: Path, stdin: str | None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        input=stdin.encode() if stdin is not None else None,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=120,
    )


def gnu(
    tmp_path: Path, options: tuple[str, ...], command: tuple[str, ...], stdin: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    return _run([str(GNU_PARALLEL), "--will-cite", *options, *command], tmp_path, stdin)


def herd(
    tmp_path: Path,
    options: tuple[str, ...],
    command: tuple[str, ...],
    stdin: str | None = None,
    dashes: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    return _run(
        [sys.executable, "-m", "herd", "map", *options, *(["--"] if dashes else []), *command],
        tmp_path,
        stdin,
    )


def _comparable(out: bytes, ordered: bool) -> bytes | list[bytes]:
    return out if ordered else sorted(out.splitlines())


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_same_output_as_gnu_parallel(tmp_path: Path, c: Case) -> None:
    for name, text in c.files.items():
        (tmp_path / name).write_text(text)
    expected = gnu(tmp_path, c.options, c.command, c.stdin)
    assert (expected.returncode != 0) == c.fails, expected.stderr.decode()
    variants = [True, False] if c.dashless else [True]
    for dashes in variants:
        got = herd(tmp_path, c.options, c.command, c.stdin, dashes)
        assert (got.returncode != 0) == c.fails, got.stderr.decode()
        assert _comparable(got.stdout, c.ordered) == _comparable(expected.stdout, c.ordered), (
            f"herd map {'--' if dashes else '(no --)'}: {got.stderr.decode()}"
        )


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "sources",
    [
        (":::", "a", "b/c", "x\\y"),
        (":::", "a", "b", ":::", "1", "2"),
    ],
    ids=["one_source", "two_sources"],
)
def test_results_directory_as_gnu_parallel(tmp_path: Path, sources: tuple[str, ...]) -> None:
    command = ("echo {}; echo err-{} >&2", *sources)
    gnu(tmp_path, ("--results", "gnu"), command)
    done = herd(tmp_path, ("--results", "ours"), command)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""  # saved instead of printed, as GNU parallel
    gnu_tree, ours = _tree(tmp_path / "gnu"), _tree(tmp_path / "ours")
    assert sorted(ours) == sorted(gnu_tree)
    assert {k: v for k, v in ours.items() if not k.endswith("seq")} == {
        k: v for k, v in gnu_tree.items() if not k.endswith("seq")
    }
    assert sorted(v for k, v in ours.items() if k.endswith("seq")) == sorted(
        v for k, v in gnu_tree.items() if k.endswith("seq")
    )


def test_delay_spaces_the_starts(tmp_path: Path) -> None:
    started = time.monotonic()
    done = herd(tmp_path, ("-j4", "--delay", "0.3"), ("echo", ":::", "a", "b", "c"))
    assert done.returncode == 0, done.stderr.decode()
    assert time.monotonic() - started >= 0.6


def test_retries_default_is_none_as_gnu_parallel(tmp_path: Path) -> None:
    """GNU parallel runs a failed job once; so does herd map unless --retries is given."""
    command = ("echo run >> ran.txt; exit 1", ":::", "a")
    gnu(tmp_path, (), command)
    assert (tmp_path / "ran.txt").read_text() == "run\n"
    (tmp_path / "ran.txt").unlink()
    done = herd(tmp_path, (), command)
    assert done.returncode == 1
    assert (tmp_path / "ran.txt").read_text() == "run\n"
    assert b"(retries: 0)" in done.stderr
