"""normalize.deparse gives exactly the text of pglast's ``RawStream()(node)``: its own spelling
of constants and its direct call of pglast's printer must not change a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pglast import ast
from pglast import parser as pg_parser
from pglast.stream import RawStream

from sqlsafe import fastparse, normalize
from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.lint import lint
from sqlsafe.normalize import deparse, iter_nodes

TRICKY = [
    # strings: doubled quotes, backslashes (standard_conforming_strings), E'' and U& forms
    "'it''s'", "''", "'back\\slash'", "E'tab\\there'", "E'quote\\'s'", "E'\\\\'",
    "U&'d\\0061t\\+000061'", "'a\"b'", "'日本語'", "'line\nbreak'",
    # numbers: signs, int4 overflow into Float, exponents
    "0", "-1", "2147483647", "-2147483648", "2147483648", "-9223372036854775809", "1.5",
    "-0.5", "1e10", "-1.5E-3", ".5", "1_000",
    # other constants
    "true", "false", "NULL", "B'101'", "X'1F'",
    # typed literals and casts
    "'2020-01-01'::timestamptz", "timestamptz '2020-01-01'", "'{}'::text[]", "'{}'::int[][]",
    "'{\"a\": 1}'::jsonb", "interval '1 day'", "interval '1' day", "1::bigint",
    "'x'::\"MyType\"", "'x'::public.mytype", "CAST(1 AS numeric(10, 2))", "'t'::bool",
    "NULL::text", "-1::int", "(-1)::int", "'a'::varchar(10)", "'now'::timestamp(3)",
    # arrays
    "ARRAY[1, 2]", "ARRAY['a', 'b']::text[]", "ARRAY[]::integer[]", "ARRAY[[1, 2], [3, 4]]",
    # SQL value functions, with and without a precision
    "CURRENT_TIMESTAMP", "current_timestamp(3)", "CURRENT_DATE", "CURRENT_TIME",
    "current_time(2)", "LOCALTIME", "localtime(1)", "LOCALTIMESTAMP", "localtimestamp(6)",
    "CURRENT_USER", "SESSION_USER", "USER", "CURRENT_ROLE", "CURRENT_CATALOG",
    "CURRENT_SCHEMA",
    # functions: qualified, quoted, keyword-named, special syntax
    "now()", "pg_catalog.now()", "public.gen_random_uuid()", "\"MyFunc\"(1)",
    "nextval('seq'::regclass)", "nextval('\"Quoted\"\"Seq\"')", "coalesce(a, 'x')",
    "lower(\"Name\")", "extract(epoch FROM now())", "substring('abc' FROM 2 FOR 1)",
    "trim(both ' ' FROM x)", "count(*)", "count(DISTINCT a)", "f(a => 1)",
    "greatest(1, 2)", "nullif(a, '')", "overlay('abc' PLACING 'x' FROM 2)",
    "position('a' IN 'abc')", "jsonb_build_object('k', 1)",
    # column references and operators
    "a", "\"Weird\"\"Name\"", "t.\"Col\"", "\"select\".\"from\"", "s.t.c", "\"ÄÖ\"",
    "a + b * c", "(a + b) * c", "-a", "NOT a", "a AND (b OR c)", "a IS NULL",
    "a IS NOT NULL", "a IS TRUE", "a IS NOT DISTINCT FROM b", "a BETWEEN 1 AND 2",
    "a IN (1, 2)", "a NOT IN ('x')", "a ~~ 'p%'", "a LIKE 'p%' ESCAPE '!'", "'a' || 'b'",
    "a = ANY (ARRAY[1, 2])", "a OPERATOR(pg_catalog.=) b", "a COLLATE \"C\"",
    "CASE WHEN a > 0 THEN 'p' ELSE 'n' END", "ROW(1, 2)", "length(a) <= 255",
    "char_length(btrim(a)) > 0", "a::text ~ '^[a-z]+$'", "EXISTS (SELECT 1 FROM t)",
    "(SELECT max(id) FROM t)",
]


def _exprs(sql: str) -> list[Any]:
    stmts = [*fastparse.parse_sql(f"SELECT {sql}"), *pg_parser.parse_sql(f"SELECT {sql}")]
    return [s.stmt.targetList[0].val for s in stmts]


def _expected(node: Any) -> str:
    try:
        return str(RawStream()(node))
    except Exception:
        return ""


@pytest.mark.parametrize("sql", TRICKY)
def test_tricky_expressions_ok(sql: str) -> None:
    for node in _exprs(sql):
        assert deparse(node) == _expected(node), sql


def test_constants_take_the_fast_path_ok() -> None:
    for sql in ("'it''s'", "-1", "1.5", "true", "NULL", "CURRENT_TIMESTAMP", "CURRENT_SCHEMA"):
        for node in _exprs(sql):
            assert normalize._simple_sql(node) == _expected(node), sql
    for sql in ("current_timestamp(3)", "'x'::text", "B'101'", "pg_catalog.now()", "now(1)",
                "count(*)", "random() OVER ()", "\"Now\"()", "a"):
        for node in _exprs(sql):
            assert normalize._simple_sql(node) is None, sql


def test_every_nullary_default_function_takes_the_fast_path_ok() -> None:
    for name in sorted(normalize._NULLARY_FUNCTIONS):
        for node in _exprs(f"{name}()"):
            assert normalize._simple_sql(node) == _expected(node) == f"{name}()", name


def test_every_sql_value_function_ok() -> None:
    for sql in ("CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIME(1)", "CURRENT_TIMESTAMP",
                "CURRENT_TIMESTAMP(1)", "LOCALTIME", "LOCALTIME(1)", "LOCALTIMESTAMP",
                "LOCALTIMESTAMP(1)", "CURRENT_ROLE", "CURRENT_USER", "USER", "SESSION_USER",
                "CURRENT_CATALOG", "CURRENT_SCHEMA"):
        for node in _exprs(sql):
            assert isinstance(node, ast.SQLValueFunction)
            assert deparse(node) == _expected(node) != "", sql


def test_whole_statements_tuples_and_failures_ok() -> None:
    sql = "CREATE TABLE t (id int DEFAULT 1 CHECK (id > 0)); DROP TABLE a, b.c"
    raws = fastparse.parse_sql(sql)
    for raw in raws:
        assert deparse(raw) == _expected(raw)
        assert deparse(raw.stmt) == _expected(raw.stmt)
    drop = raws[1].stmt
    assert deparse(drop.objects) == _expected(drop.objects)
    assert deparse(drop.objects[1]) == _expected(drop.objects[1])
    assert deparse(None) == ""
    empty = ast.RawStmt(stmt=None)  # RawStream skips it
    assert deparse(empty) == _expected(empty) == ""
    assert deparse(()) == _expected(()) == ""
    broken = _exprs("a + b")[0]
    object.__setattr__(broken, "kind", "NO_SUCH_KIND")  # a tree pglast's printer cannot print
    assert deparse(broken) == _expected(broken) == ""


def _corpus_statements(corpus: Path) -> list[Any]:
    from sqlsafe.parse import parse_section

    nodes: list[Any] = []
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        for m in discover([str(project)]).migrations:
            nodes.extend(s.node for s in parse_section(m.section).statements if s.node is not None)
    return nodes


def test_corpus_deparse_calls_ok(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each node the lint deparses on the corpus, as the lint sees it."""
    seen: list[tuple[Any, str]] = []
    real = normalize.deparse

    def recording(node: Any) -> str:
        text = real(node)
        seen.append((node, text))
        return text

    monkeypatch.setattr(normalize, "deparse", recording)
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        lint(discover([str(project)]), Config(extend_select=("ALL",)), worker=False)  # the recorder sees this process only
    assert len(seen) > 400
    wrong = [(text, _expected(node)) for node, text in seen if text != _expected(node)]
    assert not wrong, wrong[:5]


def test_corpus_every_node_ok(corpus: Path) -> None:
    """Every node of every corpus statement, statements included, not only the expressions
    the rules deparse today."""
    checked = 0
    for stmt in _corpus_statements(corpus):
        for node in iter_nodes(stmt):
            expected = _expected(node)
            assert deparse(node) == expected, expected
            checked += 1
    assert checked > 15000
