"""find_overlaps on 1,000 tasks over a 10,000-file tree, against the naive floor.

The baseline is what any approach that matches each task's spec over the whole
tree pays before it even compares tasks: one compiled
`pathspec.PathSpec.match_files` per task. Run:

    PYTHONPATH=src python bench/bench_scope.py
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import pathspec

from herd.run.scope import Scope, find_overlaps

PACKAGES = 50
MODULES = 10  # per package
FILES_PER_MODULE = 16
TASKS = 1_000


def build_tree() -> list[str]:
    """src/pkgP/modM/file_N.py, tests/pkgP/test_modM_N.py, docs/pkgP/*.md: 10,000 paths."""
    files: list[str] = []
    for p in range(PACKAGES):
        for m in range(MODULES):
            files += [f"src/pkg{p}/mod{m}/file_{n}.py" for n in range(FILES_PER_MODULE)]
            files += [f"tests/pkg{p}/test_mod{m}_{n}.py" for n in range(3)]
        files += [f"docs/pkg{p}/page_{n}.md" for n in range(PACKAGES)]
    files += [f"tools/script_{n}.sh" for n in range(10_000 - len(files))]
    return files[:10_000]


def build_tasks(rng: random.Random) -> dict[str, Scope]:
    """Mostly disjoint scopes (per module, per file range), a few overlapping and global."""
    tasks: dict[str, Scope] = {}
    for n in range(TASKS):
        p, m = (n // 2) % PACKAGES, (n // 2 // PACKAGES) % MODULES
        half = "[0-7]" if n % 2 == 0 else "[89]*"
        roll = rng.random()
        if roll < 0.90:
            include = (f"src/pkg{p}/mod{m}/file_{half}.py", f"tests/pkg{p}/test_mod{m}_{n % 2}.py")
            scope = Scope(include)
        elif roll < 0.96:
            scope = Scope((f"src/pkg{p}/**",), (f"src/pkg{p}/mod{m}/**",))
        elif roll < 0.99:
            scope = Scope((f"src/pkg{p}/**/*.py", f"docs/pkg{p}/"))
        else:
            scope = Scope(("*.md",) if n % 2 else ("**/README.md", "docs/**/*.md"))
        tasks[f"t{n}"] = scope
    return tasks


def naive_floor(tasks: dict[str, Scope], files: list[str]) -> None:
    specs = [pathspec.PathSpec.from_lines("gitignore", scope.include) for scope in tasks.values()]
    for spec in specs:
        set(spec.match_files(files))


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    rng = random.Random(1)
    files = build_tree()
    tasks = build_tasks(rng)
    overlaps = find_overlaps(tasks, files)
    by_files = sum(1 for o in overlaps if o.reason.startswith("both match"))
    print(f"tree: {len(files)} paths, tasks: {len(tasks)}")
    from_globs = len(overlaps) - by_files
    print(f"overlaps: {len(overlaps)} ({by_files} from tracked files, {from_globs} from globs)")
    fast, fast_median = best_of(5, lambda: find_overlaps(tasks, files))
    floor, floor_median = best_of(3, lambda: naive_floor(tasks, files))
    report("find_overlaps", fast, fast_median)
    report("naive match_files floor", floor, floor_median)
    print(f"ratio (floor / find_overlaps): {floor / fast:.1f}x")


def report(label: str, best: float, median: float) -> None:
    print(f"{label + ':':26} best {best * 1000:8.1f} ms   median {median * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
