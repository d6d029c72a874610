"""Scope matching and overlap detection, against pathspec's real matcher."""

from __future__ import annotations

import random

import pytest

from herd.errors import BadInput
from herd.run.globs import below_a_file
from herd.run.scope import Overlap, Scope, find_overlaps, path_outside


def pairs(overlaps: list[Overlap]) -> set[tuple[str, str]]:
    return {(o.a, o.b) for o in overlaps}


def glob_overlap(a: Scope, b: Scope) -> bool:
    """Overlap by glob reasoning only (no tracked files)."""
    return bool(find_overlaps({"a": a, "b": b}, []))


def s(*include: str, exclude: tuple[str, ...] = ()) -> Scope:
    return Scope(include, exclude)


# --- Scope.matches / path_outside ---------------------------------------------


def test_matches_include_minus_exclude() -> None:
    scope = s("src/**", exclude=("src/core/**",))
    assert scope.matches("src/auth/x.py")
    assert not scope.matches("src/core/x.py")
    assert not scope.matches("docs/a.md")


def test_unscoped_matches_everything_but_excludes() -> None:
    scope = s(exclude=("secrets/**",))
    assert scope.unscoped
    assert scope.matches("anything/at/all.txt")
    assert not scope.matches("secrets/key")


def test_directory_glob_covers_everything_below() -> None:
    assert s("src/auth").matches("src/auth/deep/x.py")
    assert s("src/auth/").matches("src/auth/deep/x.py")
    assert not s("src/auth/").matches("src/auth")  # trailing slash: only a directory
    assert s("src/*").matches("src/auth/deep/x.py")


def test_anchoring() -> None:
    assert s("a.py").matches("deep/down/a.py")
    assert not s("/a.py").matches("deep/down/a.py")
    assert s("/a.py").matches("a.py")


def test_path_outside_lists_disallowed_paths_in_order() -> None:
    scope = s("src/auth/*.py", "tests/auth/", exclude=("src/auth/legacy.py",))
    changed = ["src/auth/a.py", "src/core/b.py", "tests/auth/t.py", "src/auth/legacy.py"]
    assert path_outside(scope, changed) == ["src/core/b.py", "src/auth/legacy.py"]


def test_bad_glob_is_bad_input() -> None:
    with pytest.raises(BadInput):
        Scope(("src/x\\",))


def test_scope_is_hashable_even_from_lists() -> None:
    scope = Scope(["a/*"], ["a/b"])  # type: ignore[arg-type]
    assert hash(scope) == hash(Scope(("a/*",), ("a/b",)))


# --- glob reasoning: conflicts that must be found -----------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/auth/**", "src/**/*.py"),
        ("*.py", "src/a.py"),
        ("a/**/b/*.py", "a/x/b/c.py"),
        ("a/**/b/*.py", "a/*/b/c*.py"),
        ("a/**/b/*.py", "a/b/[cd].py"),  # `**` matches zero segments
        ("src/", "src/x/y.py"),  # trailing slash covers everything below
        ("src", "src/x/y.py"),
        ("/src/auth/", "src/auth/x.py"),
        ("auth/", "src/auth/x.py"),  # no inner slash: any depth
        ("src/[a-c]*.py", "src/b?.py"),
        ("src/[!x]*.py", "src/y.py"),
        ("**/test_*.py", "tests/unit/test_scope.py"),
        ("**", "docs/a.md"),
        ("docs/*.md", "docs/"),
    ],
)
def test_intersecting_globs_conflict(a: str, b: str) -> None:
    assert glob_overlap(s(a), s(b)), (a, b)
    assert glob_overlap(s(b), s(a)), (b, a)


# --- glob reasoning: precision on the common disjoint cases -------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("src/auth/*.py", "src/core/*.py"),
        ("docs/*.md", "docs/*.txt"),
        ("src/auth/**", "src/core/**"),
        ("/a.py", "src/a.py"),  # anchored at the root
        ("src/[a-c]*.py", "src/[d-f]*.py"),
        ("src/[!a]", "src/a"),
        ("a/*/b/*.py", "a/x/c.py"),
        ("a/**/b/*.py", "c/b/x.py"),
    ],
)
def test_disjoint_globs_do_not_conflict(a: str, b: str) -> None:
    assert not glob_overlap(s(a), s(b)), (a, b)
    assert not glob_overlap(s(b), s(a)), (b, a)


def test_trailing_slash_directory_still_overlaps_plain_name() -> None:
    # `src/auth` matches the directory too, so both cover src/auth/x.
    assert glob_overlap(s("src/auth/"), s("src/auth"))


# --- exclusion -----------------------------------------------------------------


def test_exclude_that_covers_the_intersection_removes_the_conflict() -> None:
    a = s("src/**", exclude=("src/core/**",))
    assert not glob_overlap(a, s("src/core/*.py"))
    assert not glob_overlap(s("src/core/*.py"), a)


def test_double_star_directory_exclude_leaves_top_level_files() -> None:
    # Regression: `**/` collapsed wrongly once, excluding everything.
    assert glob_overlap(s("*.py"), s("/a*", exclude=("**/",)))


def test_exclude_on_either_side_counts() -> None:
    assert not glob_overlap(s("*.md"), s("docs/**", exclude=("*.md",)))


def test_partial_exclude_is_reported_as_unproven() -> None:
    a = s("src/**", exclude=("src/core/*.py",))
    (overlap,) = find_overlaps({"a": a, "b": s("src/core/**")}, [])
    # src/core/x (not .py) is in both: a concrete witness exists.
    assert overlap.reason.startswith("globs can both match")
    assert not a.matches("src/core/x.py")


def test_exclude_that_cannot_be_reasoned_about_is_conservative() -> None:
    # The excludes leave nothing of b, but only their union shows it.
    a = s("src/**", exclude=("src/a/**", "src/b/**"))
    b = s("src/[ab]/x.py")
    (overlap,) = find_overlaps({"a": a, "b": b}, [])
    assert overlap.reason.startswith("cannot prove disjoint"), overlap
    assert "src/**" in overlap.paths[0]


def test_exclusion_is_exact_for_tracked_files() -> None:
    a = s("src/**", exclude=("src/core/generated_*.py",))
    b = s("src/core/*.py")
    assert find_overlaps({"a": a, "b": b}, ["src/core/generated_1.py"])
    # The file match is excluded, but the globs still share src/core/other.py.
    (overlap,) = find_overlaps({"a": a, "b": b}, ["src/core/generated_1.py"])
    assert overlap.reason.startswith("globs can both match")


# --- tracked files ---------------------------------------------------------------


def test_file_matching_both_is_reported_with_examples() -> None:
    files = [f"src/pkg/m{n}.py" for n in range(8)] + ["README.md"]
    overlaps = find_overlaps({"x": s("src/pkg/*.py"), "y": s("src/pkg/m[0-6].py")}, files)
    (overlap,) = overlaps
    assert overlap.reason == "both match 7 tracked files"
    assert overlap.paths == (
        "src/pkg/m0.py",
        "src/pkg/m1.py",
        "src/pkg/m2.py",
        "src/pkg/m3.py",
        "src/pkg/m4.py",
    )


def test_negated_include_is_honoured_for_files_and_conservative_for_globs() -> None:
    a = s("src/**", "!src/gen/**")
    b = s("src/gen/*.py")
    # No file matches both; glob reasoning ignores the negation and reports a doubt.
    (overlap,) = find_overlaps({"a": a, "b": b}, ["src/gen/x.py"])
    assert overlap.reason.startswith("cannot prove disjoint")


# --- unscoped and ordering -------------------------------------------------------


def test_unscoped_tasks_are_skipped() -> None:
    scopes = {"free": s(), "a": s("src/a/**"), "b": s("src/b/**")}
    assert find_overlaps(scopes, ["src/a/x.py", "src/b/y.py"]) == []


def test_pairs_follow_input_order() -> None:
    scopes = {"z": s("src/**"), "m": s("docs/**"), "a": s("src/x.py"), "b": s("**/*.md")}
    overlaps = find_overlaps(scopes, ["docs/i.md"])
    # Not ("a", "b"): src/x.py names a file, so no .md can sit below it.
    assert [(o.a, o.b) for o in overlaps] == [("z", "a"), ("z", "b"), ("m", "b")]


# --- soundness: a randomized property test ---------------------------------------

SEGMENTS = ["a", "b", "ab", "x.py", "y.md", "a.py"]
GLOB_SEGMENTS = ["a", "b", "*", "**", "*.py", "a*", "?", "[ab]", "[!a]*", "x.py", "*b"]


WHOLE_GLOBS = ["**/", "*/", "**", "*", "**/**/", "a/**/", "/*/"]


def random_glob(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(WHOLE_GLOBS)
    segs = [rng.choice(GLOB_SEGMENTS) for _ in range(rng.randint(1, 3))]
    glob = "/".join(segs)
    roll = rng.random()
    if roll < 0.15:
        glob = "/" + glob
    elif roll < 0.3:
        glob += "/"
    return glob


def random_path(rng: random.Random) -> str:
    return "/".join(rng.choice(SEGMENTS) for _ in range(rng.randint(1, 4)))


def random_scope(rng: random.Random) -> Scope:
    include = tuple(random_glob(rng) for _ in range(rng.randint(1, 2)))
    exclude = tuple(random_glob(rng) for _ in range(rng.choice([0, 0, 1, 2])))
    return Scope(include, exclude)


def test_glob_reasoning_never_misses_a_conflict() -> None:
    rng = random.Random(20240611)
    paths = sorted({p for p in (random_path(rng) for _ in range(600)) if not below_a_file(p)})
    checked = 0
    for _ in range(1500):
        a, b = random_scope(rng), random_scope(rng)
        shared = [p for p in paths if a.matches(p) and b.matches(p)]
        reported = glob_overlap(a, b)
        if shared:
            checked += 1
            assert reported, (a, b, shared[:3])
    assert checked > 200  # the generator really produces conflicts to check


def test_file_like_globs_name_files_not_directories() -> None:
    # git would let `*.md` and `src/a/*.py` share `src/a/x.py/y.md`; scopes name files.
    assert not glob_overlap(s("*.md"), s("src/a/*.py"))
    assert glob_overlap(s("docs/*.md"), s("docs/**"))
    assert glob_overlap(s("src/*"), s("src/a/x.py"))  # `*` may be a directory
    assert glob_overlap(s("src/a"), s("src/a/b.py"))


def test_glob_reasoning_is_precise_for_anchored_literals() -> None:
    rng = random.Random(7)
    for _ in range(300):
        x, y = random_path(rng), random_path(rng)
        if below_a_file(x) or below_a_file(y):
            continue
        a, b = s("/" + x), s("/" + y)
        related = x == y or x.startswith(y + "/") or y.startswith(x + "/")
        assert glob_overlap(a, b) == related, (x, y)


@pytest.mark.parametrize(
    ("a", "b", "example"),
    [
        ("src/auth/**", "src/**/*.py", "src/auth/x.py"),
        ("a/**/b/*.py", "a/b/[cd].py", "a/b/c.py"),  # `**` standing for no segment
        ("/docs/x.md", "*.md", "docs/x.md"),
    ],
)
def test_reported_example_is_the_simplest_shared_path(a: str, b: str, example: str) -> None:
    (overlap,) = find_overlaps({"a": s(a), "b": s(b)}, [])
    assert overlap.reason == f"globs can both match {example}"
    assert overlap.paths == (f"{a} ∩ {b} (e.g. {example})",)


def test_matches_is_pathspecs_gitignore_matcher() -> None:
    """Scope shares compiled regexes between globs that differ in their literal text; the
    answer must stay pathspec's own, negations, escapes and odd characters included."""
    import pathspec

    rng = random.Random(5)
    odd = [
        "a|b/c",
        "a+b/*.py",
        "x\\*y",
        "a b/x\\ ",
        "[!a]/b",
        "/x.py",
        "src/**/?.md",
        "*/",
        "a{1}/b",
        "a.b/(c)",
        "**/b/",
        "**",
        "a/b/x.py",
        "a/b/",
        "a-1/b.c/**",
        "!a/b/**",
        "a/b/c",
        "a/b/**/x.md",
        "a/#b",
        "a/b\\ ",
        "a/./b",
        "a/../b",
    ]
    globs = [*odd, *(random_glob(rng) for _ in range(400))]
    paths = [
        *(random_path(rng) for _ in range(300)),
        "a|b/c",
        "a+b/x.py",
        "x*y",
        "a b/x ",
        "b/b",
        "a{1}/b",
        "a.b/(c)/d",
        "src/q/x.md",
        "a/b/x.py",
        "a-1/b.c/d",
        "a/b/c/q",
        "a/b/q/x.md",
        "a/#b",
        "a/b ",
        "a/b",
    ]
    for n in range(600):
        include = [rng.choice(globs) for _ in range(rng.randint(1, 3))]
        exclude = [rng.choice(globs) for _ in range(rng.choice([0, 1, 2]))]
        if n % 3 == 0:
            include.append("!" + rng.choice(globs))
        scope = Scope(tuple(include), tuple(exclude))
        want_in = pathspec.GitIgnoreSpec.from_lines(include)
        want_out = pathspec.GitIgnoreSpec.from_lines(exclude)
        for path in paths:
            expected = want_in.match_file(path) and not want_out.match_file(path)
            assert scope.matches(path) == expected, (include, exclude, path)


def test_glob_models_built_per_shape_are_the_globs_own() -> None:
    """parse_pattern models `src/a/*.py` as `x/x/*.py` with the names put back: the same
    items as modelling the glob itself."""
    from herd.run.globs import parse_pattern, parse_pattern_itself

    rng = random.Random(11)
    names = ["src", "a", "b-1", "x.py", "pkg_2", "v1.2"]
    globs = [
        "a/",
        "a/b/",
        "a/**",
        "a/b/**/",
        "a//b",
        "a/ ",
        "a/b\\ ",
        "a/#b",
        "!a/b",
        "/a/b",
        "a/**/b",
        "a/*",
        "a/b.md",
        "a/b/c",
        "x/y",
        "x/",
    ]
    for _ in range(800):
        head = "/".join(rng.choice(names) for _ in range(rng.randint(1, 3)))
        globs.append(f"{head}/{random_glob(rng).lstrip('/')}")
    for glob in globs:
        shaped, itself = parse_pattern(glob), parse_pattern_itself(glob)
        assert (shaped and (shaped.text, shaped.items)) == (itself and (itself.text, itself.items)), glob
