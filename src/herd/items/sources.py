"""Where a map's items come from: herd's own forms and GNU parallel's.

herd's: arguments before `--`, `--from FILE|-` (lines, empty ones skipped), `--glob`.
GNU parallel's, after the command: `::: a b` (arguments), `:::: FILE` (lines of a file,
`-` = stdin), and with neither, standard input. Several sources make the cartesian
product, in GNU parallel's order (the first source varies slowest); `:::+` / `::::+`
link a source to the one before it (zip, cut to the shorter). Lines are kept as GNU
parallel keeps them, empty ones too; `-0` splits at NUL instead of newline.

An item with several values (one per source) is one string, its values joined by
RECORD_SEP, so batches, the journal and resume treat every item alike.
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from herd.errors import BadInput
from herd.items.template import RECORD_SEP
from herd.structs import struct

MARKERS = {":::": ("args", False), ":::+": ("args", True), "::::": ("file", False), "::::+": ("file", True)}


@struct(frozen=True)
class Source:
    kind: str
    """`args` (`:::`) or `file` (`::::`)."""
    words: tuple[str, ...]
    linked: bool = False


def split_command(words: Sequence[str]) -> tuple[tuple[str, ...], list[Source]]:
    """`echo {} ::: a b :::: f` -> (("echo", "{}"), [args a b, file f]). `:::: f g` is
    two sources, as in GNU parallel."""
    cut = next((n for n, word in enumerate(words) if word in MARKERS), len(words))
    command, sources = tuple(words[:cut]), list[Source]()
    n = cut
    while n < len(words):
        kind, linked = MARKERS[words[n]]
        end = next((m for m in range(n + 1, len(words)) if words[m] in MARKERS), len(words))
        given = tuple(words[n + 1 : end])
        if not given:
            raise BadInput(f"{words[n]} needs {'arguments' if kind == 'args' else 'a file'} after it")
        if kind == "file":
            sources.extend(Source(kind, (name,), linked and m == 0) for m, name in enumerate(given))
        else:
            sources.append(Source(kind, given, linked))
        n = end
    return command, sources


def utf8_text(data: bytes, where: str) -> str:
    """`data` decoded, or BadInput naming the line that is not UTF-8 and how to fix it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInput(
            f"{where}: line {line} is not UTF-8 text ({exc.reason}); convert the "
            "file first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def records(data: bytes, where: str, null: bool = False) -> list[str]:
    """GNU parallel's input records: lines (empty ones kept; the last newline ends the
    last record) or, with `null`, NUL-terminated strings."""
    text = utf8_text(data, where)
    sep = "\0" if null else "\n"
    if not null and "\0" in text:
        raise BadInput(f"{where}: contains NUL bytes; use -0 / --null for NUL-separated items")
    found = text.split(sep)
    if found and found[-1] == "":
        found.pop()
    return found


def _read(name: str, null: bool, stdin: IO[bytes] | None) -> list[str]:
    if name == "-":
        return records((stdin or sys.stdin.buffer).read(), "standard input", null)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise BadInput(f":::: {name}: {exc.strerror}") from None
    return records(data, f":::: {name}", null)


def from_sources(
    sources: Sequence[Source], null: bool = False, stdin: IO[bytes] | None = None, link: bool = False
) -> list[str]:
    """The items of GNU parallel-style sources: one source's values as they are, several
    as the product of the (linked) groups, each item's values joined by RECORD_SEP.
    `link` (--link): all sources paired, the shorter ones repeated to the longest."""
    if len(sources) == 1:  # the common case, without a tuple per item (100,000 items: MBs)
        only = sources[0]
        return list(only.words) if only.kind == "args" else _read(only.words[0], null, stdin)
    groups: list[list[tuple[str, ...]]] = []
    for source in sources:
        values = list(source.words) if source.kind == "args" else _read(source.words[0], null, stdin)
        if source.linked and groups:
            groups[-1] = [
                (*joined, value) for joined, value in zip(groups[-1], values, strict=False)
            ]  # cut to the shorter, as GNU
        else:
            groups.append([(value,) for value in values])
    if link and len(groups) > 1:
        longest = max(len(group) for group in groups)
        groups = (
            [
                [
                    tuple(itertools.chain.from_iterable(group[n % len(group)] for group in groups if group))
                    for n in range(longest)
                ]
            ]
            if all(groups)
            else [[]]
        )
    if len(groups) == 1 and all(len(values) == 1 for values in groups[0][:1]):
        return [values[0] for values in groups[0]]
    return [RECORD_SEP.join(itertools.chain.from_iterable(combo)) for combo in itertools.product(*groups)]


def is_multi(sources: Sequence[Source]) -> bool:
    """True when items carry several values (more than one source)."""
    return len(sources) > 1


def herd_items(
    args: Sequence[str], from_file: str | None, pattern: str | None, stdin: IO[str] | None = None
) -> list[str]:
    """herd's own forms, in the order given: arguments, then lines of `from_file` (`-`:
    stdin; empty lines skipped), then the sorted matches of `pattern` (`**` recurses)."""
    items = list(args)
    if from_file == "-":
        if stdin is None:  # bytes, checked like a file's (the text layer may mask bad bytes)
            stdin = io.StringIO(utf8_text(sys.stdin.buffer.read(), "--from - (standard input)"), newline=None)
        items.extend(_lines(stdin))
    elif from_file is not None:
        try:
            data = Path(from_file).read_bytes()
        except OSError as exc:
            raise BadInput(f"--from {from_file}: {exc.strerror}") from None
        items.extend(_lines(io.StringIO(utf8_text(data, f"--from {from_file}"), newline=None)))
    if pattern is not None:
        import glob

        items.extend(sorted(glob.glob(pattern, recursive=True)))
    return items


def _lines(handle: IO[str]) -> Iterator[str]:
    for line in handle:
        item = line.rstrip("\r\n")
        if item:
            yield item
