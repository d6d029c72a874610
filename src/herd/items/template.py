"""GNU parallel's replacement strings, compiled once per command line.

`Template.compile(argv)` turns each argument into a list of literal text and replacement
parts; `expand(items, seq, slot)` then only walks that list, so a 100,000-item map pays
for the parsing once. The rules are GNU parallel's (checked against it by
tests/integration/test_parallel_compat.py):

- `{}` the value(s), `{.}` without the last extension, `{/}` basename, `{//}` dirname
  (Perl's `dirname`), `{/.}` basename without extension, `{#}` job sequence number,
  `{%}` job slot, `{N}` `{N.}` `{N/}` `{N//}` `{N/.}` the N-th value (`{-1}` the last);
- a job's values are its items, each split into its input sources and `--colsep`
  columns; `{}` and the path forms stand for all of them: the first value continues the
  argument, every further one starts a new argument (what the shell makes of GNU
  parallel's `x{}y` with two values: `xa`, `by`);
- `{N}` past the last value is empty, and an argument made only of such is dropped;
- without any replacement string the values are appended, each its own argument;
- an unknown `{word}` is an error (GNU parallel would pass it through silently).

A command given as one string with spaces (`'gzip -9 {}'`) is a shell command line, as
in GNU parallel: it runs under `/bin/sh -c` with every value shell-quoted. Any other
command is an argv list and never sees a shell.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Sequence

from herd.errors import BadInput
from herd.structs import struct

RECORD_SEP = "\0"
"""Joins the values of one item from several input sources (`::: a b ::: 1 2`): no
argument can contain NUL, so the join is unambiguous and an item stays one string."""
SHELL = "/bin/sh"
KNOWN = "{} {.} {/} {//} {/.} {#} {%} {N} {N.} {N/} {N//} {N/.}"

_ALL, _POSITION, _SEQ, _SLOT = range(4)
_TOKEN = re.compile(r"\{([^{}\s]*)\}")
_POSITIONAL = re.compile(r"(-?\d+)(\.|/|//|/\.)?")
_WORDLIKE = re.compile(r"[\w.#%/+:^=@-]+")


def without_extension(value: str) -> str:
    """`s:\\.[^/.]*$::`: `a.tar.gz` -> `a.tar`, `.bashrc` -> `` (as GNU parallel)."""
    dot = value.rfind(".")
    if dot < 0 or "/" in value[dot:]:
        return value
    return value[:dot]


def basename(value: str) -> str:
    """`s:.*/::`: `a/b/` -> `` (a trailing slash leaves nothing, as GNU parallel)."""
    return value[value.rfind("/") + 1 :]


def _strip_trailing_slashes(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped or path[:1]


def dirname(value: str) -> str:
    """Perl's File::Basename::dirname, which GNU parallel uses: `a` -> `.`, `/a` -> `/`,
    `a/b/` -> `a`, `/` -> `/`."""
    cut = value.rfind("/") + 1
    directory, base = value[:cut] or "./", value[cut:]
    directory = _strip_trailing_slashes(directory)
    if not base:
        cut = directory.rfind("/") + 1
        directory = _strip_trailing_slashes(directory[:cut] or "./")
    return directory


def basename_without_extension(value: str) -> str:
    return without_extension(basename(value))


_TRANSFORMS: dict[str, Callable[[str], str] | None] = {
    "": None,
    ".": without_extension,
    "/": basename,
    "//": dirname,
    "/.": basename_without_extension,
}


@struct(frozen=True)
class Replacement:
    kind: int
    index: int = 0
    """For `{N}`: N (1-based; negative counts from the end)."""
    transform: Callable[[str], str] | None = None


Part = str | Replacement


def parse_argument(arg: str, where: str = "command") -> list[Part]:
    """`out/{/.}.png` -> ["out/", Replacement(basename_without_extension), ".png"]."""
    if "{=" in arg and "=}" in arg:
        raise BadInput(
            f"{where} argument {arg!r}: {{= perl expression =}} is not supported; herd knows {KNOWN}"
        )
    parts: list[Part] = []
    last = 0
    for match in _TOKEN.finditer(arg):
        replacement = _replacement(match.group(1))
        if replacement is None:
            if _WORDLIKE.fullmatch(match.group(1)):
                raise BadInput(
                    f"{where} argument {arg!r}: unknown replacement string "
                    f"{match.group(0)}; herd knows {KNOWN} (GNU parallel's)"
                )
            continue  # `{a,b}`, `{print $1}`: not meant as a replacement string
        if match.start() > last:
            parts.append(arg[last : match.start()])
        parts.append(replacement)
        last = match.end()
    if last < len(arg):
        parts.append(arg[last:])
    return parts


def _replacement(body: str) -> Replacement | None:
    if body in _TRANSFORMS:
        return Replacement(_ALL, transform=_TRANSFORMS[body])
    if body == "#":
        return Replacement(_SEQ)
    if body == "%":
        return Replacement(_SLOT)
    positional = _POSITIONAL.fullmatch(body)
    if positional is None or positional.group(1) in ("0", "-0"):
        return None
    return Replacement(_POSITION, int(positional.group(1)), _TRANSFORMS[positional.group(2) or ""])


class Template:
    """A command line compiled once: `expand` gives each job's argv."""

    def __init__(self, argv: Sequence[str], *, colsep: str | None = None, multi: bool = False) -> None:
        if not argv:
            raise BadInput("the command is empty")
        self.colsep = re.compile(colsep) if colsep else None
        self.split = multi or self.colsep is not None
        """Items carry several values (sources joined by RECORD_SEP, or columns)."""
        self.shell = len(argv) == 1 and any(c.isspace() for c in argv[0])
        self.args = [parse_argument(arg) for arg in argv]
        self.appending = not any(isinstance(p, Replacement) for parts in self.args for p in parts)
        self.prefix = tuple(argv)
        self.steps = [_step(arg, parts) for arg, parts in zip(argv, self.args, strict=True)]
        """Per argument: (text, None) a literal, (None, None) exactly `{}`, else its parts."""
        self.uses_slot = any(
            isinstance(p, Replacement) and p.kind == _SLOT for parts in self.args for p in parts
        )

    def values(self, items: Sequence[str]) -> Sequence[str]:
        if not self.split:
            return items
        out: list[str] = []
        for item in items:
            for value in item.split(RECORD_SEP):
                out.extend(self.colsep.split(value) if self.colsep else (value,))
        return out

    def expand(self, items: Sequence[str], seq: int = 1, slot: int = 1) -> tuple[str, ...]:
        values = self.values(items)
        if self.shell:
            return (SHELL, "-c", self.shell_line(values, seq, slot))
        if self.appending:
            return (*self.prefix, *values)
        out: list[str] = []
        for literal, parts in self.steps:
            if literal is not None:
                out.append(literal)
            elif parts is None:
                out.extend(values)
            else:
                out.extend(_words(parts, values, seq, slot))
        return tuple(out)

    def shell_line(self, values: Sequence[str], seq: int, slot: int) -> str:
        quoted = [shlex.quote(v) for v in values]
        if self.appending:
            return " ".join((self.prefix[0], *quoted))
        pieces: list[str] = []
        for part in self.args[0]:
            if isinstance(part, str):
                pieces.append(part)
            elif part.kind == _ALL:
                pieces.append(
                    " ".join(shlex.quote(part.transform(v)) for v in values)
                    if part.transform
                    else " ".join(quoted)
                )
            else:
                pieces.append("".join(shlex.quote(w) for w in _words([part], values, seq, slot)))
        return "".join(pieces)

    def text(self, items: Sequence[str], seq: int = 1, slot: int = 1) -> str:
        """The arguments as one string (for --tagstring, and the joblog's Command)."""
        return " ".join(self.expand(items, seq, slot))


def _step(arg: str, parts: list[Part]) -> tuple[str | None, list[Part] | None]:
    if not any(isinstance(part, Replacement) for part in parts):
        return arg, None
    only = parts[0]
    if len(parts) == 1 and isinstance(only, Replacement) and only.kind == _ALL and only.transform is None:
        return None, None
    return None, parts


def _words(parts: list[Part], values: Sequence[str], seq: int, slot: int) -> list[str]:
    """One argument's parts rendered into the arguments GNU parallel's shell would see."""
    words: list[str] = []
    current = ""
    present = False
    for part in parts:
        if isinstance(part, str):
            current += part
            present = True
        elif part.kind == _ALL:
            for n, value in enumerate(values):
                if n:
                    words.append(current)
                    current = ""
                current += part.transform(value) if part.transform else value
                present = True
        elif part.kind == _POSITION:
            index = part.index - 1 if part.index > 0 else len(values) + part.index
            if 0 <= index < len(values):
                value = values[index]
                current += part.transform(value) if part.transform else value
                present = True
        else:
            current += str(seq if part.kind == _SEQ else slot)
            present = True
    if present:
        words.append(current)
    return words


class TextTemplate:
    """One string with replacement strings, e.g. --tagstring: its words joined by spaces."""

    def __init__(self, text: str, template: Template, where: str) -> None:
        self.parts = parse_argument(text, where)
        self.template = template

    def render(self, items: Sequence[str], seq: int, slot: int) -> str:
        return " ".join(_words(self.parts, self.template.values(items), seq, slot))


@functools.lru_cache(maxsize=64)
def _compiled(argv: tuple[str, ...]) -> Template:
    return Template(argv)


def command_for(argv: Sequence[str], items: Sequence[str], seq: int = 1) -> tuple[str, ...]:
    """`argv` for one job of `items`, for callers without a Template of their own (the
    pipeline's stages): compiled once per distinct argv."""
    return _compiled(tuple(argv)).expand(items, seq)
