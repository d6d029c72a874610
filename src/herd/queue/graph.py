"""Dependency-graph algorithms over plain ids (no I/O): cycles, reachability, trees."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

Adjacency = Mapping[str, Sequence[str]]


def adjacency(edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """issue -> the ids it depends on."""
    out: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        out[source].append(target)
    return out


def path_between(graph: Adjacency, start: str, goal: str) -> list[str] | None:
    """A dependency path start -> ... -> goal, or None (iterative DFS: deep graphs are fine)."""
    if start == goal:
        return [start]
    parents: dict[str, str] = {start: start}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt in parents:
                continue
            parents[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            stack.append(nxt)
    return None


def cycles(graph: Adjacency) -> list[list[str]]:
    """One concrete cycle per strongly connected component that has one, each as
    [a, b, ..., a], smallest id first; sorted so output is stable."""
    found = []
    for component in _strongly_connected(graph):
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        sub = {n: [m for m in graph.get(n, ()) if m in members] for n in component}
        if start in sub[start]:
            found.append([start, start])
            continue
        best: list[str] | None = None
        for nxt in sorted(sub[start]):
            back = path_between(sub, nxt, start)
            if back and (best is None or len(back) < len(best) - 1):
                best = [start, *back]
        if best:
            found.append(best)
    return sorted(found)


def _strongly_connected(graph: Adjacency) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    nodes = set(graph)
    for targets in graph.values():
        nodes.update(targets)
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def tree_lines(
    root: str,
    children: Mapping[str, Sequence[tuple[str, str]]],
    label: Mapping[str, str],
    max_depth: int = 50,
) -> list[str]:
    """An indented dependency tree for `dep tree` (each node's dependencies below it)."""
    lines = [label.get(root, root)]
    seen = {root}

    def walk(node: str, prefix: str, depth: int) -> None:
        kids = children.get(node, ())
        for i, (child, dep_type) in enumerate(kids):
            last = i == len(kids) - 1
            branch = "└── " if last else "├── "
            repeat = " (shown above)" if child in seen else ""
            lines.append(
                f"{prefix}{branch}{label.get(child, child + ' (not in store)')} [{dep_type}]{repeat}"
            )
            if child not in seen and depth < max_depth:
                seen.add(child)
                walk(child, prefix + ("    " if last else "│   "), depth + 1)

    walk(root, "", 1)
    return lines


def cyclic_nodes(graph: Adjacency) -> set[str]:
    """Every id that lies on some cycle (members of a strongly connected component with one)."""
    nodes: set[str] = set()
    for component in _strongly_connected(graph):
        if len(component) > 1 or component[0] in graph.get(component[0], ()):
            nodes.update(component)
    return nodes
