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

_SLASH = ord("/")
# A last segment like `*.py`, `test_*.py` or `README.md` names files (see the module doc).
_FILE_LIKE = re.compile(r"[^.].*\.[A-Za-z0-9]{1,8}")


def below_a_file(path: str) -> bool:
    """True for a path under a file-like name (`a/x.py/b`): such paths are not examples."""
    return any(_FILE_LIKE.fullmatch(seg) for seg in path.split("/")[:-1])
# Characters tried first when a witness needs some character: readable examples.
_PREFERRED = tuple(ord(c) for c in "xa0_-")
# Beyond this many alignments of two patterns, exclusion is not attempted.
MAX_ALTERNATIVES = 64


@dataclass(frozen=True)
class CharSet:
    """What one character position of a segment glob accepts: a literal, `?` or `[...]`."""

    text: str  # the literal char, "?" or the class as written
    regex: re.Pattern[str] | None = None  # only for classes
    # Membership is constant between consecutive boundary points, so testing
    # these (and 0) decides whether two sets share a character, exactly.
    boundaries: frozenset[int] = frozenset()

    @property
    def is_literal(self) -> bool:
        return self.regex is None and self.text != "?"

    def contains(self, ch: int) -> bool:
        if ch == _SLASH:
            return False
        if self.regex is not None:
            return self.regex.fullmatch(chr(ch)) is not None
        return self.text == "?" or ord(self.text) == ch


class Star(enum.Enum):
    """`*` inside a segment: any run of characters except `/`."""

    STAR = "*"


Token = CharSet | Star


def _literal(ch: str) -> CharSet:
    return CharSet(ch, None, frozenset((ord(ch), ord(ch) + 1)))


_ANY_CHAR = CharSet("?")


@dataclass(frozen=True, eq=False)
class SegGlob:
    """A glob for a single path segment (no `/` inside), e.g. `*.py`, `test_[a-c]?`.

    parse_segment interns these, so identity is equality: hashing stays cheap
    in the hot loops of find_overlaps.
    """

    text: str
    tokens: tuple[Token, ...]
    regex: re.Pattern[str]

    @functools.cached_property
    def literal(self) -> str | None:
        """The segment itself when the glob has no wildcard."""
        if all(_is_literal(t) for t in self.tokens):
            return _spell_literals(self.tokens)
        return None

    @functools.cached_property
    def matches_any_segment(self) -> bool:
        return all(t is Star.STAR for t in self.tokens)


class GlobSyntaxError(ValueError):
    """A bracket expression pathspec itself would discard (the whole pattern is a no-op)."""


@functools.cache
def parse_segment(text: str) -> SegGlob:
    """Tokenize one segment glob the way pathspec translates it to a regex."""
    tokens: list[Token] = []
    regex_parts: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "\\":
            if i == len(text):
                raise GlobSyntaxError(f"dangling escape in {text!r}")
            tokens.append(_literal(text[i]))
            regex_parts.append(re.escape(text[i]))
            i += 1
        elif ch == "*":
            if not tokens or tokens[-1] is not Star.STAR:
                tokens.append(Star.STAR)
            regex_parts.append("[^/]*")
        elif ch == "?":
            tokens.append(_ANY_CHAR)
            regex_parts.append("[^/]")
        elif ch == "[":
            cls, i = _parse_class(text, i)
            tokens.append(cls)
            regex_parts.append(cls.text)
        else:
            tokens.append(_literal(ch))
            regex_parts.append(re.escape(ch))
    # A lone `*` segment is `[^/]+` in pathspec; segments are never empty anyway.
    return SegGlob(text, tuple(tokens), re.compile("".join(regex_parts)))


def _parse_class(text: str, start: int) -> tuple[CharSet, int]:
    """Parse `[...]` whose `[` is just before `start`; return the set and the index after `]`."""
    j = start
    if j < len(text) and text[j] in "!^":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text) and text[j] != "]":
        j += 1
    if j >= len(text):
        raise GlobSyntaxError(f"unclosed bracket in {text!r}")
    body = text[start:j]
    negated = body[:1] in ("!", "^")
    inner = body[1:] if negated else body
    expr = "[" + ("^" if negated else "") + inner.replace("\\", "\\\\") + "]"
    points = frozenset(p for c in inner for p in (ord(c), ord(c) + 1))
    return CharSet(expr, re.compile(expr), points), j + 1


ANY_SEGMENT = parse_segment("*")
_ANY_ITEM = frozenset((ANY_SEGMENT,))


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


def parse_pattern(text: str) -> GlobPattern | None:
    """Model a gitignore pattern (a leading `!` is ignored); None when it matches no path.

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


# --- one segment -------------------------------------------------------------

# Positions in each glob's tokens, and whether a character was read yet.
_State = tuple[tuple[int, ...], bool]


@functools.lru_cache(maxsize=16384)
def segment_witness(globs: frozenset[SegGlob], variant: int = 0) -> str | None:
    """A shortest nonempty segment matching every glob, or None when there is none.

    Exact: a breadth-first search of the product of the globs' automata, where
    a `*` either loops on any character or is skipped.
    """
    token_lists = [g.tokens for g in globs if not g.matches_any_segment] or [ANY_SEGMENT.tokens]
    # First look for a witness where every `*` stands for something: `x.py`
    # reads better than `.py`. It is a witness of the real globs too.
    readable = [_non_empty_stars(tokens) for tokens in token_lists]
    return _search_witness(readable, variant) or _search_witness(token_lists, variant)


def _non_empty_stars(tokens: tuple[Token, ...]) -> tuple[Token, ...]:
    out: list[Token] = []
    for token in tokens:
        if token is Star.STAR:
            out.append(_ANY_CHAR)
        out.append(token)
    return tuple(out)


def _search_witness(token_lists: list[tuple[Token, ...]], variant: int) -> str | None:
    preferred = _PREFERRED[variant % len(_PREFERRED) :] + _PREFERRED[: variant % len(_PREFERRED)]
    parents: dict[_State, tuple[_State, int] | None] = {
        (positions, False): None
        for positions in _star_closure(token_lists, tuple(0 for _ in token_lists))
    }
    frontier = list(parents)
    while frontier:
        next_frontier: list[_State] = []
        for positions, nonempty in frontier:
            if nonempty and all(p == len(t) for p, t in zip(positions, token_lists, strict=True)):
                return _spell((positions, nonempty), parents)
            step = _consume(token_lists, positions, preferred)
            if step is None:
                continue
            moved, ch = step
            for closed in _star_closure(token_lists, moved):
                key = (closed, True)
                if key not in parents:
                    parents[key] = ((positions, nonempty), ch)
                    next_frontier.append(key)
        frontier = next_frontier
    return None


def _star_closure(
    token_lists: list[tuple[Token, ...]], positions: tuple[int, ...]
) -> set[tuple[int, ...]]:
    """Every position tuple reachable by skipping `*` tokens (they may match nothing)."""
    seen = {positions}
    stack = [positions]
    while stack:
        current = stack.pop()
        for k, (p, tokens) in enumerate(zip(current, token_lists, strict=True)):
            if p < len(tokens) and tokens[p] is Star.STAR:
                skipped = (*current[:k], p + 1, *current[k + 1 :])
                if skipped not in seen:
                    seen.add(skipped)
                    stack.append(skipped)
    return seen


def _consume(
    token_lists: list[tuple[Token, ...]], positions: tuple[int, ...], preferred: tuple[int, ...]
) -> tuple[tuple[int, ...], int] | None:
    """Read one character in every automaton at once: the new positions and the character."""
    sets: list[CharSet] = []
    moved: list[int] = []
    for p, tokens in zip(positions, token_lists, strict=True):
        if p == len(tokens):
            return None
        token = tokens[p]
        if token is Star.STAR:
            sets.append(_ANY_CHAR)
            moved.append(p)
        else:
            sets.append(token)
            moved.append(p + 1)
    candidates = set(preferred) | {0}
    for s in sets:
        candidates |= s.boundaries
    # Printable characters first: witnesses end up in messages.
    for ch in (*preferred, *sorted(candidates, key=lambda c: (c <= ord(" "), c))):
        if all(s.contains(ch) for s in sets):
            return tuple(moved), ch
    return None


def _spell(state: _State, parents: dict[_State, tuple[_State, int] | None]) -> str:
    chars: list[str] = []
    link = parents[state]
    while link is not None:
        state, ch = link
        chars.append(chr(ch))
        link = parents[state]
    return "".join(reversed(chars))


@functools.lru_cache(maxsize=16384)
def segment_included(inner: frozenset[SegGlob], outer: SegGlob) -> bool:
    """True only if every segment matching all of `inner` matches `outer` (sound, not complete)."""
    return outer.matches_any_segment or any(_glob_included(g, outer) for g in inner)


def _glob_included(inner: SegGlob, outer: SegGlob) -> bool:
    if inner.text == outer.text:
        return True
    literal = inner.literal
    if literal is not None:
        return outer.regex.fullmatch(literal) is not None
    shape = _prefix_star_suffix(outer)
    if shape is None:
        return False
    prefix, suffix = shape
    # Every match of `inner` starts with its leading literals, ends with its
    # trailing ones and is at least as long as its non-star tokens.
    lead, trail, min_len = _literal_edges(inner)
    return lead.startswith(prefix) and trail.endswith(suffix) and min_len >= len(prefix + suffix)


def _prefix_star_suffix(glob: SegGlob) -> tuple[str, str] | None:
    """(`pre`, `suf`) when the glob is `pre*suf` with literal parts and one star."""
    stars = [k for k, t in enumerate(glob.tokens) if t is Star.STAR]
    if len(stars) != 1:
        return None
    before, after = glob.tokens[: stars[0]], glob.tokens[stars[0] + 1 :]
    if not all(_is_literal(t) for t in before + after):
        return None
    return _spell_literals(before), _spell_literals(after)


def _spell_literals(tokens: tuple[Token, ...]) -> str:
    return "".join(t.text for t in tokens if isinstance(t, CharSet))


def _literal_edges(glob: SegGlob) -> tuple[str, str, int]:
    tokens = glob.tokens
    lead = 0
    while lead < len(tokens) and _is_literal(tokens[lead]):
        lead += 1
    trail = len(tokens)
    while trail > lead and _is_literal(tokens[trail - 1]):
        trail -= 1
    min_len = sum(1 for t in tokens if t is not Star.STAR)
    return _spell_literals(tokens[:lead]), _spell_literals(tokens[trail:]), min_len


def _is_literal(token: Token) -> bool:
    return isinstance(token, CharSet) and token.is_literal


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
            found = {
                _prepend(item, rest)
                for item, ni, nj in _steps(a, i, b, j)
                for rest in collect(ni, nj)
            }
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
