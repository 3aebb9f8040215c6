"""parse_section parses a whole section at once when it can; the statements must be exactly
those of the per-statement path (scanner cuts, one parse per statement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlsafe import parse
from sqlsafe.model import Section

REPO = Path(__file__).resolve().parents[2]


def _both(text: str) -> tuple[list[parse.ParsedStatement], list[parse.ParsedStatement]]:
    section = Section("f.sql", text, line_offset=3, char_offset=40)
    masked, _ = parse._mask_meta_commands(text)
    index = parse.LineIndex(text, section.line_offset, section.char_offset)
    return list(parse.parse_section(section).statements), parse._parse_each(section, masked, index)


def _assert_same(text: str) -> None:
    whole, each = _both(text)
    assert whole == each  # dataclass equality; pglast nodes compare ignoring locations
    assert parse.count_statements(text) == len(parse._boundaries(parse._mask_meta_commands(text)[0]))


def _texts(root: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in sorted(root.rglob("*.sql"))]


def test_fixtures_split_the_same() -> None:
    for name, text in _texts(REPO / "fixtures"):
        whole, each = _both(text)
        assert whole == each, name


def test_corpus_splits_the_same(corpus: Path) -> None:
    for name, text in _texts(corpus):
        whole, each = _both(text)
        assert whole == each, name


@pytest.mark.parametrize("text", [
    "SELECT 1",
    "SELECT 1;",
    "-- head\nSELECT 1;\n\n/* a /* nested */ comment */ ;; SELECT 2 ; -- tail;\n",
    "SELECT 'é'; SELECT 'ü' -- no semicolon, a comment after\n",
    "SELECT '日本';\n  SELECT 2 /* ✓ */;",
    "SELECT 1 -- trailing comment ending in ;",
    "\\set ON_ERROR_STOP on\nSELECT 1;\n\\echo done\nSELECT 2;",
])
def test_edge_cases_split_the_same(text: str) -> None:
    assert parse._parse_whole(parse._mask_meta_commands(text)[0]) is not None
    _assert_same(text)


@pytest.mark.parametrize("text", [
    # The grammar reads one statement, the scanner cuts at each semicolon.
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));"
    " SELECT 3;",
    # A CASE ... END inside an atomic body ends the scanner's BEGIN ATOMIC early.
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC"
    " SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3;",
    # A column named begin of a type named atomic: the scanner waits for an END.
    "CREATE TABLE t (begin atomic); SELECT 1;",
])
def test_texts_the_scanner_cuts_differently_keep_the_old_path(text: str) -> None:
    assert parse._parse_whole(parse._mask_meta_commands(text)[0]) is None
    _assert_same(text)


def test_broken_text_keeps_per_statement_findings() -> None:
    text = "SELECT 1;\nALTER TABL x;\nSELECT 'é';"
    whole, each = _both(text)
    assert whole == each
    assert [s.error is not None for s in whole] == [False, True, False]


def test_parser_statements_inside_one_scanner_range_get_character_spans(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # When the scanner's split keeps two statements together (it cannot always follow
    # BEGIN ATOMIC bodies), the parser's offsets place them. libpg_query counts bytes; the
    # spans must count characters, or everything after a non-ASCII character shifts.
    text = "SELECT 'héllo wörld';\nSELECT 2;\n"
    monkeypatch.setattr(parse, "_boundaries", lambda masked: [(0, len(masked.rstrip()))])
    statements = parse._parse_each(Section("x.sql", text), text, parse.LineIndex(text))
    assert [s.sql for s in statements] == ["SELECT 'héllo wörld'", "SELECT 2"]
    second = statements[1].span
    assert (second.line, second.column) == (2, 1)
    assert text[second.start:second.start + 8] == "SELECT 2"
