"""fastparse builds a node class's first nodes by walking its plan and compiles a builder
after that: both ways must build the very same trees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from model_helpers import tree_difference

from sqlsafe import fastparse

REPO = Path(__file__).resolve().parents[2]


def _trees(texts: list[str], compile_after: int, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    with monkeypatch.context() as m:
        m.setattr(fastparse, "_BUILDERS", {})
        m.setattr(fastparse, "COMPILE_AFTER", compile_after)
        return [fastparse.parse_script(text) for text in texts]


def _texts(root: Path) -> list[str]:
    out = []
    for p in sorted(root.rglob("*.sql")):
        text = p.read_text(encoding="utf-8", errors="replace")
        try:
            fastparse.parse_script(text)
        except Exception:
            continue
        out.append(text)
    return out


def _check(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert texts
    walked = _trees(texts, 10**9, monkeypatch)
    compiled = _trees(texts, 1, monkeypatch)
    mixed = _trees(texts, 3, monkeypatch)
    for text, w, c, x in zip(texts, walked, compiled, mixed):
        assert tree_difference(w, c, strict=True) is None, \
            (text[:80], tree_difference(w, c, strict=True))
        assert tree_difference(w, x, strict=True) is None, \
            (text[:80], tree_difference(w, x, strict=True))


def test_fixtures_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_texts(REPO / "fixtures"), monkeypatch)


def test_corpus_ok(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(_texts(corpus), monkeypatch)


def test_builders_are_compiled_after_some_nodes_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastparse, "_BUILDERS", {})
    monkeypatch.setattr(fastparse, "COMPILE_AFTER", 3)
    for i in range(1, 5):
        fastparse.parse_script("SELECT 1")
        compiled = fastparse._BUILDERS["SelectStmt"].__code__.co_filename == "<fastparse SelectStmt>"
        assert compiled == (i >= 3)
