"""destructive: statements that lose data."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from ..schema import ConstraintState
from .context import RuleContext, added_constraints


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
    if isinstance(a, n.DropConstraint):
        con = ctx.state.constraint(a.rel, a.name)
        if con is not None and con.kind in ("foreign", "check", "notnull", "exclude"):
            # Only a primary key or unique constraint can have dependents (the foreign keys
            # that reference its index); CASCADE on these drops nothing more.
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


# Constraint names that say "foreign key" by a common convention: PostgreSQL's and Prisma's
# <table>_<columns>_fkey (a digit appended on collision), Laravel's _foreign, hand-written
# _fk / fk_ (Rails' fk_rails_<hash>, EF Core's and TypeORM's FK_...), Django's and pop's
# ..._fk_..., and Hibernate's FK plus 25 letters and digits.
_FK_NAME = re.compile(r"(?:_fkey\d*|_fk|_foreign)$|^fk_|_fk_|^fk[0-9a-z]{25}$", re.I)


def _constraint(ctx: RuleContext, a: n.DropConstraint) -> ConstraintState | None:
    """The constraint the state knows by that name (one created without a name is known by
    the name PostgreSQL gave it, ``schema.implicit_constraint_name``)."""
    return ctx.state.constraint(a.rel, a.name)


def _same_table(ctx: RuleContext, rel: n.Rel, other: n.Rel) -> bool:
    return ctx.q(rel) == ctx.q(other)


def _fk_replaced(a: n.DropConstraint, ctx: RuleContext, con: ConstraintState | None,
                 columns: tuple[str, ...], ref: str | None) -> bool:
    """Another foreign key on the same columns still holds, or one of the same name, on the
    same columns or to the same table is added later in the migration (a new ON DELETE
    action, a type change, the relation moved to another column)."""
    t = ctx.state.table(a.rel)
    if columns and t is not None and any(
            c.kind == "foreign" and c is not con and c.columns == columns
            for c in t.constraints.values()):
        return True
    here = next((i for i, x in enumerate(ctx.actions) if x is a), len(ctx.actions))
    later = list(ctx.actions[here + 1:])
    later += [x for _, x in ctx.later_actions()]
    for x in later:
        cons = added_constraints(x) if isinstance(x, (n.AddConstraint, n.AddColumn)) and \
            _same_table(ctx, x.rel, a.rel) else ()
        if any(c.kind == "foreign" and (c.name == a.name or (columns and c.columns == columns)
                                        or (ref is not None and c.ref_table is not None and
                                            ctx.q(c.ref_table) == ref))
               for c in cons):
            return True
    return False


def _goes_with_table_or_column(a: n.DropConstraint, ctx: RuleContext,
                               columns: tuple[str, ...], ref: str | None) -> bool:
    """The same migration later drops the table, the key's columns or the table it references:
    DS001 / DS002 report that, and the foreign key goes with it either way."""
    dropped_cols = set()
    for _, x in ctx.later_actions():
        if isinstance(x, n.Drop) and x.objtype == "table" and any(
                _same_table(ctx, r, a.rel) or (ref is not None and ctx.q(r) == ref)
                for r in x.rels):
            return True
        if isinstance(x, n.DropColumn) and _same_table(ctx, x.rel, a.rel):
            dropped_cols.add(x.column)
    if not dropped_cols:
        return False
    if columns:
        return set(columns) <= dropped_cols
    # Known by its name only: <table>_<column>_fkey (PostgreSQL, Prisma) or _foreign (Laravel).
    name = a.name.lower()
    return any(name.startswith(f"{a.rel.name}_{c}_".lower()) for c in dropped_cols)


@rule("DS008", "drop-foreign-key", "destructive", wants=("DropConstraint",), severity="warning",
      summary="ALTER TABLE ... DROP CONSTRAINT of a foreign key: from then on rows can point at "
              "nothing.")
def drop_foreign_key(a: n.DropConstraint, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.state.is_new(a.rel):
        return  # created in this migration: nobody has written a row that relies on it yet
    con = _constraint(ctx, a)
    if con is not None:
        if con.kind != "foreign":
            return
        columns, ref = con.columns, con.ref_table
        # Added earlier in this migration and dropped again: nothing existed before it.
        if any(isinstance(x, n.AddConstraint) and x.constraint.name == a.name and
               _same_table(ctx, x.rel, a.rel) for _, x in ctx.earlier_actions()):
            return
    else:
        t = ctx.state.table(a.rel)
        if not _FK_NAME.search(a.name) or (a.if_exists and t is not None and t.known):
            # Not named like a foreign key: a unique or check constraint is no business of
            # this rule. IF EXISTS of a constraint the set never gave a table it created: a
            # guard that most likely drops nothing.
            return
        columns, ref = (), None
    if _fk_replaced(a, ctx, con, columns, ref) or _goes_with_table_or_column(a, ctx, columns, ref):
        return
    target = f" to {ref}" if ref else ""
    cols = f" ({', '.join(columns)})" if columns else ""
    known = "" if con is not None else \
        " (a foreign key by its name: the migrations do not show its definition)"
    yield Violation(
        f"DROP CONSTRAINT {a.name} removes the foreign key{cols} of {ctx.q(a.rel)}{target}"
        f"{known}: from now on rows can be written that point at no row (orphans), and "
        "deleting a referenced row no longer cascades or fails as it did",
        "If the key is being replaced (other columns, a new ON DELETE action, a type change), "
        "add the new one first in the same migration (ADD CONSTRAINT ... NOT VALID, then "
        "VALIDATE CONSTRAINT in a later migration) and drop the old one after it. If it goes "
        "for good, drop it once the application no longer relies on it, and say why in a "
        "suppression.",
    )
