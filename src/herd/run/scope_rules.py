"""Compiled scope globs: pathspec's own matcher, cheap to build for a thousand tasks.

pathspec translates each gitignore glob to a regex. Globs of tasks mostly differ only in
their leading directory names (`src/a/*.py`, `src/b/*.py`), so each regex is split into
its literal prefix and the rest, and the rest is translated and compiled once per shape.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pathspec
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from herd.errors import BadInput
from herd.run.globs import GlobPattern, parse_pattern


@dataclass(frozen=True)
class Rule:
    """One non-negated glob: pathspec's regex, split into its literal leading text and the
    rest. Tasks' globs mostly differ only in that text (`src/a/*.py`, `src/b/*.py`), so
    they share one compiled rest: a plan of 1,000 tasks compiles a few dozen regexes."""

    prefix: str
    rest: re.Pattern[str]
    model: GlobPattern | None  # None: the glob can match no normalized path

    def match(self, path: str) -> bool:
        """Whether the glob matches a normalized path (pathspec's regex, exactly)."""
        return path.startswith(self.prefix) and self.rest.match(path, len(self.prefix)) is not None


# pathspec writes a glob's literal characters with re.escape: plain characters, or a
# backslash and a non-alphanumeric one.
_LITERAL_RUN = re.compile(r"\^((?:[^\\\[\](){}|.*+?^$]|\\[^A-Za-z0-9])*)")
_QUANTIFIERS = ("*", "+", "?", "{")
# The one alternation pathspec writes itself ("a directory, or the end"); another `|` in
# the regex could be top-level, and splitting there would change what it matches.
_DIR_OR_END = "(?:(?P<ps_d>/)|$)"


def _split_regex(regex: str) -> tuple[str, str]:
    """(literal prefix, the regex for the rest) such that pathspec's `regex.search(path)`
    holds iff the path starts with the prefix and the rest matches from there."""
    head = _LITERAL_RUN.match(regex)
    rest = regex[head.end() :] if head else ""
    if head is None or "|" in regex.replace(_DIR_OR_END, "") or rest.startswith(_QUANTIFIERS):
        # Not a plain "literal text, then the rest" (a quantifier would bind to the
        # prefix's last character): keep the whole regex, searched as pathspec does.
        return "", f"(?s:.*?)(?:{regex})"
    return re.sub(r"\\(.)", r"\1", head.group(1)), rest


@functools.lru_cache(maxsize=4096)
def _compile_rest(rest: str) -> re.Pattern[str]:
    return re.compile(rest)


# A directory name pathspec translates character by character (re.escape), like `x`.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def _split_glob(glob: str) -> tuple[str, str, bool] | None:
    """(literal prefix, regex for the rest, include) of pathspec's regex for the glob;
    None for a glob that matches nothing (a comment, a blank).

    Leading plain directory names do not change how pathspec translates the rest, so
    `src/a/*.py` is translated as `x/x/*.py` (once, for every glob of that shape) and
    the names put back into the prefix."""
    segments = glob.split("/")
    plain = 0
    while plain < len(segments) - 1 and _PLAIN_SEGMENT.fullmatch(segments[plain]):
        plain += 1
    stand_in = "x/" * plain
    regex, include = _glob_regex(stand_in + "/".join(segments[plain:]))
    if regex is None or include is None:
        return None
    prefix, rest = _split_regex(regex)
    if not prefix.startswith(stand_in):  # not the expected shape: translate the glob itself
        regex, include = _glob_regex(glob)
        if regex is None or include is None:
            return None
        prefix, rest = _split_regex(regex)
        return prefix, rest, include
    return "/".join(segments[:plain]) + "/" * bool(plain) + prefix[len(stand_in) :], rest, include


@functools.lru_cache(maxsize=4096)
def _glob_regex(glob: str) -> tuple[str | None, bool | None]:
    regex, include = GitIgnoreSpecPattern.pattern_to_regex(glob)
    return regex, include


@dataclass(frozen=True)
class Rules:
    """A glob list: the exact matcher and what glob reasoning may rely on."""

    globs: tuple[str, ...]
    positive: tuple[Rule, ...]
    has_negation: bool

    @functools.cached_property
    def spec(self) -> pathspec.GitIgnoreSpec:
        """pathspec's own matcher, needed (and compiled) only where a `!` glob makes the
        order of the globs matter."""
        return pathspec.GitIgnoreSpec.from_lines(self.globs)

    @functools.cached_property
    def models(self) -> tuple[GlobPattern, ...]:
        return tuple(rule.model for rule in self.positive if rule.model is not None)

    def match(self, path: str) -> bool:
        """Whether a normalized path matches the list, as GitIgnoreSpec.match_file."""
        if self.has_negation:
            return self.spec.match_file(path)
        return any(rule.match(path) for rule in self.positive)


def compile_rules(globs: tuple[str, ...]) -> Rules:
    positive: list[Rule] = []
    has_negation = False
    for glob in globs:
        try:
            split = _split_glob(glob)
            if split is None:
                continue  # a comment, a blank or a pattern git discards
            prefix, rest, include = split
            compiled = _compile_rest(rest)
        except (ValueError, re.error) as err:
            raise BadInput(f"invalid scope glob {glob!r}: {err}") from err
        if include:
            positive.append(Rule(prefix, compiled, parse_pattern(glob)))
        else:
            has_negation = True
    return Rules(globs, tuple(positive), has_negation)
