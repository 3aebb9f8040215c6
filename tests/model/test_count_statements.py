"""count_statements (discovery's "more than one statement, so an implicit transaction") counts
without the parser where it can (``parse._count_pieces``), else with libpg_query's split: the
count must be the one of the whole-text parse that the lint's statements come from, or of the
scanner where that parse refuses the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlsafe import parse
from sqlsafe.ruledocs import blocks

REPO = Path(__file__).resolve().parents[2]


def _reference(text: str) -> int:
    masked, _ = parse._mask_meta_commands(text)
    whole = parse._parse_whole(masked, nodes=False)
    return len(whole) if whole is not None else len(parse._boundaries(masked))


def _texts(root: Path) -> list[tuple[str, str]]:
    return [(str(p), p.read_text(encoding="utf-8", errors="replace"))
            for p in sorted(root.rglob("*.sql"))]


EDGE = [
    "", "   \n", "-- only a comment\n", "/* c */", ";", ";;;", "SELECT 1", "SELECT 1;",
    "SELECT 1;;", "SELECT 1; ; SELECT 2", "SELECT 1; SELECT 2", "SELECT 1; SELECT 2;\n-- end",
    "SELECT 'a;b'; SELECT $$x;y$$;", "SELECT 'é'; SELECT '日本' -- no semicolon",
    "SELECT 1 -- trailing comment ending in ;",
    "\\set ON_ERROR_STOP on\nSELECT 1;\n\\echo done\nSELECT 2;",
    "COPY t FROM stdin;\n1\ta;b\n\\.\nSELECT 1;",
    # parse errors: the scanner counts
    "SELEC 1; SELECT 2;", "SELECT 1; ALTER TABL x; SELECT 3", "SELECT 'unterminated",
    "CREATE TABLE t (a int,);",
    # texts the whole parse refuses, and texts that only look like it
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));",
    "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING; SELECT 1;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END;",
    "SELECT atomic FROM t; SELECT 2;", "CREATE TABLE rules (id int); CREATE TABLE ruler (x int);",
    "SELECT 1 AS \"atomıc\"; SELECT 2;", "SELECT 1 AS \"ATOMİC\"", "SELECT 'é'; SELECT 2",
    # what hides a semicolon from the pieces count, and what does not
    "SELECT 'it''s; fine'; SELECT 2", "SELECT \"a;\"\"b\" FROM t; SELECT 2",
    "SELECT $tag$ ; $other$ ; $tag$; SELECT 2", "SELECT $_x1$;$_x1$; SELECT $é$;$é$",
    "SELECT a$b$c FROM t; SELECT 2", "SELECT x$$ FROM t; SELECT 2;", "PREPARE p AS SELECT $1; SELECT 2",
    "SELECT 1 /* a /* nested; */ comment; */; SELECT 2", "SELECT 1 /* never closes; SELECT 2",
    "SELECT 1 -- a comment; SELECT 2\n; SELECT 3", "SELECT 1 --\r; SELECT 2", "SELECT 1\v; \f;",
    "SELECT E'a\\'; b'; SELECT 2", "SELECT e'x''y;'; SELECT 2", "SELECTE'x'; SELECT 2",
    "SELECT U&'d\\0061t;a'; SELECT 2", "SELECT U&\"a;\" FROM t; SELECT 2", "SELECT \"\" FROM t; SELECT 2",
    "SELECT 1e5; SELECT 2.5e-3; SELECT .5; SELECT 1_000", "SELECT 0x1F; SELECT 2",
    "SELECT 123abc; SELECT 2", "SELECT 1e; SELECT 2", "SELECT t1.c2 FROM t1; SELECT 2",
    "SELECT '2024-01-01T00:00:00Z'; SELECT 2", "SELECT 'a' 'b'; SELECT 2", "SELECT \"unterminated; x",
    "SELECT $$never closes; SELECT 2", "SELECT 1 `; SELECT 2", "SELECT 'é;日本'; SELECT \"名;前\"",
]


@pytest.mark.parametrize("text", EDGE)
def test_edge_cases_ok(text: str) -> None:
    assert parse.count_statements(text) == _reference(text)


@pytest.mark.parametrize("text", EDGE)
def test_a_limited_count_is_the_count_cut_at_the_limit(text: str) -> None:
    """Discovery only asks whether a file holds more than one statement: the count may stop
    at the second, but must not say more, or fewer, than the whole count cut there."""
    for limit in (1, 2, 3):
        assert parse.count_statements(text, limit) == min(_reference(text), limit), limit


def test_fixtures_and_rule_docs_ok() -> None:
    texts = _texts(REPO / "fixtures")
    for page in sorted((REPO / "rules").glob("*.md")):
        texts.extend((page.name, b.sql) for b in blocks(page.read_text(encoding="utf-8")))
    assert len(texts) > 100
    for name, text in texts:
        assert parse.count_statements(text) == _reference(text), name


def test_corpus_ok(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(corpus)
    expected = [_reference(text) for _, text in texts]
    whole_parses = 0
    real = parse._parse_whole

    def counting(masked: str, nodes: bool = True) -> list[tuple[int, int, object]] | None:
        nonlocal whole_parses
        whole_parses += 1
        return real(masked, nodes)

    monkeypatch.setattr(parse, "_parse_whole", counting)
    for (name, text), count in zip(texts, expected):
        assert parse.count_statements(text) == count, name
        assert parse.count_statements(text, 2) == min(count, 2), name
    # The pieces count, or else the split, does the counting for nearly every file.
    assert whole_parses < len(texts) / 10
    pieces = sum(parse._count_pieces(parse._mask_meta_commands(text)[0]) is not None
                 for _, text in texts)
    assert pieces > len(texts) * 0.9


@pytest.mark.parametrize(("text", "count"), [
    ("SELECT 1; SELECT 2", 2), ("-- c\n;;SELECT 1;\n/* c */", 1), ("SELECT ';'", 1),
    ("SELECT $a$;$a$; SELECT a$b$; SELECT 3", 3), ("SELECT 1 /* /* ; */ ; */", 1),
    ("SELECT \"x;\"\"\"; SELECT 1e5;", 2), ("SELECT 'x' -- ;\n; SELECT 2", 2),
])
def test_pieces_count_answers_alone(text: str, count: int) -> None:
    assert parse._count_pieces(text) == count
    assert parse._count_pieces(text, 1) == 1


@pytest.mark.parametrize("text", [
    "SELECT 'never", "SELECT \"never", "SELECT $x$ never", "/* never", "SELECT E'\\'';",
    "SELECT U&'x'", "SELECT u&\"x\"", "SELECT \"\"", "SELECT 1x", "SELECT 0x1F", "SELECT 1e",
])
def test_pieces_count_leaves_the_scanners_cases_to_it(text: str) -> None:
    """Where PostgreSQL's scanner fails or reads escapes, its own count is taken."""
    assert parse._count_pieces(text) is None


MENTIONS = [
    "", "atomic", "ATOMIC", "AtOmIc", "begin atomic", "rule", "RULE", "Rules", "overrule",
    "CREATE RULE r", "atom ic", "rul e", "atomi", "schedule", "select 'é' from atomic",
    "select 'é' from rule", "SELECT 'é'", "atomıc", "ATOMİC", "'é' atomİc", "ruLE 日本",
]


@pytest.mark.parametrize("text", MENTIONS)
def test_mentions_is_the_regex_search_ok(text: str) -> None:
    for words, pattern in ((("atomic",), parse._ATOMIC_RE),
                           (("atomic", "rule"), parse._WHOLE_MAY_REFUSE_RE)):
        assert parse._mentions(text, words, pattern) == (pattern.search(text) is not None)


def test_mentions_on_the_corpus_ok(corpus: Path) -> None:
    for name, text in _texts(corpus):
        for words, pattern in ((("atomic",), parse._ATOMIC_RE),
                               (("atomic", "rule"), parse._WHOLE_MAY_REFUSE_RE)):
            assert parse._mentions(text, words, pattern) == (pattern.search(text) is not None), name
