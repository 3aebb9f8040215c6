"""idempotency: statements that fail or behave differently when the migration runs again.

A migration runs again after a partial failure outside a transaction (the statements before the
failing one stay applied), after a restore, or when a tool's history table is out of step.
PostgreSQL's DDL is transactional, but only some CREATE forms have IF NOT EXISTS / OR REPLACE,
so for the others the guard is a DROP ... IF EXISTS just before, or a DO block that catches
``duplicate_object``. DO blocks are opaque to the linter, so a guarded DO block never fires.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import nodes as n
from ..model import Fix
from ..registry import Violation, rule
from .context import RuleContext

_CREATE_KEYWORD = {
    "table": r"\bTABLE\b", "index": r"\bINDEX\b", "schema": r"\bSCHEMA\b",
    "sequence": r"\bSEQUENCE\b", "extension": r"\bEXTENSION\b",
    "statistics": r"\bSTATISTICS\b",
}


def ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def rel_sql(rel: n.Rel) -> str:
    return ".".join(ident(p) for p in (rel.schema, rel.name) if p)


def name_re(name: str) -> str:
    """A regex for an identifier as written: bare (any case) or double-quoted."""
    return rf'(?:"{re.escape(name)}"|\b{re.escape(name)}\b)'


def insert_at(ctx: RuleContext, pattern: str, text: str, description: str, *,
              before: bool = False, safe: bool = True) -> Fix | None:
    m = re.search(pattern, ctx.stmt.sql, re.I | re.S)
    if m is None:
        return None
    at = ctx.stmt.span.start + (m.start() if before else m.end())
    return Fix(description, at, at, text, safe=safe)


def insert_at_name(ctx: RuleContext, words: tuple[str, ...], name: str, text: str,
                   description: str, *, last_optional: bool = False, before: bool = False,
                   safe: bool = True) -> Fix | None:
    """``insert_at`` with the pattern ``\\bW1\\s+W2...(?=\\s+<name_re(name)>)`` (the last word
    optional when ``last_optional``): after the words, or before them with ``before``.

    A regex with the name in it is compiled for every column and constraint name, once each:
    over a corpus that was two thirds of all regex compiling, a cost every run pays before it
    lints anything. ASCII statements and names are searched here without one, as re.search
    would; others keep the regex."""
    sql = ctx.stmt.sql
    if not (sql.isascii() and name.isascii()):
        keywords = [w.upper() for w in words]
        if last_optional:
            pattern = r"\b" + r"\s+".join(keywords[:-1]) + rf"(?:\s+{keywords[-1]})?"
        else:
            pattern = r"\b" + r"\s+".join(keywords)
        return insert_at(ctx, rf"{pattern}(?=\s+{name_re(name)})", text, description,
                         before=before, safe=safe)
    found = _words_then_name(sql, words, name, last_optional)
    if found is None:
        return None
    at = ctx.stmt.span.start + (found[0] if before else found[1])
    return Fix(description, at, at, text, safe=safe)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"  # re's \w (and so \b) for str patterns


def _after_words(sql: str, lowered: str, at: int, words: tuple[str, ...]) -> int | None:
    """Where ``\\s+W1\\s+W2...`` (re.I) matched at ``at`` ends, or None."""
    for word in words:
        j = at
        while j < len(sql) and sql[j].isspace():
            j += 1
        if j == at or not lowered.startswith(word, j):
            return None
        at = j + len(word)
    return at


def _name_follows(sql: str, lowered: str, at: int, name: str) -> bool:
    """Whether ``\\s+(?:"name"|\\bname\\b)`` (re.I) matches at ``at``. Only the first character
    after the whitespace can start the name: a quote is no space, and there is no word
    boundary between two spaces."""
    r = at
    while r < len(sql) and sql[r].isspace():
        r += 1
    if r == at:
        return False
    lname = name.lower()
    end = r + len(name)
    if sql.startswith('"', r) and lowered.startswith(lname, r + 1) and sql.startswith('"', end + 1):
        return True
    if r == len(sql) or not _is_word(sql[r]) or not lowered.startswith(lname, r):
        return False
    return _is_word(sql[end - 1]) != (end < len(sql) and _is_word(sql[end]))


def _words_then_name(sql: str, words: tuple[str, ...], name: str, last_optional: bool
                     ) -> tuple[int, int] | None:
    """(start, end of the words) of the first match, trying the optional last word first as
    the regex engine does; ASCII text only (then re.I is str.lower on both sides)."""
    lowered = sql.lower()
    first, rest = words[0], words[1:]
    start = lowered.find(first)
    while start >= 0:
        if start == 0 or not _is_word(sql[start - 1]):
            tries = (rest, rest[:-1]) if last_optional else (rest,)
            for following in tries:
                end = _after_words(sql, lowered, start + len(first), following)
                if end is not None and _name_follows(sql, lowered, end, name):
                    return start, end
        start = lowered.find(first, start + 1)
    return None


def rerun_hazard(ctx: RuleContext) -> bool:
    """Whether a second run can meet this statement's effect already applied.

    Inside a transaction (the tool's, the implicit one of a multi-statement script, or an
    explicit BEGIN) a failure rolls everything back, so a retry starts from a clean slate, and
    versioned tools never re-run a migration that committed. Outside one, the statements before
    a failure stay applied. Repeatable migrations (Flyway ``R__``) run again by design.
    """
    return not ctx.in_tx or ctx.migration.kind == "repeatable"


def covered_by_create(ctx: RuleContext, rel: n.Rel) -> bool:
    """The table was created earlier in this migration by a plain CREATE TABLE (or after a
    DROP TABLE IF EXISTS): a re-run fails at that CREATE already (ID001) or starts from a
    fresh table, so statements on the table add nothing."""
    t = ctx.state.table(rel)
    return t is not None and ctx.state.is_new(rel) and (
        not t.if_not_exists or ctx.state.guarded("table", rel.name))


@rule("ID001", "create-without-if-not-exists", "idempotency",
      wants=("CreateTable", "CreateIndex", "CreateObject"), severity="warning",
      summary="CREATE TABLE/INDEX/SCHEMA/SEQUENCE/EXTENSION/STATISTICS without IF NOT EXISTS "
              "fails when the migration is retried.", fixable=True, dry_run=True)
def create_without_if_not_exists(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    match a:
        case n.CreateTable(if_not_exists=False, materialized=False, temporary=False):
            kind, name = "table", a.rel.name
        case n.CreateIndex(if_not_exists=False, concurrently=False, name=str() as index_name):
            if covered_by_create(ctx, a.rel):
                return  # the table's own CREATE fails first on a re-run
            kind, name = "index", index_name
        case n.CreateObject(objtype="schema" | "sequence" | "extension" | "statistics",
                            if_not_exists=False):
            kind, name = a.objtype, a.name
        case _:
            return
    if ctx.state.guarded(kind, name):
        return  # DROP ... IF EXISTS earlier in the file: the re-run starts from scratch
    shown = str(a.rel) if isinstance(a, n.CreateTable) else name
    if ctx.stmt.kind == "SelectStmt":  # SELECT ... INTO has no IF NOT EXISTS
        yield Violation(
            f"SELECT ... INTO {shown} fails with 'already exists' when the migration runs again "
            "(e.g. a retry after a partial failure)",
            f"Write CREATE TABLE IF NOT EXISTS {shown} AS SELECT ... so a second run is "
            "harmless.")
        return
    fix = ctx.insert_after(_CREATE_KEYWORD[kind], " IF NOT EXISTS", "add IF NOT EXISTS")
    spelled = kind.upper()
    if ctx.stmt.kind == "CreateForeignTableStmt":
        spelled = "FOREIGN TABLE"
    yield Violation(
        f"CREATE {spelled} {shown} fails with 'already exists' when the migration runs "
        "again (e.g. a retry after a partial failure)",
        f"Write CREATE {spelled} IF NOT EXISTS so a second run is harmless.",
        fix=fix,
    )


@rule("ID002", "create-view-without-or-replace", "idempotency",
      wants=("CreateObject", "CreateTable"), severity="warning", fixable=True, dry_run=True,
      summary="CREATE VIEW without OR REPLACE, or CREATE MATERIALIZED VIEW without IF NOT EXISTS, "
              "fails when the migration runs again.")
def create_view_without_or_replace(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    match a:
        case n.CreateObject(objtype="view", or_replace=False):
            if ctx.state.guarded("view", a.name):
                return
            yield Violation(
                f"CREATE VIEW {a.name} fails with 'already exists' when the migration runs again",
                "Write CREATE OR REPLACE VIEW (it can add columns at the end, not drop or "
                "retype them), or DROP VIEW IF EXISTS first.",
                fix=ctx.insert_after(r"^\s*CREATE\b", " OR REPLACE", "add OR REPLACE"),
            )
        case n.CreateTable(materialized=True, if_not_exists=False):
            if ctx.state.guarded("materialized view", a.rel.name):
                return
            yield Violation(
                f"CREATE MATERIALIZED VIEW {a.rel} fails with 'already exists' when the "
                "migration runs again (materialized views have no OR REPLACE)",
                "Write CREATE MATERIALIZED VIEW IF NOT EXISTS, or DROP MATERIALIZED VIEW IF "
                "EXISTS first when the definition changes.",
                fix=ctx.insert_after(r"\bMATERIALIZED\s+VIEW\b", " IF NOT EXISTS",
                                     "add IF NOT EXISTS"),
            )


@rule("ID003", "add-column-without-if-not-exists", "idempotency", wants=("AddColumn",),
      severity="warning", fixable=True, dry_run=True,
      summary="ALTER TABLE ... ADD COLUMN without IF NOT EXISTS fails when the migration runs "
              "again.")
def add_column_without_if_not_exists(a: n.AddColumn, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    if a.if_not_exists or covered_by_create(ctx, a.rel):
        return
    if ctx.state.guarded("column", f"{ctx.q(a.rel)}.{a.column.name}"):
        return
    fix = insert_at_name(ctx, ("add", "column"), a.column.name, " IF NOT EXISTS",
                         "add IF NOT EXISTS", last_optional=True)
    yield Violation(
        f"ADD COLUMN {a.column.name} fails with 'column already exists' when the migration runs "
        "again",
        "Write ADD COLUMN IF NOT EXISTS (PostgreSQL 9.6+).",
        fix=fix,
    )


def _drop_target(a: n.Action, ctx: RuleContext) -> tuple[str, Fix | None] | None:
    match a:
        case n.Drop(if_exists=False):
            if a.rels and all(ctx.state.is_new(r) for r in a.rels) and \
                    a.objtype in ("table", "view", "materialized view"):
                return None
            kw = r"\s+".join(a.objtype.upper().split())
            fix = insert_at(ctx, rf"^\s*DROP\s+{kw}(?:\s+CONCURRENTLY)?\b", " IF EXISTS",
                            "add IF EXISTS")
            return f"DROP {a.objtype.upper()} {', '.join(a.names)}", fix
        case n.DropColumn(if_exists=False):
            col = ctx.state.column(a.rel, a.column)
            if covered_by_create(ctx, a.rel) or (
                    col is not None and col.added_in == ctx.migration.path
                    and col.added_index == ctx.migration_index):
                return None
            fix = insert_at_name(ctx, ("drop", "column"), a.column, " IF EXISTS",
                                 "add IF EXISTS", last_optional=True)
            return f"DROP COLUMN {a.column}", fix
        case n.DropConstraint(if_exists=False):
            con = ctx.state.constraint(a.rel, a.name)
            if covered_by_create(ctx, a.rel) or (con is not None and
                                                 con.added_in == ctx.migration.path):
                return None
            fix = insert_at_name(ctx, ("drop", "constraint"), a.name, " IF EXISTS",
                                 "add IF EXISTS")
            return f"DROP CONSTRAINT {a.name}", fix
    return None


@rule("ID004", "drop-without-if-exists", "idempotency",
      wants=("Drop", "DropColumn", "DropConstraint"), severity="warning", fixable=True,
      dry_run=True,
      summary="DROP of a table, index, column, constraint, type, ... without IF EXISTS fails when "
              "the migration runs again.")
def drop_without_if_exists(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    target = _drop_target(a, ctx)
    if target is None:
        return
    what, fix = target
    yield Violation(
        f"{what} fails with 'does not exist' when the migration runs again",
        "Write DROP ... IF EXISTS so a second run is a no-op.",
        fix=fix,
    )


@rule("ID005", "create-function-without-or-replace", "idempotency", wants=("CreateFunction",),
      severity="warning", fixable=True, dry_run=True,
      summary="CREATE FUNCTION/PROCEDURE without OR REPLACE fails when the migration runs again.")
def create_function_without_or_replace(a: n.CreateFunction, ctx: RuleContext
                                       ) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    kind = "procedure" if a.is_procedure else "function"
    if a.or_replace or ctx.state.guarded(kind, a.name):
        return
    yield Violation(
        f"CREATE {kind.upper()} {a.name} fails with 'already exists' when the migration runs "
        "again",
        f"Write CREATE OR REPLACE {kind.upper()} (the argument and result types must stay the "
        "same; change them with DROP ... IF EXISTS first).",
        fix=ctx.insert_after(r"^\s*CREATE\b", " OR REPLACE", "add OR REPLACE"),
    )


@rule("ID006", "create-trigger-without-or-replace", "idempotency", wants=("CreateObject",),
      severity="warning", fixable=True, dry_run=True,
      summary="CREATE TRIGGER with no OR REPLACE (PostgreSQL 14+) and no DROP TRIGGER IF EXISTS "
              "before it fails when the migration runs again.")
def create_trigger_without_or_replace(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    if not isinstance(a, n.CreateObject) or a.objtype != "trigger" or a.or_replace:
        return
    if ctx.state.guarded("trigger", a.name) or (a.rel is not None and
                                                covered_by_create(ctx, a.rel)):
        return
    constraint = re.match(r"\s*CREATE\s+CONSTRAINT\b", ctx.sql, re.I) is not None
    on = f" ON {rel_sql(a.rel)}" if a.rel is not None else ""
    if ctx.pg >= 14 and not constraint:
        # CREATE OR REPLACE TRIGGER exists since PostgreSQL 14 (not for constraint triggers).
        fix = ctx.insert_after(r"^\s*CREATE\b", " OR REPLACE", "add OR REPLACE")
        help_ = "Write CREATE OR REPLACE TRIGGER (PostgreSQL 14+)."
    else:
        fix = ctx.insert_before_statement(f"DROP TRIGGER IF EXISTS {ident(a.name)}{on};\n",
                                          "drop the trigger first if it exists")
        help_ = (f"Put DROP TRIGGER IF EXISTS {ident(a.name)}{on}; before it (CREATE OR REPLACE "
                 "TRIGGER needs PostgreSQL 14 and does not cover constraint triggers).")
    yield Violation(
        f"CREATE TRIGGER {a.name} fails with 'already exists' when the migration runs again",
        help_, fix=fix,
    )


@rule("ID007", "unguarded-create-type", "idempotency", wants=("CreateType",), severity="warning",
      fixable=True, dry_run=True,
      summary="CREATE TYPE / CREATE DOMAIN has no IF NOT EXISTS: unguarded, it fails when the "
              "migration runs again.")
def unguarded_create_type(a: n.CreateType, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    kind = "domain" if a.type_kind == "domain" else "type"
    if ctx.state.guarded(kind, a.name.name):
        return
    tag = "$do$" if "$$" in ctx.sql else "$$"
    end = ctx.stmt.span.start + len(ctx.sql)
    wrapped = (f"DO {tag} BEGIN\n    {ctx.sql};\nEXCEPTION WHEN duplicate_object THEN NULL;\n"
               f"END {tag}")
    # Unsafe: the guard also accepts an existing type whose definition differs.
    fix = Fix("wrap in a DO block that ignores duplicate_object", ctx.stmt.span.start, end,
              wrapped, safe=False)
    what = "CREATE DOMAIN" if kind == "domain" else f"CREATE TYPE ({a.type_kind})"
    yield Violation(
        f"{what} {a.name} fails with 'already exists' when the migration runs again; "
        "PostgreSQL has no CREATE TYPE IF NOT EXISTS",
        "Wrap it in DO $$ BEGIN ... EXCEPTION WHEN duplicate_object THEN NULL; END $$, or drop "
        f"it first with DROP {kind.upper()} IF EXISTS when nothing uses it yet.",
        fix=fix,
    )


def _dropped_in_statement(a: n.AddConstraint, ctx: RuleContext) -> bool:
    for other in ctx.actions:
        if other is a:
            return False
        if isinstance(other, n.DropConstraint) and other.if_exists and \
                other.name == a.constraint.name:
            return True
    return False


@rule("ID008", "add-constraint-without-guard", "idempotency", wants=("AddConstraint",),
      severity="warning", fixable=True, dry_run=True,
      summary="ADD CONSTRAINT with no DROP CONSTRAINT IF EXISTS before it fails (or adds a "
              "duplicate) when the migration runs again.")
def add_constraint_without_guard(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    c = a.constraint
    if covered_by_create(ctx, a.rel):
        return
    if c.name and (ctx.state.guarded("constraint", c.name) or _dropped_in_statement(a, ctx)):
        return
    if c.name is None:
        yield Violation(
            f"an unnamed {c.kind} constraint on {ctx.q(a.rel)} is added again under a new name "
            "when the migration runs again (a duplicate check, foreign key or index), or fails "
            "for a primary key",
            "Name the constraint and drop it first: DROP CONSTRAINT IF EXISTS name, ADD "
            "CONSTRAINT name ...",
        )
        return
    # Unsafe: on a re-run the constraint is dropped and validated again.
    fix = insert_at_name(ctx, ("add", "constraint"), c.name,
                         f"DROP CONSTRAINT IF EXISTS {ident(c.name)}, ", "drop the constraint first",
                         before=True, safe=False)
    yield Violation(
        f"ADD CONSTRAINT {c.name} fails with 'already exists' when the migration runs again",
        f"Drop it first in the same ALTER TABLE: DROP CONSTRAINT IF EXISTS {ident(c.name)}, ADD "
        "CONSTRAINT ... (or guard it in a DO block that checks pg_constraint).",
        fix=fix,
    )


@rule("ID009", "insert-without-on-conflict", "idempotency", wants=("Insert",),
      severity="warning", fixable=True, dry_run=True,
      summary="INSERT ... VALUES of seed rows into an existing table without ON CONFLICT "
              "duplicates the rows or fails when the migration runs again.")
def insert_without_on_conflict(a: n.Insert, ctx: RuleContext) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    if a.on_conflict or a.from_select or a.rows == 0 or covered_by_create(ctx, a.rel):
        return
    fix = None
    if not re.search(r"\bRETURNING\b", ctx.sql, re.I):
        fix = ctx.append_to_statement(" ON CONFLICT DO NOTHING", "add ON CONFLICT DO NOTHING")
        fix = Fix(fix.description, fix.start, fix.end, fix.replacement, safe=False)
    rows = "row" if a.rows == 1 else "rows"
    yield Violation(
        f"INSERT of {a.rows} seed {rows} into {ctx.q(a.rel)} without ON CONFLICT: a second run "
        "inserts them again, or fails on a unique key",
        "Add ON CONFLICT DO NOTHING (or DO UPDATE) on a unique key, or insert with "
        "INSERT ... SELECT ... WHERE NOT EXISTS.",
        fix=fix,
    )


@rule("ID010", "concurrent-index-without-if-not-exists", "idempotency", wants=("CreateIndex",),
      severity="warning", fixable=True, dry_run=True,
      summary="CREATE INDEX CONCURRENTLY without IF NOT EXISTS: a failed build leaves an INVALID "
              "index behind and the retry fails.")
def concurrent_index_without_if_not_exists(a: n.CreateIndex, ctx: RuleContext
                                           ) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    if not a.concurrently or a.if_not_exists or not a.name:
        return
    if ctx.state.guarded("index", a.name) or covered_by_create(ctx, a.rel):
        return
    yield Violation(
        f"CREATE INDEX CONCURRENTLY {a.name} is not re-runnable: a build that fails (deadlock, "
        "lock_timeout, a duplicate key) leaves an INVALID index of that name, and the retry "
        "fails with 'already exists'",
        f"Write CREATE INDEX CONCURRENTLY IF NOT EXISTS, and put DROP INDEX CONCURRENTLY IF "
        f"EXISTS {ident(a.name)}; before it so a retry also replaces an INVALID leftover.",
        fix=ctx.insert_after(r"\bCONCURRENTLY\b", " IF NOT EXISTS", "add IF NOT EXISTS"),
    )


@rule("ID011", "add-enum-value-without-if-not-exists", "idempotency", wants=("AlterEnum",),
      severity="warning", fixable=True, dry_run=True,
      summary="ALTER TYPE ... ADD VALUE without IF NOT EXISTS fails when the migration runs again.")
def add_enum_value_without_if_not_exists(a: n.AlterEnum, ctx: RuleContext
                                         ) -> Iterator[Violation]:
    if not rerun_hazard(ctx):
        return
    if a.new_value is None or a.old_value is not None or a.if_not_exists:
        return
    if ctx.state.type_created_in.get(a.name.name) == ctx.migration.path:
        return  # the type is created in this file; its CREATE TYPE is what a re-run trips on
    yield Violation(
        f"ALTER TYPE {a.name} ADD VALUE '{a.new_value}' fails with 'already exists' when the "
        "migration runs again",
        "Write ADD VALUE IF NOT EXISTS (PostgreSQL 9.3+).",
        fix=ctx.insert_after(r"\bADD\s+VALUE\b", " IF NOT EXISTS", "add IF NOT EXISTS"),
    )
