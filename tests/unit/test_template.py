"""Replacement strings, input sources and admission gates of `herd map`, without processes.
(The same rules against GNU parallel itself: tests/integration/test_parallel_compat.py.)"""

from __future__ import annotations

import io
import time

import pytest

from herd.cli.map_forms import workers_for
from herd.engine.executor.base import JobSpec
from herd.engine.policies import Attempt, Policies
from herd.engine.states import Outcome
from herd.errors import BadInput
from herd.items.admission import Delay, Load, RelativeTimeout, admission, load_limit
from herd.items.output import Results, Tagger
from herd.items.sources import Source, from_sources, records, split_command
from herd.items.template import (
    RECORD_SEP,
    Template,
    TextTemplate,
    basename,
    dirname,
    parse_argument,
    without_extension,
)

# (value, {.}, {/}, {//}) as GNU parallel 20221122 prints them.
PATHS = [
    ("a", "a", "a", "."),
    ("a.tar.gz", "a.tar", "a.tar.gz", "."),
    (".bashrc", "", ".bashrc", "."),
    ("dir/.bashrc", "dir/", ".bashrc", "dir"),
    ("a.b/c", "a.b/c", "c", "a.b"),
    ("a/b/", "a/b/", "", "a"),
    ("/", "/", "", "/"),
    ("/a", "/a", "a", "/"),
    ("a//b", "a//b", "b", "a"),
    ("//a", "//a", "a", "/"),
    (".", "", ".", "."),
    ("x.", "x", "x.", "."),
]


@pytest.mark.parametrize(("value", "noext", "base", "directory"), PATHS)
def test_path_forms_follow_gnu_parallel(value: str, noext: str, base: str, directory: str) -> None:
    assert without_extension(value) == noext
    assert basename(value) == base
    assert dirname(value) == directory


def test_values_are_appended_without_a_replacement_string() -> None:
    template = Template(["echo", "pre"])
    assert template.appending
    assert template.expand(["a", "b"]) == ("echo", "pre", "a", "b")


def test_replacement_strings_inside_arguments() -> None:
    template = Template(["convert", "{}", "out/{/.}.png", "{//}", "n{#}s{%}"])
    assert template.expand(["in/photo.jpg"], seq=7, slot=3) == (
        "convert",
        "in/photo.jpg",
        "out/photo.png",
        "in",
        "n7s3",
    )


def test_several_values_follow_the_shell_word_rules_of_gnu_parallel() -> None:
    template = Template(["show", "{}", "x{}y", "{.}", "{2}", "{-1}", "{3}", "z{3}"])
    # Whole `{}`: one argument each; inside an argument: the first value continues it,
    # the others start new ones; past the last value: empty, a lone one dropped.
    assert template.expand(["a.x", "b.y"]) == (
        "show",
        "a.x",
        "b.y",
        "xa.x",
        "b.yy",
        "a",
        "b",
        "b.y",
        "b.y",
        "z",
    )


def test_sources_and_columns_are_values() -> None:
    multi = Template(["echo", "{2}", "{1}"], multi=True)
    assert multi.expand([RECORD_SEP.join(["a", "b"])]) == ("echo", "b", "a")
    columns = Template(["echo", "{2}-{1}"], colsep=",")
    assert columns.expand(["a,b"]) == ("echo", "b-a")
    assert columns.expand(["c"]) == ("echo", "-c")


def test_one_string_with_spaces_is_a_shell_line_with_quoted_values() -> None:
    template = Template(["echo {} | tr a-z A-Z"])
    assert template.shell
    argv = template.expand(["it's $HOME"])
    assert argv[:2] == ("/bin/sh", "-c")
    assert argv[2] == "echo 'it'\"'\"'s $HOME' | tr a-z A-Z"
    assert Template(["gzip -9"]).expand(["a b"])[2] == "gzip -9 'a b'"


@pytest.mark.parametrize("arg", ["{foo}", "x{1x}", "{./}", "{##}", "{0}"])
def test_unknown_replacement_strings_are_errors(arg: str) -> None:
    with pytest.raises(BadInput, match="unknown replacement string"):
        Template(["echo", arg])


def test_perl_expressions_are_refused_and_other_braces_kept() -> None:
    with pytest.raises(BadInput, match="perl expression"):
        parse_argument("{= s:a:b: =}")
    assert Template(["awk", "{print $1}", "{a,b}", "{}"]).expand(["f"]) == ("awk", "{print $1}", "{a,b}", "f")


def test_template_is_compiled_once() -> None:
    template = Template(["cmd", "--in={}", "--out=out/{/.}.txt", "{#}"])
    steps = template.steps
    start = time.perf_counter()
    for seq in range(1, 20_001):
        template.expand([f"dir/file{seq}.csv"], seq)
    assert template.steps is steps
    assert time.perf_counter() - start < 2.0  # measured ~0.05 s: parsing per job would show


def test_tag_and_tagstring() -> None:
    template = Template(["echo"], multi=True)
    item = RECORD_SEP.join(["a", "1"])
    assert Tagger(template, None).tag([item], 1, 1) == b"a 1\t"
    assert Tagger(template, "{2}-x{#}").tag([item], 4, 1) == b"1-x4\t"
    assert Tagger.apply(b"t\t", b"x\ny\n") == b"t\tx\nt\ty\n"
    assert Tagger.apply(b"t\t", b"x\ny") == b"t\tx\nt\ty"
    with pytest.raises(BadInput, match="--tagstring"):
        TextTemplate("{nope}", template, "--tagstring")


def test_results_directory_quotes_as_gnu_parallel(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    results = Results(root, Template(["echo"], multi=True))
    where = results.directory([RECORD_SEP.join(["b/c", "x\\y"])])
    assert where == root / "1" / "b\\_c" / "2" / "x\\\\y"
    assert where.is_dir()


def test_command_and_sources_are_split_at_the_markers() -> None:
    command, sources = split_command(["echo", "{}", ":::", "a", "b", ":::+", "1", "::::", "f", "g"])
    assert command == ("echo", "{}")
    assert sources == [
        Source("args", ("a", "b")),
        Source("args", ("1",), linked=True),
        Source("file", ("f",)),
        Source("file", ("g",)),
    ]
    with pytest.raises(BadInput, match="needs arguments"):
        split_command(["echo", ":::"])


def test_product_order_and_linking() -> None:
    a, n = Source("args", ("a", "b")), Source("args", ("1", "2", "3"))
    joined = [item.split(RECORD_SEP) for item in from_sources([a, n])]
    assert joined == [["a", "1"], ["a", "2"], ["a", "3"], ["b", "1"], ["b", "2"], ["b", "3"]]
    linked = Source("args", ("1", "2", "3"), linked=True)
    assert [i.split(RECORD_SEP) for i in from_sources([a, linked])] == [["a", "1"], ["b", "2"]]
    assert [i.split(RECORD_SEP) for i in from_sources([a, n], link=True)] == [
        ["a", "1"],
        ["b", "2"],
        ["a", "3"],
    ]
    assert from_sources([Source("args", ("x", "y"))]) == ["x", "y"]


def test_records_keep_empty_lines_and_split_at_nul() -> None:
    assert records(b"a\n\nb\n", "stdin") == ["a", "", "b"]
    assert records(b"a\nb", "stdin") == ["a", "b"]
    assert records(b"a\nb\0c\0", "stdin", null=True) == ["a\nb", "c"]
    with pytest.raises(BadInput, match="-0"):
        records(b"a\0b\n", "stdin")
    with pytest.raises(BadInput, match="not UTF-8"):
        records(b"\xff\n", "stdin")
    assert from_sources([Source("file", ("-",))], stdin=io.BytesIO(b"s\n")) == ["s"]


@pytest.mark.parametrize(
    ("text", "cores", "workers"),
    [
        (None, 4, 4),
        (None, 16, 8),
        ("3", 4, 3),
        ("50%", 4, 2),
        ("200%", 4, 8),
        ("+2", 4, 6),
        ("-1", 4, 3),
        ("-8", 4, 1),
        ("0", 4, -1),
        ("auto", 4, None),
    ],
)
def test_jobs_forms(text: str | None, cores: int, workers: int | None) -> None:
    assert workers_for(text, cores) == workers


def test_bad_jobs_are_refused() -> None:
    with pytest.raises(BadInput):
        workers_for("many", 4)


def test_delay_gate() -> None:
    policies = Policies([Delay(1.0)])
    assert policies.delay(10.0) == 0.0
    policies.started(10.0)
    assert policies.delay(10.5) == pytest.approx(0.5)
    assert policies.delay(11.0) == 0.0
    assert admission(None, None, None, None) == []


def test_load_gate_reads_at_most_every_half_second() -> None:
    readings = iter([5.0, 0.5])
    load = Load(1.0, lambda: next(readings))
    assert load.delay(0.0) == pytest.approx(0.5)
    assert load.delay(0.2) == pytest.approx(0.3)  # not read again yet
    assert load.delay(0.6) == 0.0
    assert load_limit("50%", cores=4) == 2.0 and load_limit("3") == 3.0


def test_relative_timeout_is_a_multiple_of_the_median_success() -> None:
    relative = RelativeTimeout(200)
    job = JobSpec("1", ("true",))
    assert relative.prepare(job).timeout is None  # nothing succeeded yet: no limit
    for duration in (1.0, 3.0, 2.0, 60.0):
        relative.ended(Attempt("1", 1, 1, ok=duration < 60, outcome=Outcome.OK, duration=duration))
    assert relative.prepare(job).timeout == pytest.approx(4.0)  # the failure does not count
