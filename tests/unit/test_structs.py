"""herd.structs: records declared like dataclasses behave like them where herd relies on
it (construction, defaults, frozen, equality, hashing, replace, pickling)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any, ClassVar, cast

import pytest

from herd.structs import field, fields, replace, struct


@struct(frozen=True)
class Job:
    """A frozen one, positional or by keyword."""

    key: str
    argv: tuple[str, ...]
    timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict, metadata={"note": "merged"})
    LIMIT: ClassVar[int] = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))


@struct
class Counter:
    name: str
    seen: int = 0


@struct(eq=False)
class Handle:
    fd: int


@struct(frozen=True, kw_only=True)
class Base:
    ts: float = 0.0


@struct(frozen=True, kw_only=True)
class Child(Base):
    task: str


@dataclasses.dataclass(frozen=True)
class Twin:
    """The same fields as a dataclass, to compare with."""

    key: str
    argv: tuple[str, ...]
    timeout: float | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)


def test_it_is_built_and_compared_as_a_dataclass_is() -> None:
    job = Job("a", ["x", "y"], env={"K": "v"})  # type: ignore[arg-type]
    twin = Twin("a", ("x", "y"), env={"K": "v"})
    assert job.argv == ("x", "y")  # __post_init__ ran
    assert repr(job).replace("Job", "Twin") == repr(twin)
    assert job == Job(key="a", argv=("x", "y"), env={"K": "v"})
    assert job != Job("b", ("x", "y"))
    assert job != cast(Any, twin)  # another class, as dataclasses say
    assert Job("a", ()).env is not Job("a", ()).env  # a fresh default each time
    assert [f.name for f in fields(Job)] == ["key", "argv", "timeout", "env"]
    assert fields(job)[3].metadata == {"note": "merged"}
    assert Job.LIMIT == 3
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'argv'"):
        Job("a")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        Job("a", (), bogus=1)  # type: ignore[call-arg]


def test_frozen_ones_refuse_changes_and_hash_by_value() -> None:
    job = Job("a", ("x",))
    with pytest.raises(AttributeError, match="frozen"):
        job.key = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del job.key
    assert hash(Child(task="t")) == hash(Child(task="t"))
    assert Counter.__hash__ is None  # mutable and equal by value: unhashable, as dataclasses
    assert Handle(3) != Handle(3)  # eq=False: identity
    counter = Counter("c")
    counter.seen += 1
    assert counter == Counter("c", 1)


def test_replace_makes_a_new_record_through_init() -> None:
    job = Job("a", ("x",), timeout=5.0)
    changed = replace(job, argv=["y"], timeout=None)
    assert changed == Job("a", ("y",))
    assert job.timeout == 5.0
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(job, nope=1)
    with pytest.raises(TypeError, match="not a struct"):
        replace(Twin("a", ()), key="b")


def test_fields_of_a_subclass_follow_its_bases() -> None:
    child = Child(task="t", ts=2.0)
    assert [f.name for f in fields(child)] == ["ts", "task"]
    assert child == Child(ts=2.0, task="t")
    with pytest.raises(TypeError):
        cast(Any, Child)("t")  # keyword-only


def test_pickled_and_back() -> None:
    for record in (Job("a", ("x",), env={"K": "v"}), Child(task="t"), Counter("c", 2)):
        assert pickle.loads(pickle.dumps(record)) == record
