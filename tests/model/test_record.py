"""Records (``sqlsafe._record``): construction through the compiled ``__init__``."""

from __future__ import annotations

import pytest

from sqlsafe import _record
from sqlsafe._record import FrozenInstanceError, MutableRecord, Record, field, record, replace


@record
class Shape(Record):
    name: str
    values: tuple[str, ...]  # the name of a local of the generated __init__ once: a real bug
    self_: int = 0
    kind: str = "enum"


@record
class Empty(Record):
    pass


def test_fields_positional_keyword_and_defaults() -> None:
    a = Shape("mood", ("sad", "ok"))
    b = Shape(name="mood", values=("sad", "ok"), kind="enum")
    assert a == b and hash(a) == hash(b)
    assert a.values == ("sad", "ok") and a.self_ == 0 and a.kind == "enum"
    assert Shape("x", (), 3).self_ == 3
    assert repr(Empty()) == "Empty()" and Empty() == Empty()


def test_the_compiled_init_behaves_as_the_loop() -> None:
    @record
    class Hot(Record):
        name: str
        values: tuple[str, ...] = ()
        self_: int = 0

    @record
    class HotBag(MutableRecord):
        items: list[str] = field(default_factory=list)
        count: int = 0

    first = [Hot("a"), Hot("b", ("x",)), Hot(name="c", self_=2)]
    assert Hot.__init__ is not _record._Base.__init__
    for _ in range(_record.COMPILE_AFTER):
        Hot("warm")
        HotBag()
    assert Hot.__init__.__qualname__.endswith("Hot.__init__")  # compiled by now
    again = [Hot("a"), Hot("b", ("x",)), Hot(name="c", self_=2)]
    assert first == again and again[2].values == () and again[2].self_ == 2
    bags = [HotBag(), HotBag()]
    assert bags[0].items == [] and bags[0].items is not bags[1].items
    with pytest.raises(TypeError):
        Hot()
    with pytest.raises(TypeError):
        Hot("a", bogus=1)


def test_wrong_arguments_raise_type_error() -> None:
    with pytest.raises(TypeError):
        Shape("mood")
    with pytest.raises(TypeError):
        Shape("mood", (), bogus=1)
    with pytest.raises(TypeError):
        Shape("mood", (), 1, "enum", "extra")


def test_frozen_and_replace() -> None:
    a = Shape("mood", ("sad",))
    with pytest.raises(FrozenInstanceError):
        a.name = "other"  # type: ignore[misc]
    b = replace(a, values=("sad", "ok"))
    assert b.values == ("sad", "ok") and b.name == "mood" and a.values == ("sad",)


@record
class Bag(MutableRecord):
    name: str
    items: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    count: int = 0


def test_mutable_records_assign_and_get_fresh_defaults() -> None:
    a, b = Bag("a"), Bag("a")
    assert a == b and a.items == [] and a.items is not b.items  # each its own list
    a.items.append("x")
    a.count = 2
    assert a != b and (a.items, a.count) == (["x"], 2) and b.items == []
    with pytest.raises(TypeError):
        hash(a)  # equal by value and mutable: unhashable, as a plain dataclass
    given = ["y"]
    assert Bag("c", given).items is given and Bag(name="d", count=1).seen == set()
    c = replace(a, name="c")
    assert (c.name, c.items, c.count) == ("c", ["x"], 2)


@record
class Late(MutableRecord):
    first: int = 0
    second: list[int] = field(default_factory=list)
    third: int = 0


def test_factory_between_plain_defaults_and_repr() -> None:
    assert Late(1).second == [] and Late(1, [2], 3).third == 3
    assert repr(Late()) == "Late(first=0, second=[], third=0)"


def test_equality_and_hash_read_every_field_in_order() -> None:
    @record
    class One(Record):
        only: int

    @record
    class Two(Record):
        a: int
        b: str = "x"

    assert One(1) == One(1) and One(1) != One(2) and hash(One(1)) == hash(One(1))
    assert One(1)._values() == (1,) and Empty()._values() == ()
    assert Two(1)._values() == (1, "x") and Two(1, "y") != Two(1, "x")
    assert Two(1) != One(1) and hash(Two(1)) == hash(Two(1, "x"))
    nan = float("nan")
    same = Two(1, nan)  # type: ignore[arg-type]
    # As tuples compare: an object equals itself, a NaN field another record's NaN only
    # when it is the same object.
    assert same == same and same == Two(1, nan)  # type: ignore[arg-type]
    assert same != Two(1, float("nan"))  # type: ignore[arg-type]
