"""Shared by the parse tests: where two pglast trees differ."""

from __future__ import annotations

from typing import Any


def tree_difference(a: Any, b: Any, *, strict: bool = False, path: str = "") -> str | None:
    """The first place where two trees differ, or None. Not ``strict``: location slots are
    skipped (-1 or None both mean "unknown", and positions are not read from trees); strict:
    every slot, locations and the printer's ``ancestors`` included."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, tuple):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = tree_difference(x, y, strict=strict, path=f"{path}[{i}]")
            if found:
                return found
        return None
    if hasattr(a, "__slots__") and not isinstance(a, (str, int, float)):
        slots = (*a, "ancestors") if strict else (s for s in a if "location" not in s)
        for slot in slots:
            found = tree_difference(getattr(a, slot), getattr(b, slot), strict=strict,
                                    path=f"{path}.{slot}")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"
