"""Records (``sqlsafe._record``): construction through the compiled ``__init__``."""

from __future__ import annotations

import pytest

from sqlsafe._record import FrozenInstanceError, Record, record, replace


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
