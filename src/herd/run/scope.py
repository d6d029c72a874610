"""Task scopes: the paths a task may modify, and which tasks could touch the same path.

A scope is gitignore-style globs (matched by pathspec's GitIgnoreSpec, so a
glob that matches a directory covers everything below it) minus out-of-scope
globs. `find_overlaps` is what `herd plan` uses to keep colliding tasks out of
the same wave; it must never miss a collision, so whenever a pair cannot be
proven disjoint it is reported, with the reason.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pathspec.util import NORMALIZE_PATH_SEPS, normalize_file

from herd.queue.model import Record, scope_of
from herd.run.globs import (
    GlobPattern,
    Items,
    TooManyAlternatives,
    all_common,
    below_a_file,
    describe,
    example_path,
    first_common,
    included,
)
from herd.run.scope_rules import Rule, Rules, compile_rules

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Scope:
    """Globs a task may modify (`include`, empty = anything) minus `exclude`."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lists are accepted but stored as tuples so a Scope stays hashable.
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        _ = self._rules  # a bad glob fails where the scope is made, not mid-plan

    @property
    def unscoped(self) -> bool:
        return not self.include

    def matches(self, path: str) -> bool:
        include, exclude = self._rules
        path = normalize_file(path)
        if not self.unscoped and not include.match(path):
            return False
        return not exclude.match(path)

    @functools.cached_property
    def _rules(self) -> tuple[Rules, Rules]:
        return compile_rules(self.include), compile_rules(self.exclude)

    def _allows_matched(self, path: str) -> bool:
        """matches(path), given a positive include regex already matched the normalized path.

        The common scope (no `!`, no excludes) needs no further work; the file
        scan in find_overlaps calls this once per candidate, so that matters.
        """
        include, exclude = self._rules
        if include.has_negation and not include.spec.match_file(path):
            return False
        return not self.exclude or not exclude.match(path)

    def _glob_excludes(self) -> tuple[GlobPattern, ...]:
        """Excludes that glob reasoning may subtract: none if `!` makes them non-monotone."""
        exclude = self._rules[1]
        return () if exclude.has_negation else exclude.models


@dataclass(frozen=True)
class Overlap:
    """Two tasks whose scopes can touch the same path."""

    a: str
    b: str
    paths: tuple[str, ...]  # shared tracked files, or a description of the shared glob region
    reason: str


def scope_for(record: Record) -> Scope:
    """A task's scope from its issue record (metadata.herd)."""
    include, exclude = scope_of(record)
    return Scope(tuple(include), tuple(exclude))


def path_outside(scope: Scope, paths: Iterable[str]) -> list[str]:
    """The paths a worker changed that its scope does not allow."""
    return [path for path in paths if not scope.matches(path)]


def find_overlaps(scopes: Mapping[str, Scope], files: Sequence[str]) -> list[Overlap]:
    """Every pair of scoped tasks that can touch the same path, in input order.

    Tracked files give exact answers; glob reasoning finds the collisions that
    files do not exist for yet. Both index patterns by their literal directory
    prefix, so tasks in unrelated directories are never compared.
    """
    ids = [task for task, scope in scopes.items() if not scope.unscoped]
    ordered = [scopes[task] for task in ids]
    found: dict[tuple[int, int], Overlap] = {}
    for pair, hits in _shared_files(ordered, files).items():
        noun = "file" if hits.count == 1 else "files"
        reason = f"both match {hits.count} tracked {noun}"
        found[pair] = Overlap(ids[pair[0]], ids[pair[1]], tuple(hits.examples), reason)
    judge = _GlobJudge(ordered)
    for pair in sorted(_candidate_pairs(ordered)):
        if pair in found:
            continue
        verdict = judge.conflict(*pair)
        if verdict is not None:
            found[pair] = Overlap(ids[pair[0]], ids[pair[1]], verdict.paths, verdict.reason)
    return [found[pair] for pair in sorted(found)]


# --- tracked files -----------------------------------------------------------


@dataclass
class _FileHits:
    count: int = 0
    examples: list[str] = field(default_factory=list)


def _shared_files(scopes: Sequence[Scope], files: Sequence[str]) -> dict[tuple[int, int], _FileHits]:
    """Files matched by two or more scopes, per pair.

    Each distinct glob (tasks sharing one share the run) is tried only on the files below
    its literal directory prefix: a slice of the sorted paths, found by bisection. Global
    globs like `*.md` are tried on every file."""
    grouped: dict[str, dict[tuple[str, str], tuple[Rule, list[int]]]] = {}
    for task, scope in enumerate(scopes):
        for rule in scope._rules[0].positive:
            if rule.model is not None:
                key = "/".join(rule.model.literal_prefix)
                same_regex = grouped.setdefault(key, {})
                same_regex.setdefault((rule.prefix, rule.rest.pattern), (rule, []))[1].append(task)
    # git ls-files paths are normalized already; on POSIX (no separators to convert)
    # normalize_file only strips a leading "/" or "./".
    normalized = [normalize_file(f) if NORMALIZE_PATH_SEPS or f.startswith(("/", "./")) else f for f in files]
    order = sorted(range(len(files)), key=normalized.__getitem__)
    paths = [normalized[n] for n in order]
    candidates: dict[int, set[int]] = {}  # file index -> tasks whose include globs match it
    for key, rules in grouped.items():
        for rank in _below(paths, key):
            path = paths[rank]
            for rule, tasks in rules.values():
                if rule.match(path):
                    candidates.setdefault(order[rank], set()).update(tasks)
    # Files in one directory are mostly matched by the same tasks: count each distinct
    # set of tasks once, with its files (in file order).
    together: dict[tuple[int, ...], list[int]] = {}
    for index in sorted(n for n, tasks in candidates.items() if len(tasks) > 1):
        path = normalized[index]
        allowed = tuple(sorted(t for t in candidates[index] if scopes[t]._allows_matched(path)))
        if len(allowed) > 1:
            together.setdefault(allowed, []).append(index)
    shared: dict[tuple[int, int], _FileHits] = {}
    firsts: dict[tuple[int, int], list[int]] = {}
    for members, indexes in together.items():
        for pair in _pairs(list(members)):
            hits = shared.get(pair)
            if hits is None:
                hits = shared[pair] = _FileHits()
            hits.count += len(indexes)
            firsts.setdefault(pair, []).extend(indexes[:MAX_EXAMPLES])
    for pair, hits in shared.items():
        hits.examples = [files[n] for n in sorted(firsts[pair])[:MAX_EXAMPLES]]
    return shared


def _below(paths: Sequence[str], key: str) -> Iterable[int]:
    """Positions in sorted `paths` of `key` itself and of the paths under it ("": all)."""
    if not key:
        return range(len(paths))
    # "key/..." sorts between "key/" and "key0" ("0" follows "/"); "key" itself sorts
    # before them, with names like "key-x" possibly in between.
    start = bisect.bisect_left(paths, key)
    exact = [start] if start < len(paths) and paths[start] == key else []
    return itertools.chain(
        exact, range(bisect.bisect_left(paths, key + "/"), bisect.bisect_left(paths, key + "0"))
    )


def _pairs(tasks: list[int]) -> Iterator[tuple[int, int]]:
    for n, first in enumerate(tasks):
        for second in tasks[n + 1 :]:
            yield first, second


# --- globs -------------------------------------------------------------------


def _candidate_pairs(scopes: Sequence[Scope]) -> set[tuple[int, int]]:
    """Task pairs with include globs whose literal prefixes are nested (or equal).

    Globs whose fixed leading directories differ cannot match the same path.
    Globs with no literal prefix (`*.md`, `**/x`) sit at the root and meet everyone.
    """
    by_prefix: dict[tuple[str, ...], set[int]] = {}
    for task, scope in enumerate(scopes):
        for model in scope._rules[0].models:
            by_prefix.setdefault(model.literal_prefix, set()).add(task)
    pairs: set[tuple[int, int]] = set()
    for prefix, tasks in by_prefix.items():
        pairs.update(_pairs(sorted(tasks)))
        for depth in range(len(prefix)):
            for other in by_prefix.get(prefix[:depth], ()):
                pairs.update((min(t, other), max(t, other)) for t in tasks if t != other)
    return pairs


def _nested(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    depth = min(len(a), len(b))
    return a[:depth] == b[:depth]


@dataclass(frozen=True)
class _Verdict:
    paths: tuple[str, ...]
    reason: str
    proven: bool  # a concrete path matches both scopes


class _GlobJudge:
    """Decides, from the globs alone, whether two scopes can touch one path."""

    def __init__(self, scopes: Sequence[Scope]) -> None:
        self._scopes = scopes

    def conflict(self, a: int, b: int) -> _Verdict | None:
        """A proven conflict if there is one, else the first unproven doubt, else None."""
        scope_a, scope_b = self._scopes[a], self._scopes[b]
        doubt: _Verdict | None = None
        for glob_a in scope_a._rules[0].models:
            for glob_b in scope_b._rules[0].models:
                if not _nested(glob_a.literal_prefix, glob_b.literal_prefix):
                    continue  # fixed leading directories differ: no shared path
                verdict = self._judge_globs(glob_a, glob_b, scope_a, scope_b)
                if verdict is not None and verdict.proven:
                    return verdict
                doubt = doubt or verdict
        return doubt

    def _judge_globs(
        self, glob_a: GlobPattern, glob_b: GlobPattern, scope_a: Scope, scope_b: Scope
    ) -> _Verdict | None:
        region = f"{glob_a.text} ∩ {glob_b.text}"
        quick = _quick_witness(glob_a, glob_b, scope_a, scope_b)
        if quick is not None:
            return _Verdict((f"{region} (e.g. {quick})",), f"globs can both match {quick}", True)
        common = first_common(glob_a.items, glob_b.items)
        if common is None:
            return None
        excludes = scope_a._glob_excludes() + scope_b._glob_excludes()
        if not (scope_a.exclude or scope_b.exclude):
            return _witnessed([common], region, scope_a, scope_b) or _doubt(
                region, common, "negated scope globs may or may not leave a shared path"
            )
        try:
            alternatives = all_common(glob_a.items, glob_b.items)
        except TooManyAlternatives:
            return _witnessed([common], region, scope_a, scope_b) or _doubt(
                region, common, "the globs align in too many ways to check out-of-scope globs"
            )
        uncovered = [alt for alt in alternatives if not any(included(alt, e.items) for e in excludes)]
        if not uncovered:
            return None
        return _witnessed(uncovered, region, scope_a, scope_b) or _doubt(
            region, uncovered[0], "out-of-scope globs do not fully cover the shared region"
        )


def _quick_witness(glob_a: GlobPattern, glob_b: GlobPattern, scope_a: Scope, scope_b: Scope) -> str | None:
    """A shared path found without searching, for the cases that dominate large plans.

    A glob with no literal prefix (`*.md`) meets every other glob below it,
    so "the other's example, then ours" usually works; only a path both
    scopes really match is returned, so a guess can never be wrong.
    """
    candidates = [glob_a.example, glob_b.example]
    if not glob_b.literal_prefix:
        candidates.append(f"{glob_a.example}/{glob_b.example}")
    if not glob_a.literal_prefix:
        candidates.append(f"{glob_b.example}/{glob_a.example}")
    for path in candidates:
        if not below_a_file(path) and scope_a.matches(path) and scope_b.matches(path):
            return path
    return None


def _witnessed(alternatives: Sequence[Items], region: str, scope_a: Scope, scope_b: Scope) -> _Verdict | None:
    """A proven conflict when some example path of the region is really in both scopes."""
    for alt in alternatives:
        for variant in (0, 1):
            path = example_path(alt, variant)
            if not below_a_file(path) and scope_a.matches(path) and scope_b.matches(path):
                return _Verdict((f"{region} (e.g. {path})",), f"globs can both match {path}", True)
    return None


def _doubt(region: str, alt: Items, why: str) -> _Verdict:
    shape = describe(alt)
    return _Verdict((f"{region} (within {shape})",), f"cannot prove disjoint: {why}", False)
