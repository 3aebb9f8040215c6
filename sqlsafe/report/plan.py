"""What the report derives from the statements themselves (no database): the rollback SQL for
what can be undone, the list of what cannot, and the verification queries with their expected
results. ``verify.py`` then runs both against the dry-run database, so nothing here is asserted
without being measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from .. import nodes as n
from ..model import DiscoveryResult, Migration, Section
from ..normalize import normalize
from ..parse import parse_section
from .model import BackoutStep, Irreversible, VerifyQuery


@dataclass(frozen=True)
class Stmt:
    line: int
    sql: str
    actions: tuple[n.Action, ...]


def statements_of(section: Section) -> list[Stmt]:
    out = []
    for s in parse_section(section).statements:
        actions = normalize(s.node) if s.node is not None else ()
        out.append(Stmt(s.span.line, s.sql, actions))
    return out


def iter_actions(section: Section) -> Iterator[tuple[Stmt, n.Action]]:
    for s in statements_of(section):
        for a in s.actions:
            yield s, a


def uses_concurrently(section: Section) -> bool:
    """CONCURRENTLY statements cannot run inside a transaction block (so never under
    ``psql --single-transaction``)."""
    for _, a in iter_actions(section):
        if getattr(a, "concurrently", False) and not isinstance(a, n.RefreshMatView):
            return True
    return False


def has_transaction_control(section: Section) -> bool:
    return any(isinstance(a, n.Transaction) for _, a in iter_actions(section))


# ---------------------------------------------------------------------------- identifiers


def ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL would fold or reject it unquoted."""
    if name and (name[0].isalpha() or name[0] == "_") and name == name.lower() and \
            all(c.isalnum() or c == "_" for c in name) and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


def qrel(rel: n.Rel) -> str:
    return f"{ident(rel.schema or 'public')}.{ident(rel.name)}"


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key(rel: n.Rel) -> str:
    return f"{rel.schema or 'public'}.{rel.name}"


# ---------------------------------------------------------------------------- backout


def backout(discovery: DiscoveryResult, paths: dict[str, str], from_index: int = 0
            ) -> tuple[list[BackoutStep], list[Irreversible], list[Irreversible]]:
    """Rollback SQL per migration (listed in reverse apply order), what needs a manual step,
    and what cannot be undone because data is gone. ``paths`` maps display paths to the
    report's relative paths."""
    steps: list[BackoutStep] = []
    manual: list[Irreversible] = []
    lost: list[Irreversible] = []
    created: set[str] = set()  # tables created by the set so far: dropping them drops the rest
    per_migration: list[tuple[Migration, list[str], bool]] = []
    for m in discovery.migrations[from_index:]:
        path = paths.get(m.path, m.path)
        sql: list[str] = []
        concurrently = False
        for stmt, a in iter_actions(m.section):
            undo, conc = _undo(a, created, path, stmt.line, manual, lost)
            if undo:
                sql.append(undo)
                concurrently |= conc
            if isinstance(a, n.CreateTable) and not a.temporary:
                created.add(_key(a.rel))
        sql.reverse()
        per_migration.append((m, sql, concurrently))
    for m, sql, conc in reversed(per_migration):
        steps.append(BackoutStep(paths.get(m.path, m.path), tuple(sql), conc))
    return steps, manual, lost


def _undo(a: n.Action, created: set[str], path: str, line: int, manual: list[Irreversible],
          lost: list[Irreversible]) -> tuple[str | None, bool]:
    def man(what: str) -> None:
        manual.append(Irreversible(path, line, what))

    def gone(what: str) -> None:
        lost.append(Irreversible(path, line, what))

    match a:
        case n.CreateTable(temporary=False):
            kind = "MATERIALIZED VIEW" if a.materialized else "TABLE"
            return f"DROP {kind} IF EXISTS {qrel(a.rel)};", False
        case n.CreateIndex(name=str()):
            if _key(a.rel) in created:
                return None, False  # goes with its table
            schema = ident(a.rel.schema or "public")
            # CONCURRENTLY: a plain DROP INDEX would hold ACCESS EXCLUSIVE on the table.
            return f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{ident(a.name or '')};", True
        case n.CreateIndex():
            man(f"unnamed index on {_key(a.rel)}: look its name up in pg_indexes, then DROP "
                "INDEX CONCURRENTLY")
        case n.AddColumn():
            if _key(a.rel) not in created:
                return (f"ALTER TABLE {qrel(a.rel)} DROP COLUMN IF EXISTS "
                        f"{ident(a.column.name)};"), False
        case n.AddConstraint():
            if _key(a.rel) in created:
                return None, False
            if a.constraint.name:
                return (f"ALTER TABLE {qrel(a.rel)} DROP CONSTRAINT IF EXISTS "
                        f"{ident(a.constraint.name)};"), False
            man(f"unnamed {a.constraint.kind} constraint on {_key(a.rel)}: look its name up in "
                "pg_constraint, then DROP CONSTRAINT")
        case n.SetNotNull():
            if _key(a.rel) not in created:
                return (f"ALTER TABLE {qrel(a.rel)} ALTER COLUMN {ident(a.column)} "
                        "DROP NOT NULL;"), False
        case n.CreateType():
            return f"DROP TYPE IF EXISTS {qrel(a.name)};", False
        case n.CreateObject(objtype="view" | "sequence" | "schema" | "extension" | "domain"):
            if a.or_replace:
                man(f"CREATE OR REPLACE {a.objtype} {a.name}: restore the previous definition "
                    "from the migration that created it")
                return None, False
            return f"DROP {a.objtype.upper()} IF EXISTS {a.name};", False
        case n.CreateObject(objtype="trigger" | "policy") if a.rel is not None:
            return f"DROP {a.objtype.upper()} IF EXISTS {ident(a.name)} ON {qrel(a.rel)};", False
        case n.CreateFunction():
            if a.or_replace:
                man(f"CREATE OR REPLACE {'PROCEDURE' if a.is_procedure else 'FUNCTION'} "
                    f"{a.name}: if it replaced an older version, restore that definition")
            kind = "PROCEDURE" if a.is_procedure else "FUNCTION"
            return f"DROP {kind} IF EXISTS {a.name};", False
        case n.Rename(rel=n.Rel()) if a.objtype == "column":
            assert a.rel is not None
            return (f"ALTER TABLE {qrel(a.rel)} RENAME COLUMN {ident(a.new)} "
                    f"TO {ident(a.old)};"), False
        case n.Rename(rel=n.Rel()) if a.objtype == "table":
            assert a.rel is not None
            renamed = n.Rel(a.new, a.rel.schema)
            return f"ALTER TABLE {qrel(renamed)} RENAME TO {ident(a.old)};", False
        case n.Drop(objtype="table" | "materialized view" | "sequence"):
            gone(f"DROP {a.objtype.upper()} {', '.join(a.names)}: the rows are gone; "
                 "only a backup brings them back")
        case n.Drop():
            man(f"DROP {a.objtype.upper()} {', '.join(a.names)}: recreate it from the migration "
                "that created it")
        case n.DropColumn():
            gone(f"DROP COLUMN {a.column} on {_key(a.rel)}: its values are gone")
        case n.Truncate():
            gone(f"TRUNCATE {', '.join(_key(r) for r in a.rels)}: every row is gone")
        case n.Delete():
            gone(f"DELETE FROM {_key(a.rel)}: the deleted rows are gone")
        case n.Update():
            if _key(a.rel) not in created:
                cols = ", ".join(a.columns) or "columns"
                gone(f"UPDATE {_key(a.rel)} ({cols}): the previous values are overwritten")
        case n.AlterColumnType():
            if _key(a.rel) not in created:
                gone(f"ALTER COLUMN {a.column} TYPE {a.type.sql or a.type.name} on {_key(a.rel)}: "
                     "values are converted in place; converting back loses what does not "
                     "round-trip")
        case n.AlterEnum(new_value=str()) if a.old_value is None:
            man(f"ALTER TYPE {a.name} ADD VALUE {a.new_value!r}: PostgreSQL cannot drop an "
                "enum value; recreate the type to remove it")
        case n.DropConstraint():
            man(f"DROP CONSTRAINT {a.name} on {_key(a.rel)}: re-add it from the migration "
                "that created it")
        case n.SetDefault() | n.DropDefault():
            if _key(a.rel) not in created:
                man(f"default of {_key(a.rel)}.{a.column} changed: restore the previous default")
        case n.Insert():
            if _key(a.rel) not in created:
                man(f"INSERT INTO {_key(a.rel)}: remove the inserted rows if they must go")
    return None, False


# ---------------------------------------------------------------------------- verification


def verification_queries(discovery: DiscoveryResult, paths: dict[str, str],
                         from_index: int = 0) -> list[VerifyQuery]:
    """One query per object the set creates or removes, with the result expected once every
    migration has run. When a later migration undoes an earlier one's object, the later one
    owns the check (the expectation is about the final state)."""
    checks: dict[tuple[str, ...], VerifyQuery] = {}
    for m in discovery.migrations[from_index:]:
        path = paths.get(m.path, m.path)
        for _, a in iter_actions(m.section):
            for key, desc, sql, expected in _checks(a):
                checks.pop(key, None)  # re-insert: keeps the last migration's position
                checks[key] = VerifyQuery(path, desc, sql, expected)
            _track_columns(a, checks)
    return list(checks.values())


def _track_columns(a: n.Action, checks: dict[tuple[str, ...], VerifyQuery]) -> None:
    """Keep a table's expected column list right when a later statement adds or drops one."""
    if not isinstance(a, (n.AddColumn, n.DropColumn)):
        return
    key = ("columns", _key(a.rel))
    q = checks.get(key)
    if q is None:
        return
    cols = q.expected.split(",") if q.expected else []
    if isinstance(a, n.AddColumn) and a.column.name not in cols:
        cols.append(a.column.name)
    elif isinstance(a, n.DropColumn) and a.column in cols:
        cols.remove(a.column)
    checks[key] = replace(q, expected=",".join(cols))


def _table_exists(rel: n.Rel) -> str:
    return ("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
            f"{lit(rel.schema or 'public')} AND table_name = {lit(rel.name)}")


def _column_exists(rel: n.Rel, column: str) -> str:
    return ("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
            f"{lit(rel.schema or 'public')} AND table_name = {lit(rel.name)} "
            f"AND column_name = {lit(column)}")


def _checks(a: n.Action) -> list[tuple[tuple[str, ...], str, str, str]]:
    out: list[tuple[tuple[str, ...], str, str, str]] = []
    match a:
        case n.CreateTable(temporary=False, materialized=False):
            out.append((("table", _key(a.rel)), f"table {_key(a.rel)} exists",
                        _table_exists(a.rel), "1"))
            if a.columns:
                out.append((("columns", _key(a.rel)), f"columns of {_key(a.rel)}, in order",
                            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                            "information_schema.columns WHERE table_schema = "
                            f"{lit(a.rel.schema or 'public')} AND table_name = {lit(a.rel.name)}",
                            ",".join(c.name for c in a.columns)))
        case n.AddColumn():
            out.append((("column", _key(a.rel), a.column.name),
                        f"column {_key(a.rel)}.{a.column.name} exists",
                        _column_exists(a.rel, a.column.name), "1"))
        case n.DropColumn():
            out.append((("column", _key(a.rel), a.column),
                        f"column {_key(a.rel)}.{a.column} is gone",
                        _column_exists(a.rel, a.column), "0"))
        case n.Drop(objtype="table"):
            for rel in a.rels:
                out.append((("table", _key(rel)), f"table {_key(rel)} is gone",
                            _table_exists(rel), "0"))
        case n.CreateIndex(name=str()):
            schema = a.rel.schema or "public"
            out.append((("index", schema, a.name or ""), f"index {schema}.{a.name} exists and is valid",
                        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                        "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = "
                        f"{lit(schema)} AND c.relname = {lit(a.name or '')} AND i.indisvalid",
                        "1"))
        case n.AddConstraint() if a.constraint.name:
            out.append((("constraint", _key(a.rel), a.constraint.name),
                        f"constraint {a.constraint.name} on {_key(a.rel)} exists"
                        + (" (NOT VALID)" if a.constraint.not_valid else " and is validated"),
                        "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                        f"{lit(qrel(a.rel))}::regclass AND conname = {lit(a.constraint.name)}"
                        + ("" if a.constraint.not_valid else " AND convalidated"), "1"))
        case n.ValidateConstraint():
            out.append((("constraint", _key(a.rel), a.name),
                        f"constraint {a.name} on {_key(a.rel)} is validated",
                        "SELECT count(*) FROM pg_constraint WHERE conrelid = "
                        f"{lit(qrel(a.rel))}::regclass AND conname = {lit(a.name)} "
                        "AND convalidated", "1"))
        case n.SetNotNull():
            out.append((("notnull", _key(a.rel), a.column),
                        f"{_key(a.rel)}.{a.column} is NOT NULL",
                        "SELECT is_nullable FROM information_schema.columns WHERE table_schema "
                        f"= {lit(a.rel.schema or 'public')} AND table_name = {lit(a.rel.name)} "
                        f"AND column_name = {lit(a.column)}", "NO"))
        case n.CreateType(type_kind="enum"):
            labels = ",".join(a.values)
            out.append((("type", _key(a.name)), f"enum {_key(a.name)} has its values",
                        "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM "
                        "pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace s ON "
                        f"s.oid = t.typnamespace WHERE s.nspname = {lit(a.name.schema or 'public')} "
                        f"AND t.typname = {lit(a.name.name)}", labels))
    return out
