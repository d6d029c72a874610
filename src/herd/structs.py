"""Record classes declared like dataclasses, built without the `dataclasses` module.

`herd map` starts a process per call, and its start is part of every short map's time:
importing `dataclasses` (with the `inspect`, `ast`, `dis` and `tokenize` it pulls in) and
building a dataclass (six generated methods, each compiled) cost its start ~12 ms, a fifth
of it. A `@struct` class compiles one method, its `__init__`, when it is first called
(kept generated: jobs and results are made once per job); `__repr__`, `__eq__` and the
frozen guard are shared.
Type checkers see these classes as dataclasses, through `dataclass_transform`.

    @struct(frozen=True)
    class Job:
        key: str
        argv: tuple[str, ...]
        env: dict[str, str] = field(default_factory=dict)

        def __post_init__(self) -> None: ...   # called by __init__, as dataclasses do

`replace(record, **changes)` and `fields(record)` stand for their dataclasses namesakes.
A subclass of a struct is a struct (`@struct`, or no decorator to add no field); never
`@dataclass`, which does not see a struct's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["field", "fields", "replace", "struct"]

_T = TypeVar("_T")
_MISSING: Any = object()


class _Field:
    """A field's default: a value, or a factory called for each record."""

    __slots__ = ("default", "factory", "metadata")

    def __init__(self, default: Any, factory: Callable[[], Any] | None, metadata: dict[str, Any]) -> None:
        self.default, self.factory, self.metadata = default, factory, metadata


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """A field's default, as `dataclasses.field`; `metadata` is read back with `fields`."""
    return _Field(default, default_factory, metadata or {})


class Field:
    """One field of a struct, in declaration order."""

    __slots__ = ("default", "factory", "kw_only", "metadata", "name")

    def __init__(
        self,
        name: str,
        default: Any,
        factory: Callable[[], Any] | None,
        kw_only: bool,
        metadata: dict[str, Any],
    ) -> None:
        self.name, self.default, self.factory = name, default, factory
        self.kw_only, self.metadata = kw_only, metadata

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def fields(record: object) -> tuple[Field, ...]:
    """The fields of a struct class or instance, in declaration order (its bases' first)."""
    found: tuple[Field, ...] | None = getattr(record, "__struct_fields__", None)
    if found is None:
        raise TypeError(f"{record!r} is not a struct")
    return found


def replace(record: _T, /, **changes: Any) -> _T:
    """A copy of `record` with `changes`, made by its `__init__` (so `__post_init__` runs)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {sorted(unknown)[0]!r}")
    return type(record)(**{**values, **changes})


def _repr(self: object) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
    return f"{type(self).__name__}({shown})"


def _values(self: object) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in fields(self))


def _eq(self: object, other: object) -> Any:
    if type(other) is not type(self):
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: object) -> int:
    return hash(_values(self))


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen: cannot assign to {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")


def _build(cls: type[_T], frozen: bool, kw_only: bool, eq: bool) -> type[_T]:
    inherited: dict[str, Field] = {f.name: f for f in getattr(cls, "__struct_fields__", ())}
    for name, annotation in cls.__annotations__.items():  # its own (Python >= 3.10)
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            inherited[name] = Field(name, value.default, value.factory, kw_only, value.metadata)
        else:
            inherited[name] = Field(name, value, None, kw_only, {})
        if value is not _MISSING:
            delattr(cls, name)
    all_fields = tuple(inherited.values())
    methods: dict[str, Any] = {
        "__struct_fields__": all_fields,
        "__init__": _first_init(frozen),
    }
    if "__repr__" not in cls.__dict__:
        methods["__repr__"] = _repr
    if eq and "__eq__" not in cls.__dict__:
        # As dataclasses do: frozen and equal means hashable by value; mutable, not hashable.
        methods.update(__eq__=_eq, __hash__=_hash if frozen else None)
    if frozen:
        methods.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr)
    for name, value in methods.items():
        setattr(cls, name, value)
    return cls


def _first_init(frozen: bool) -> Callable[..., None]:
    """The class's `__init__` until it is first called: then the real one is compiled,
    put in its place, and called. A class never instantiated compiles nothing (most
    event kinds, in any one run)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        init = _make_init(cls, fields(cls), frozen)
        cls.__init__ = init
        init(self, *args, **kwargs)

    return __init__


def _make_init(cls: type, all_fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """`__init__(self, a, b=<default>, *, c=<default>)`, compiled once for the class: a
    default factory is called per record, as dataclasses do."""
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for n, f in enumerate(all_fields):
        if f.factory is not None:
            namespace[f"_factory{n}"] = f.factory
            parameter = f"{f.name}=_MISSING"
            value = f"_factory{n}() if {f.name} is _MISSING else {f.name}"
        elif f.default is not _MISSING:
            namespace[f"_default{n}"] = f.default
            parameter, value = f"{f.name}=_default{n}", f.name
        else:
            parameter, value = f.name, f.name
        (keyword if f.kw_only else positional).append(parameter)
        body.append(f"_set(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    parameters = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({parameters}):\n    " + "\n    ".join(body or ["pass"]) + "\n"
    exec(source, namespace)  # our own source, built from the field names
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


@overload
@dataclass_transform(field_specifiers=(field,))
def struct(cls: type[_T], /) -> type[_T]: ...


@overload
def struct(
    *, frozen: bool = False, kw_only: bool = False, eq: bool = True
) -> Callable[[type[_T]], type[_T]]: ...


def struct(
    cls: type[_T] | None = None, /, *, frozen: bool = False, kw_only: bool = False, eq: bool = True
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Make `cls` a record of its annotated fields (and its struct bases'), like
    `dataclasses.dataclass` with the same `frozen`, `kw_only` and `eq`."""
    if cls is not None:
        return _build(cls, frozen, kw_only, eq)
    return lambda inner: _build(inner, frozen, kw_only, eq)
