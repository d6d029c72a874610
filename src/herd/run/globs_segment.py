"""Globs for one path segment (no `/` inside): `*.py`, `test_[a-c]?`, `README.md`.

Each is tokenized the way pathspec translates it to a regex, so the answers hold
for the real matcher: `segment_witness` finds a shortest segment every glob of a
conjunction matches (exact), `segment_included` says when every match of some globs
also matches another (sound, not complete). `globs` builds whole patterns on these.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

_SLASH = ord("/")
# Characters tried first when a witness needs some character: readable examples.
_PREFERRED = tuple(ord(c) for c in "xa0_-")


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
    pattern: str  # the regex, compiled on first use: most segments are never matched

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

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
    return SegGlob(text, tuple(tokens), "".join(regex_parts))


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


# --- what a segment glob matches ---------------------------------------------

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
        (positions, False): None for positions in _star_closure(token_lists, tuple(0 for _ in token_lists))
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


def _star_closure(token_lists: list[tuple[Token, ...]], positions: tuple[int, ...]) -> set[tuple[int, ...]]:
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
