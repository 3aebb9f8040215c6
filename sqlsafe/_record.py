"""``@record``: value classes without dataclasses' start-up cost.

``@dataclass`` generates its methods per class by compiling source code, about 0.7 ms per class
on Python 3.11. The normalized model has some sixty classes, and the lint path twenty more,
which cost a pre-commit run (a fresh interpreter per commit) more than the lint itself.
``Record`` gives the behaviour of ``@dataclass(frozen=True)`` — keyword and positional
construction with defaults, immutability, equality, hashing, a readable repr,
``__match_args__`` — with shared methods built once; ``MutableRecord`` that of a plain
``@dataclass`` (assignable, equal by value, unhashable). ``field(default_factory=...)`` gives
each instance its own fresh default, as dataclasses' does.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, TypeVar, dataclass_transform

_MISSING: Any = object()
R = TypeVar("R", bound="_Base")
T = TypeVar("T")


class FrozenInstanceError(AttributeError):
    pass


class _Factory:
    """A default made afresh for each instance (``field``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """``dataclasses.field(default_factory=...)`` for records."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The field values, in order, from an instance's dict, as one C call for two fields or
    more (``itemgetter`` gives a bare value for one name, and takes no call for none)."""
    if len(names) >= 2:
        return itemgetter(*names)
    if names:
        one = itemgetter(names[0])
        return lambda values: (one(values),)
    return lambda _values: ()


class _Base:
    __record_fields__: tuple[str, ...] = ()
    __record_defaults__: dict[str, Any] = {}
    __record_values__ = staticmethod(_getter(()))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__record_fields__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes {len(names)} arguments, {len(args)} given")
        values = self.__dict__
        for name, value in zip(names, args):
            values[name] = value
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field '{name}'")
            if name in values:
                raise TypeError(f"{type(self).__name__} got '{name}' twice")
            values[name] = value
        if len(values) != len(names):
            defaults = self.__record_defaults__
            for name in names:
                if name not in values:
                    default = defaults.get(name, _MISSING)
                    if default is _MISSING:
                        raise TypeError(f"{type(self).__name__} is missing '{name}'")
                    values[name] = default.make() if type(default) is _Factory else default

    def _values(self) -> tuple[Any, ...]:
        return self.__record_values__(self.__dict__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={self.__dict__[name]!r}" for name in self.__record_fields__)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other is self:  # as a tuple compares its items: identity first
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Base)
        return self._values() == other._values()


class Record(_Base):
    """Frozen: ``@dataclass(frozen=True)``."""

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field '{name}'")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field '{name}'")


class MutableRecord(_Base):
    """Assignable: a plain ``@dataclass`` (equal by value, so not hashable)."""

    __hash__ = None  # type: ignore[assignment]


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[R]) -> type[R]:
    """Collect the annotated fields (base classes first) and their defaults."""
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        annotations = klass.__dict__.get("__annotations__", {})
        for name in annotations:
            if name.startswith("__"):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    cls.__record_fields__ = tuple(names)
    cls.__record_defaults__ = defaults
    cls.__record_values__ = staticmethod(_getter(cls.__record_fields__))
    # Each record gets its own __match_args__ here; mypy sees it neither declared on Record
    # nor assignable (it models the attribute @dataclass_transform synthesizes as read-only).
    cls.__match_args__ = tuple(names)  # type: ignore[attr-defined,misc]
    cls.__init__ = _first_init  # type: ignore[method-assign]
    return cls


# Constructions of a record class before it compiles its own ``__init__``.
COMPILE_AFTER = 8
_uses: dict[type, int] = {}


def _first_init(self: _Base, *args: Any, **kwargs: Any) -> None:
    """A record class used often compiles its own ``__init__`` (straight-line code, about
    three times faster than ``_Base.__init__``'s loops, and a lint builds thousands of
    records). Compiled on the ``COMPILE_AFTER``-th construction, not at class creation: a
    run pays only for the classes it uses much (compiling costs some hundred loop-built
    instances, and a one-file lint builds most classes a few times)."""
    cls = type(self)
    uses = _uses.get(cls, 0) + 1
    if uses < COMPILE_AFTER:
        _uses[cls] = uses
        _Base.__init__(self, *args, **kwargs)
        return
    init = _compile_init(cls)
    cls.__init__ = init  # type: ignore[method-assign]
    init(self, *args, **kwargs)


def _compile_init(cls: type[_Base]) -> Any:
    names = cls.__record_fields__
    defaults = cls.__record_defaults__
    params = []
    body = []
    for name in names:
        default = defaults.get(name, _MISSING)
        if type(default) is _Factory:
            params.append(f"{name}=__missing")
            body.append(f"    __values[{name!r}] = (__defaults[{name!r}].make() "
                        f"if {name} is __missing else {name})\n")
            continue
        if default is not _MISSING:
            params.append(f"{name}=__defaults[{name!r}]")
        elif params and "=" in params[-1]:
            return _Base.__init__  # a field without a default after one with: keep the loop
        else:
            params.append(name)
        body.append(f"    __values[{name!r}] = {name}\n")
    # The generated code's own names start with "__", which no field name does (``record``
    # skips those), so a field called "values" or "self" cannot shadow them.
    lines = "".join(body) or "    pass\n"
    source = (f"def __init__(__self, {', '.join(params)}):\n"
              f"    __values = __self.__dict__\n{lines}")
    namespace: dict[str, Any] = {"__defaults": defaults, "__missing": _MISSING}
    exec(compile(source, f"<record {cls.__name__}>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def replace(obj: Any, /, **changes: Any) -> Any:
    """``dataclasses.replace`` for records and dataclasses alike."""
    if isinstance(obj, _Base):
        unknown = set(changes) - set(obj.__record_fields__)
        if unknown:
            raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(unknown)}")
        return type(obj)(**{**obj.__dict__, **changes})
    import dataclasses

    return dataclasses.replace(obj, **changes)
