"""Graph algorithms over plain ids: paths, cycles (one per component), trees."""

from __future__ import annotations

from herd.queue.graph import adjacency, cycles, path_between, tree_lines


def test_adjacency_keeps_edge_order() -> None:
    graph = adjacency([("a", "b"), ("a", "c"), ("b", "c")])
    assert graph == {"a": ["b", "c"], "b": ["c"]}


def test_path_between() -> None:
    graph = adjacency([("a", "b"), ("b", "c"), ("c", "d"), ("x", "d")])
    assert path_between(graph, "a", "d") == ["a", "b", "c", "d"]
    assert path_between(graph, "d", "a") is None
    assert path_between(graph, "a", "a") == ["a"]
    assert path_between(graph, "x", "c") is None


def test_path_between_survives_deep_chains() -> None:
    chain = adjacency((f"n{i}", f"n{i + 1}") for i in range(20_000))
    path = path_between(chain, "n0", "n20000")
    assert path is not None and len(path) == 20_001


def test_no_cycles_in_a_dag() -> None:
    assert cycles(adjacency([("a", "b"), ("b", "c"), ("a", "c")])) == []
    assert cycles({}) == []


def test_each_cycle_reported_once_smallest_id_first() -> None:
    graph = adjacency(
        [
            ("c", "a"),
            ("a", "b"),
            ("b", "c"),  # a -> b -> c -> a
            ("x", "y"),
            ("y", "x"),  # x <-> y
            ("s", "s"),  # self loop
            ("b", "q"),
            ("q", "r"),
        ]
    )  # tails are not cycles
    assert cycles(graph) == [["a", "b", "c", "a"], ["s", "s"], ["x", "y", "x"]]


def test_cycle_picks_a_short_loop_in_a_tangled_component() -> None:
    graph = adjacency([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("b", "a")])
    assert cycles(graph) == [["a", "b", "a"]]


def test_cycles_on_a_large_ring() -> None:
    ring = adjacency((f"n{i:05d}", f"n{(i + 1) % 5000:05d}") for i in range(5000))
    (found,) = cycles(ring)
    assert found[0] == found[-1] == "n00000" and len(found) == 5001


def test_tree_lines_marks_repeats_and_missing() -> None:
    children = {
        "a": [("b", "blocks"), ("c", "parent-child")],
        "b": [("c", "blocks")],
        "c": [("ghost", "blocks")],
    }
    labels = {"a": "A", "b": "B", "c": "C"}
    assert tree_lines("a", children, labels) == [
        "A",
        "├── B [blocks]",
        "│   └── C [blocks]",
        "│       └── ghost (not in store) [blocks]",
        "└── C [parent-child] (shown above)",
    ]
