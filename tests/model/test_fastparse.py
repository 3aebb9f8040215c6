"""fastparse builds the same pglast trees as pglast's own parse_sql (locations aside)."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_helpers import tree_difference
from pglast import parser

from sqlsafe import fastparse
from sqlsafe.model import Section
from sqlsafe.parse import parse_section
from sqlsafe.ruledocs import blocks

REPO = Path(__file__).resolve().parents[2]


def _statements(texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for name, text in texts:
        for st in parse_section(Section(name, text)).statements:
            if st.node is not None:
                out.append((name, st.sql))
    return out


def _check(statements: list[tuple[str, str]]) -> None:
    assert statements
    for name, sql in statements:
        slow = parser.parse_sql(sql)
        fast = fastparse.parse_sql(sql)
        found = tree_difference(slow, fast)
        assert found is None, f"{name}: {sql[:80]!r}: {found}"


def test_rule_page_examples_parse_the_same() -> None:
    texts = []
    for page in sorted((REPO / "rules").glob("*.md")):
        for b in blocks(page.read_text(encoding="utf-8")):
            texts.append((page.name, b.sql))
    _check(_statements(texts))


def test_fixtures_parse_the_same() -> None:
    texts = [(str(p), p.read_text(encoding="utf-8")) for p in sorted(REPO.glob("fixtures/**/*.sql"))]
    _check(_statements(texts))


def test_corpus_parses_the_same(corpus: Path) -> None:
    texts = [(str(p), p.read_text(encoding="utf-8", errors="replace"))
             for p in sorted(corpus.rglob("*.sql"))]
    _check(_statements(texts))


def test_errors_are_pglast_errors() -> None:
    with pytest.raises(parser.ParseError) as info:
        fastparse.parse_sql("ALTER TABL x")
    assert info.value.args[1] == 6


def test_corpus_never_falls_back(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback is for surprises: a JSON shape that is merely common (a list of lists, a
    NULL list member) must not silently cost the slow path on whole files."""
    texts = [(str(p), p.read_text(encoding="utf-8", errors="replace"))
             for p in sorted(corpus.rglob("*.sql"))]
    statements = _statements(texts)  # before patching: parse_section catches what we raise

    def refuse(sql: str) -> None:
        raise AssertionError(f"fell back to pglast's parse_sql on {sql[:80]!r}")

    monkeypatch.setattr(fastparse._pg, "parse_sql", refuse)
    for _, sql in statements:
        fastparse.parse_sql(sql)


def test_nested_lists_and_null_members() -> None:
    for sql in ("INSERT INTO t VALUES (1, 2), (3, 4)", "SELECT DISTINCT a FROM t"):
        assert tree_difference(parser.parse_sql(sql), fastparse.parse_sql(sql)) is None
