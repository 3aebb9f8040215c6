"""Other SQL dialects (MySQL, SQLite, ...) through sqlglot.

PostgreSQL is parsed with pglast, PostgreSQL's own parser. For other dialects sqlglot splits and
parses the file, and this module maps its expressions onto the same normalized actions, so the
dialect-neutral rules (destructive, compatibility, idempotency, backfill, security, style) apply
unchanged. Lock and transaction rules state PostgreSQL facts and are not run for other dialects.
"""

from __future__ import annotations

import logging
from typing import Any

from . import nodes as n
from .model import Section
from .parse import LineIndex, ParsedSection, ParsedStatement

POSTGRES = "postgres"
# Rule families whose judgements are PostgreSQL facts (lock modes, transactional DDL).
POSTGRES_ONLY_CATEGORIES = frozenset({"locking", "timeout", "transaction"})

_TYPE_NAMES = {
    "INT": "int4", "INTEGER": "int4", "BIGINT": "int8", "SMALLINT": "int2", "TINYINT": "int2",
    "VARCHAR": "varchar", "NVARCHAR": "varchar", "CHAR": "bpchar", "NCHAR": "bpchar",
    "TEXT": "text", "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz", "DATETIME": "timestamp",
    "BOOLEAN": "bool", "DECIMAL": "numeric", "DOUBLE": "float8", "FLOAT": "float4",
    "JSON": "json", "JSONB": "jsonb", "UUID": "uuid", "DATE": "date",
}


def known_dialects() -> list[str]:
    from sqlglot.dialects.dialect import Dialects

    return sorted(d.value for d in Dialects if d.value)


def parse_section(section: Section, dialect: str) -> ParsedSection:
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    # sqlglot logs a warning for every statement it keeps as an opaque Command; those are
    # mapped to Other actions, not findings, so the log line is only noise on stderr.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    index = LineIndex(section.text, section.line_offset, section.char_offset)
    try:
        tokens = sqlglot.tokenize(section.text, read=dialect)
    except TokenError as exc:
        span = index.span(0, max(len(section.text.rstrip()), 1))
        return ParsedSection(section, (ParsedStatement(section.path, 0, span, section.text, None,
                                                       str(exc), index.span(0, 1)),), ())
    statements: list[ParsedStatement] = []
    start: int | None = None
    last_end = 0
    chunks: list[tuple[int, int]] = []
    for tok in tokens:
        if start is None:
            if tok.token_type.name == "SEMICOLON":
                continue
            start = tok.start
        if tok.token_type.name == "SEMICOLON":
            chunks.append((start, tok.end + 1))
            start = None
        last_end = tok.end + 1
    if start is not None:
        chunks.append((start, last_end))
    for i, (s0, s1) in enumerate(chunks):
        raw = section.text[s0:s1]
        sql = raw[:-1] if raw.endswith(";") else raw
        span = index.span(s0, s1)
        try:
            expr = sqlglot.parse_one(sql, read=dialect)
        except (ParseError, TokenError) as exc:
            errors = getattr(exc, "errors", None) or [{}]
            first = errors[0]
            line, col = first.get("line"), first.get("col")
            at = s0
            if isinstance(line, int) and isinstance(col, int):
                lines = sql.split("\n")
                offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(col - 1, 0)
                at = s0 + min(offset, len(sql))
            message = first.get("description") or str(exc).splitlines()[0]
            statements.append(ParsedStatement(section.path, i, span, sql, None, message,
                                              index.span(at, at + 1)))
            continue
        statements.append(ParsedStatement(section.path, i, span, sql, expr))
    return ParsedSection(section, tuple(statements), ())


# ---------------------------------------------------------------------------- normalize


def _name(node: Any) -> str:
    return node.name if node is not None and hasattr(node, "name") else str(node or "?")


def _rel(table: Any) -> n.Rel:
    schema = table.args.get("db")
    return n.Rel(_name(table), _name(schema) if schema is not None else None)


def _type(dt: Any) -> n.TypeRef | None:
    if dt is None:
        return None
    raw = dt.this.name if hasattr(dt.this, "name") else str(dt.this)
    mods: list[int] = []
    for e in dt.expressions or ():
        val = getattr(e, "this", None)
        lit = getattr(val, "this", val)
        try:
            mods.append(int(str(lit)))
        except ValueError:
            pass
    return n.TypeRef(_TYPE_NAMES.get(raw.upper(), raw.lower()), tuple(mods), False, dt.sql())


def _column(cd: Any) -> n.ColumnDef:
    from sqlglot import exp

    not_null = pk = unique = False
    default = None
    for c in cd.args.get("constraints") or ():
        kind = c.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null"):
            not_null = True
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            pk = not_null = True
        elif isinstance(kind, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(kind, exp.DefaultColumnConstraint):
            sql = kind.this.sql() if kind.this is not None else ""
            volatile = any(isinstance(x, (exp.Anonymous, exp.Rand))
                           for x in kind.find_all(exp.Func))
            default = n.Default(sql, volatile, is_null=sql.upper() == "NULL")
    return n.ColumnDef(_name(cd.this), _type(cd.args.get("kind")), not_null, default,
                       primary_key=pk, unique=unique)


def normalize(expr: Any) -> tuple[n.Action, ...]:
    from sqlglot import exp

    if isinstance(expr, exp.Create):
        kind = (expr.args.get("kind") or "").upper()
        exists = bool(expr.args.get("exists"))
        target = expr.this
        if kind == "TABLE":
            if isinstance(target, exp.Schema):
                cols = tuple(_column(c) for c in target.expressions if isinstance(c, exp.ColumnDef))
                return (n.CreateTable(_rel(target.this), exists, cols),)
            return (n.CreateTable(_rel(target), exists, as_select=True),)
        if kind == "INDEX" and isinstance(target, exp.Index):
            table = target.args.get("table")
            return (n.CreateIndex(_rel(table) if table is not None else n.Rel("?"),
                                  _name(target.this), bool(expr.args.get("concurrently")),
                                  bool(expr.args.get("unique")), exists),)
        return (n.CreateObject(kind.lower() or "object", target.sql() if target else "?",
                               if_not_exists=exists, or_replace=bool(expr.args.get("replace"))),)
    if isinstance(expr, exp.Drop):
        kind = (expr.args.get("kind") or "").lower()
        targets = [expr.this] if expr.this is not None else list(expr.args.get("tables") or ())
        rels = tuple(_rel(t) for t in targets if isinstance(t, exp.Table))
        return (n.Drop(kind, tuple(t.sql() for t in targets), rels,
                       bool(expr.args.get("exists")), bool(expr.args.get("cascade"))),)
    if isinstance(expr, exp.Alter):
        rel = _rel(expr.this)
        return tuple(_alter_action(rel, a) for a in expr.args.get("actions") or ())
    if isinstance(expr, exp.Update):
        set_cols = tuple(e.this.name for e in expr.expressions if isinstance(e, exp.EQ)
                         and isinstance(e.this, exp.Column))
        return (n.Update(_rel(expr.this), expr.args.get("where") is not None, set_cols),)
    if isinstance(expr, exp.Delete):
        return (n.Delete(_rel(expr.this), expr.args.get("where") is not None),)
    if isinstance(expr, exp.TruncateTable):
        return (n.Truncate(tuple(_rel(t) for t in expr.expressions if isinstance(t, exp.Table))),)
    if isinstance(expr, exp.Insert):
        table = expr.this.this if isinstance(expr.this, exp.Schema) else expr.this
        return (n.Insert(_rel(table), expr.args.get("conflict") is not None,
                         expr.args.get("expression") is not None and
                         not isinstance(expr.args.get("expression"), exp.Values), 0),)
    return (n.Other(type(expr).__name__),)


def _alter_action(rel: n.Rel, a: Any) -> n.Action:
    from sqlglot import exp

    if isinstance(a, exp.ColumnDef):
        return n.AddColumn(rel, _column(a))
    if isinstance(a, exp.Drop) and (a.args.get("kind") or "").upper() == "COLUMN":
        col = a.this if a.this is not None else (a.args.get("tables") or [None])[0]
        return n.DropColumn(rel, _name(col), bool(a.args.get("exists")))
    if isinstance(a, exp.RenameColumn):
        return n.Rename("column", rel, _name(a.this), _name(a.args.get("to")))
    if isinstance(a, exp.AlterRename):
        return n.Rename("table", rel, rel.name, _name(a.this))
    modify = getattr(exp, "ModifyColumn", None)  # MySQL's MODIFY; absent in older sqlglot
    if modify is not None and isinstance(a, modify):
        cd = a.this
        return n.AlterColumnType(rel, _name(cd.this), _type(cd.args.get("kind")) or n.TypeRef("?"))
    if isinstance(a, exp.AlterColumn):
        if a.args.get("dtype") is not None:
            return n.AlterColumnType(rel, _name(a.this), _type(a.args["dtype"]) or n.TypeRef("?"))
        if a.args.get("allow_null") is False:
            return n.SetNotNull(rel, _name(a.this))
        if a.args.get("allow_null") is True:
            return n.DropNotNull(rel, _name(a.this))
        if a.args.get("drop") and a.args.get("default") is None:
            return n.DropDefault(rel, _name(a.this))
    return n.AlterTableOther(rel, type(a).__name__)
