"""SQL inside DO blocks: the statements a PL/pgSQL block runs when the migration runs.

A DO block is executed at migration time, so an ``ALTER TABLE`` or ``CREATE INDEX`` inside it
locks exactly as it would outside (squawk#528 is the peer's open issue for this blind spot).
pglast exposes PostgreSQL's PL/pgSQL parser; we walk its tree for static SQL statements and for
``EXECUTE '<literal>'`` with a constant string, and lint each as a statement of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ._record import Record, record
from .model import Span
from .parse import ParsedStatement, statement


@record
class InnerStatement(Record):
    line: int  # 1-based line within the DO body
    sql: str


_TRANSACTION_CONTROL = {"PLpgSQL_stmt_commit": "COMMIT", "PLpgSQL_stmt_rollback": "ROLLBACK"}


def inner_statements(body: str) -> list[InnerStatement]:
    from pglast import parser as _pg

    wrapped = ("CREATE FUNCTION sqlsafe_do_block() RETURNS void LANGUAGE plpgsql AS "
               f"$sqlsafe_body${body}$sqlsafe_body$")
    try:
        tree = json.loads(_pg.parse_plpgsql_json(wrapped))
    except Exception:  # a body PL/pgSQL rejects: the server will say so in the dry run
        return []
    return list(_walk(tree))


def ends_transaction(body: str) -> bool:
    """Whether a PL/pgSQL body runs COMMIT or ROLLBACK (which a DO block may do only outside a
    transaction block, PostgreSQL 11+)."""
    lowered = body.lower()
    if "commit" not in lowered and "rollback" not in lowered:
        return False
    return any(s.sql in _TRANSACTION_CONTROL.values() for s in inner_statements(body))


def _walk(node: Any) -> Iterator[InnerStatement]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "PLpgSQL_stmt_block" and isinstance(value, dict):
            # The block's own statements; its EXCEPTION handlers run only on failure.
            yield from _walk(value.get("body", []))
        elif key == "PLpgSQL_stmt_execsql" and isinstance(value, dict):
            query = value.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query")
            if query:
                yield InnerStatement(int(value.get("lineno", 1)), query)
        elif key in _TRANSACTION_CONTROL and isinstance(value, dict):
            # COMMIT / ROLLBACK in a DO block run outside BEGIN (PostgreSQL 11+) end the
            # block's transaction; the statements after them run in a new one.
            yield InnerStatement(int(value.get("lineno", 1)), _TRANSACTION_CONTROL[key])
        elif key == "PLpgSQL_stmt_dynexecute" and isinstance(value, dict):
            query = value.get("query", {}).get("PLpgSQL_expr", {}).get("query", "")
            literal = _string_literal(query)
            if literal:
                yield InnerStatement(int(value.get("lineno", 1)), literal)
        else:
            yield from _walk(value)


def _place(outer: ParsedStatement, body_start: int, body: str, inner: InnerStatement,
           fallback_line: int) -> Span:
    """Where the inner statement stands in the file (its first token), when it can be found."""
    pos = body.find(inner.sql) if body_start >= 0 else -1
    if pos < 0:
        return Span(fallback_line, 1, fallback_line, 1, outer.span.start, outer.span.end)
    at = body_start + pos  # offset in the outer statement's text
    line = outer.span.line + outer.sql.count("\n", 0, at)
    nl = outer.sql.rfind("\n", 0, at)
    column = at - nl if nl >= 0 else outer.span.column + at
    end = at + len(inner.sql)
    end_line = outer.span.line + outer.sql.count("\n", 0, end)
    end_nl = outer.sql.rfind("\n", 0, end)
    end_column = end - end_nl if end_nl >= 0 else outer.span.column + end
    return Span(line, column, end_line, end_column, outer.span.start + at, outer.span.start + end)


def _string_literal(expr: str) -> str | None:
    text = expr.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'" and "'" not in text[1:-1].replace("''", ""):
        return text[1:-1].replace("''", "'")
    return None


def expand(outer: ParsedStatement, body: str) -> list[ParsedStatement]:
    """The statements of a DO block, placed on the DO block's lines."""
    from pglast import parser as _pg

    from . import fastparse

    start = outer.sql.find(body) if body else -1
    body_line = outer.span.line + (outer.sql.count("\n", 0, start) if start >= 0 else 0)
    out: list[ParsedStatement] = []
    for inner in inner_statements(body):
        try:
            parsed = fastparse.parse_sql(inner.sql)
        except _pg.ParseError:
            continue
        span = _place(outer, start, body, inner, body_line + inner.line - 1)
        for raw in parsed:
            out.append(statement(outer.path, outer.index, span, inner.sql,
                                 type(raw.stmt).__name__, raw.stmt))
    return out
