"""Reasoning on gitignore-style globs without files: can two globs match one path?

A pattern is modelled as a sequence of items. An item is either one path
segment, which must match every segment glob of a conjunction, or
DOUBLE_STAR, which stands for zero or more segments. The model follows
pathspec's GitIgnoreSpecPattern (the matcher behind Scope.matches) rule for
rule, so what is proven here holds for the real matcher:

- a pattern without a slash (other than a trailing one) matches at any depth;
- a leading slash anchors; a trailing slash means "a directory": only paths
  strictly below a match count;
- a pattern that matches a directory matches everything below it, so every
  model ends with DOUBLE_STAR -- except one whose last segment looks like a
  file name (`*.py`, `README.md`): git would also match a directory named
  `x.py/`, but scopes name files, and treating `*.md` as conflicting with every
  `src/a/*.py` (through `src/a/x.py/y.md`) would serialise every batch. This
  is the one place the model is narrower than the matcher; tracked files are
  still checked with the exact matcher.

Answers are sound in one direction only: `intersect` never misses a shared
path, `included` never claims coverage that does not hold. Where exactness
would cost a real decision procedure (segment-glob inclusion), we answer
"unknown" and let the caller be conservative.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from herd.run.globs_segment import (
    ANY_SEGMENT,
    GlobSyntaxError,
    SegGlob,
    parse_segment,
    segment_included,
    segment_witness,
)

# A last segment like `*.py`, `test_*.py` or `README.md` names files (see the module doc).
_FILE_LIKE = re.compile(r"[^.].*\.[A-Za-z0-9]{1,8}")


def below_a_file(path: str) -> bool:
    """True for a path under a file-like name (`a/x.py/b`): such paths are not examples."""
    return any(_FILE_LIKE.fullmatch(seg) for seg in path.split("/")[:-1])


# Beyond this many alignments of two patterns, exclusion is not attempted.
MAX_ALTERNATIVES = 64


_ANY_ITEM = frozenset((ANY_SEGMENT,))
_STAND_IN = frozenset((parse_segment("x"),))


class DoubleStar(enum.Enum):
    """`**` as a whole segment: zero or more segments."""

    DOUBLE_STAR = "**"


DOUBLE_STAR = DoubleStar.DOUBLE_STAR

# One segment matching every glob of the conjunction, or zero-or-more segments.
Item = frozenset[SegGlob] | DoubleStar
Items = tuple[Item, ...]


@dataclass(frozen=True)
class GlobPattern:
    """One gitignore pattern as a sequence of items (see the module docstring)."""

    text: str
    items: Items

    @functools.cached_property
    def example(self) -> str:
        """A path this pattern matches."""
        return example_path(self.items)

    @functools.cached_property
    def literal_prefix(self) -> tuple[str, ...]:
        """Leading segments that are plain names: any path it matches starts with them."""
        prefix: list[str] = []
        for item in self.items:
            if item is DOUBLE_STAR or len(item) != 1:
                break
            (glob,) = item
            literal = glob.literal
            if literal is None:
                break
            prefix.append(literal)
        return tuple(prefix)


# A directory name without glob characters, like `src` or `pkg-1.2`.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def parse_pattern(text: str) -> GlobPattern | None:
    """Model a gitignore pattern (a leading `!` is ignored); None when it matches no path.

    Leading plain directory names become one item each whatever they are, so the rest
    is modelled once per shape (`src/a/*.py` as `x/x/*.py`) and the names put back.
    """
    segments = text.split("/")
    plain = 0
    while plain < len(segments) - 1 and _PLAIN_SEGMENT.fullmatch(segments[plain]):
        plain += 1
    if plain:
        shape = _shape_items("x/" * plain + "/".join(segments[plain:]))
        if shape is not None and shape[:plain] == (_STAND_IN,) * plain:
            names = tuple(frozenset((parse_segment(name),)) for name in segments[:plain])
            return GlobPattern(text, names + shape[plain:])
    return parse_pattern_itself(text)


@functools.lru_cache(maxsize=4096)
def _shape_items(text: str) -> Items | None:
    pattern = parse_pattern_itself(text)
    return None if pattern is None else pattern.items


def parse_pattern_itself(text: str) -> GlobPattern | None:
    """parse_pattern without the shape cache.

    The steps mirror GitIgnoreSpecPattern: strip unescaped trailing blanks,
    anchor on a leading slash or an inner one, add `**/` in front otherwise,
    turn a trailing slash into "some segment below".
    """
    body = text if text.endswith("\\ ") else text.rstrip()
    if not body or body.startswith("#") or body == "/":
        return None
    if body.startswith("!"):
        body = body[1:]
    segs = body.split("/")
    is_dir = segs[-1] == ""
    if segs[0] == "":
        del segs[0]
    elif (len(segs) == 1 or (len(segs) == 2 and is_dir)) and segs[0] != "**":
        segs.insert(0, "**")
    if not segs:
        return None
    if is_dir:
        segs[-1] = "**"
    if "" in segs:
        return None  # `a//b`: an empty segment never occurs in a normalized path
    # `**/**` is `**`; collapse before reading positions (`**/` alone is special).
    segs = [seg for k, seg in enumerate(segs) if not (seg == "**" and segs[k - 1 : k] == ["**"])]
    try:
        items = _segments_to_items(segs, is_dir)
    except GlobSyntaxError:
        return None  # pathspec discards such patterns: they match nothing
    return GlobPattern(text, items)


def _segments_to_items(segs: list[str], is_dir: bool) -> Items:
    items: list[Item] = []
    last = len(segs) - 1
    for index, seg in enumerate(segs):
        if seg != "**":
            items.append(frozenset((parse_segment(seg),)))
            if index == last and not _FILE_LIKE.fullmatch(seg):
                items.append(DOUBLE_STAR)  # matching a directory covers what is below it
        elif index < last:
            items.append(DOUBLE_STAR)
        else:
            # A trailing `**` (or slash) needs at least one segment below the
            # prefix; a bare `**` is every path, or every path with a slash
            # for `**/`.
            items.append(_ANY_ITEM)
            if index == 0 and is_dir:
                items.append(_ANY_ITEM)
            items.append(DOUBLE_STAR)
    return _collapse(items)


def _collapse(items: list[Item]) -> Items:
    out: list[Item] = []
    for item in items:
        if item is DOUBLE_STAR and out and out[-1] is DOUBLE_STAR:
            continue
        out.append(item)
    return tuple(out)


def _conjoin(a: frozenset[SegGlob], b: frozenset[SegGlob]) -> frozenset[SegGlob]:
    if a is b or a == b or b == _ANY_ITEM:
        return a
    if a == _ANY_ITEM:
        return b
    # `*` constrains nothing; dropping it keeps conjunctions (and cache keys) small.
    both = frozenset(g for g in a | b if not g.matches_any_segment)
    return both or _ANY_ITEM


# --- whole patterns ----------------------------------------------------------


def _steps(a: Items, i: int, b: Items, j: int) -> Iterator[tuple[Item | None, int, int]]:
    """Ways to advance through both patterns at once, each emitting one item (or nothing).

    Every step moves i + j forward, so recursion over steps terminates.
    """
    a_star = i < len(a) and a[i] is DOUBLE_STAR
    b_star = j < len(b) and b[j] is DOUBLE_STAR
    if a_star and b_star:
        # Whichever `**` ends first, the other has absorbed the same segments:
        # ** (X & **Y) | ** (**X & Y) covers every way they can share a path.
        yield DOUBLE_STAR, i + 1, j
        yield DOUBLE_STAR, i, j + 1
        return
    if a_star:
        yield None, i + 1, j  # the `**` matches nothing here
    if b_star:
        yield None, i, j + 1
    if i == len(a) or j == len(b):
        return
    left = _ANY_ITEM if a_star else a[i]
    right = _ANY_ITEM if b_star else b[j]
    assert not isinstance(left, DoubleStar) and not isinstance(right, DoubleStar)
    both = _conjoin(left, right)
    if segment_witness(both) is not None:
        yield both, (i if a_star else i + 1), (j if b_star else j + 1)


def _prepend(item: Item | None, rest: Items) -> Items:
    if item is None or (item is DOUBLE_STAR and rest[:1] == (DOUBLE_STAR,)):
        return rest
    return (item, *rest)


def first_common(a: Items, b: Items) -> Items | None:
    """One item sequence whose paths match both patterns, or None when they are disjoint."""
    dead: set[tuple[int, int]] = set()

    def search(i: int, j: int) -> Items | None:
        if i == len(a) and j == len(b):
            return ()
        if (i, j) in dead:
            return None
        for item, ni, nj in _steps(a, i, b, j):
            rest = search(ni, nj)
            if rest is not None:
                return _prepend(item, rest)
        dead.add((i, j))
        return None

    return search(0, 0)


class TooManyAlternatives(Exception):
    """The intersection splits into more cases than we are willing to examine."""


def all_common(a: Items, b: Items) -> list[Items]:
    """Item sequences whose union is exactly the paths matching both patterns.

    Raises TooManyAlternatives past MAX_ALTERNATIVES (nesting `**` multiplies them).
    """
    memo: dict[tuple[int, int], frozenset[Items]] = {}

    def collect(i: int, j: int) -> frozenset[Items]:
        if i == len(a) and j == len(b):
            return frozenset(((),))
        if (i, j) not in memo:
            found = {_prepend(item, rest) for item, ni, nj in _steps(a, i, b, j) for rest in collect(ni, nj)}
            if len(found) > MAX_ALTERNATIVES:
                raise TooManyAlternatives
            memo[i, j] = frozenset(found)
        return memo[i, j]

    return sorted(collect(0, 0), key=len)


def included(inner: Items, outer: Items) -> bool:
    """True only if every path `inner` allows is allowed by `outer` (sound, not complete)."""
    memo: dict[tuple[int, int], bool] = {}

    def covered(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[i, j]
        if i == len(inner):
            result = all(item is DOUBLE_STAR for item in outer[j:])
        elif j == len(outer):
            result = False
        elif outer[j] is DOUBLE_STAR:
            # The outer `**` either stops here or swallows the next inner item
            # (a segment, or a whole inner `**`) and stays.
            result = covered(i, j + 1) or covered(i + 1, j)
        else:
            inner_item, outer_item = inner[i], outer[j]
            result = (
                not isinstance(inner_item, DoubleStar)
                and not isinstance(outer_item, DoubleStar)
                and all(segment_included(inner_item, g) for g in outer_item)
                and covered(i + 1, j + 1)
            )
        memo[i, j] = result
        return result

    return covered(0, 0)


def example_path(items: Items, variant: int = 0) -> str:
    """A concrete path the item sequence allows; variants differ in filler choices."""
    parts: list[str] = []
    for item in items:
        if isinstance(item, DoubleStar):
            if variant % 2:
                parts.append("q")  # also try `**` standing for one segment
            continue
        parts.append(segment_witness(item, variant) or "?")
    return "/".join(parts)


def describe(items: Items) -> str:
    """The item sequence written back as a glob, for messages."""
    words: list[str] = []
    for item in items:
        if isinstance(item, DoubleStar):
            words.append("**")
        else:
            words.append("&".join(sorted(g.text for g in item)))
    return "/".join(words)
