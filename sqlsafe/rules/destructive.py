"""destructive: statements that lose data."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


def _added_here(ctx: RuleContext, rel: n.Rel, column: str) -> bool:
    col = ctx.state.column(rel, column)
    return col is not None and col.added_in == ctx.migration.path and \
        col.added_index == ctx.migration_index


@rule("DS001", "drop-table", "destructive", wants=("Drop",),
      summary="DROP TABLE deletes the table and every row in it.")
def drop_table(a: n.Drop, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "table":
        return
    for rel in a.rels:
        if ctx.state.is_new(rel):
            continue  # created and dropped in the same migration: nothing is lost
        yield Violation(
            f"DROP TABLE {rel} deletes the table and all its rows; running code that still "
            "reads or writes it starts failing",
            "Stop using the table in the application first, take a backup, and drop it in a "
            "later release.",
        )


@rule("DS002", "drop-column", "destructive", wants=("DropColumn",),
      summary="ALTER TABLE ... DROP COLUMN deletes the column's data; code still selecting or "
              "inserting it fails.")
def drop_column(a: n.DropColumn, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.state.is_new(a.rel) or _added_here(ctx, a.rel, a.column):
        return
    yield Violation(
        f"DROP COLUMN {ctx.q(a.rel)}.{a.column} deletes the column's data, and queries of the "
        "running release that name it fail from then on",
        "Deploy code that no longer reads or writes the column first (e.g. mark it ignored in "
        "the ORM), then drop it in a later migration.",
    )


@rule("DS003", "drop-schema", "destructive", wants=("Drop",),
      summary="DROP SCHEMA deletes a namespace; with CASCADE every table in it goes too.")
def drop_schema(a: n.Drop, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "schema":
        return
    for name in a.names:
        tail = (" and, with CASCADE, every table, view and function in it with all their rows"
                if a.cascade else "; without CASCADE it fails unless the schema is empty")
        yield Violation(
            f"DROP SCHEMA {name} deletes the schema{tail}",
            "Move or drop its objects one by one in reviewed migrations, after a backup.",
        )


@rule("DS004", "drop-database", "destructive", wants=("Other",),
      summary="DROP DATABASE deletes a whole database.")
def drop_database(a: n.Other, ctx: RuleContext) -> Iterator[Violation]:
    if a.node != "DropdbStmt":
        return
    yield Violation(
        "DROP DATABASE deletes a whole database, every schema and row in it",
        "Databases are provisioned and retired outside migrations, by an operator, after a "
        "backup.",
    )


def _cascade_target(a: n.Action) -> str | None:
    match a:
        case n.Drop(cascade=True):
            return f"DROP {a.objtype.upper()} {', '.join(a.names)}"
        case n.DropColumn(cascade=True):
            return f"DROP COLUMN {a.column}"
        case n.DropConstraint(cascade=True):
            return f"DROP CONSTRAINT {a.name}"
    return None


@rule("DS005", "drop-cascade", "destructive", wants=("Drop", "DropColumn", "DropConstraint"),
      summary="DROP ... CASCADE silently drops every object that depends on the target.")
def drop_cascade(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    what = _cascade_target(a)
    if what is None or (isinstance(a, n.Drop) and a.objtype == "schema"):
        return  # DROP SCHEMA ... CASCADE: DS003 says what it takes with it
    if isinstance(a, n.Drop) and a.rels and all(ctx.state.is_new(r) for r in a.rels) and \
            a.objtype in ("table", "view", "materialized view"):
        return
    if isinstance(a, (n.DropColumn, n.DropConstraint)) and ctx.state.is_new(a.rel):
        return
    users = []
    if isinstance(a, n.Drop) and a.objtype in ("type", "domain"):
        # DROP TYPE ... CASCADE drops the table columns of that type, with their data.
        names = {r.name for r in a.rels}
        users = [f"{t.qualified}.{c.name}" for t in ctx.state.tables.values()
                 for c in t.columns.values() if c.type is not None and c.type.name in names]
    extra = f" — including the columns {', '.join(sorted(users))} and their data" if users else ""
    yield Violation(
        f"{what} CASCADE also drops everything that depends on it (views, foreign keys, "
        f"defaults, columns of a dropped type, triggers of a dropped function){extra}, "
        "without naming any of it",
        "Drop the dependent objects explicitly first, then drop without CASCADE so PostgreSQL "
        "refuses if something was missed.",
    )


@rule("DS006", "truncate-table", "destructive", wants=("Truncate",),
      summary="TRUNCATE deletes every row of an existing table (with CASCADE, of every table "
              "referencing it too).")
def truncate_table(a: n.Truncate, ctx: RuleContext) -> Iterator[Violation]:
    rels = [r for r in a.rels if not ctx.state.is_new(r)]
    if not rels:
        return
    names = ", ".join(ctx.q(r) for r in rels)
    tail = ""
    if a.cascade:
        refs = sorted({ref for r in rels for ref in ctx.state.referenced_by_fks(ctx.q(r))})
        tail = (" and, through CASCADE, every table with a foreign key to it"
                + (f" ({', '.join(refs)})" if refs else ""))
    yield Violation(
        f"TRUNCATE deletes every row of {names}{tail}; it cannot be undone once committed",
        "Delete only the rows you mean to, with a WHERE clause, in batches; take a backup first.",
    )


@rule("DS007", "delete-without-where", "destructive", wants=("Delete",),
      summary="DELETE without WHERE empties an existing table.")
def delete_without_where(a: n.Delete, ctx: RuleContext) -> Iterator[Violation]:
    if a.has_where or ctx.state.is_new(a.rel):
        return
    yield Violation(
        f"DELETE FROM {ctx.q(a.rel)} has no WHERE clause: it deletes every row, holding "
        "ROW EXCLUSIVE and row locks on all of them until it commits",
        "Add a WHERE clause that selects exactly the rows to remove (and batch large deletes).",
    )
