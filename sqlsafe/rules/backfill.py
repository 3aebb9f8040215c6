"""backfill: constraints that existing rows must satisfy with no backfill before them, and
backfills done unsafely.

The dataflow: a column added with ADD COLUMN to a table that already has rows holds, in those
rows, the ADD COLUMN default (or NULL without one) until an UPDATE backfills it. A later SET
DEFAULT changes only future INSERTs. ``SchemaState`` records the ADD COLUMN default and whether
an UPDATE (or a DO block updating the table) has set the column since, across migrations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import locks as lk
from .. import nodes as n
from ..registry import Violation, rule
from ..schema import ColumnState
from .context import RuleContext

BATCH_RECIPE = (
    "-- in a migration of its own, outside a transaction, repeated until it updates 0 rows:\n"
    "UPDATE {t} SET {c} = ... WHERE id IN (\n"
    "  SELECT id FROM {t} WHERE {c} IS NULL ORDER BY id LIMIT 10000);"
)


def _old_rows(ctx: RuleContext, rel: n.Rel, name: str) -> tuple[ColumnState, str] | None:
    """What rows that existed before ``ADD COLUMN name`` still hold, if nothing backfilled them.

    Returns the column and ``"null"`` or ``"constant"`` (the ADD COLUMN default, a non-volatile
    expression evaluated once). None when the column was created with its table, has been
    backfilled, or its default gives each row its own value.
    """
    col = ctx.state.column(rel, name)
    t = ctx.state.table(rel)
    if col is None or t is None or col.added_in is None or col.backfilled:
        return None
    if ctx.state.is_new(rel):
        return None  # the table itself is new in this migration: it has no rows
    if t.created_in == col.added_in and t.created_index == col.added_index:
        return None  # added in the migration that created the table: no rows then
    d = col.added_default
    if d is None or d.is_null:
        # NOT NULL now means either it was added NOT NULL (the ADD only succeeds on an empty
        # table) or a SET NOT NULL already passed: no NULL rows either way.
        return None if col.not_null else (col, "null")
    if d.volatile is False:
        return col, "constant"
    return None  # volatile or unknown default: rows differ, we cannot tell


def _null_rejecting(c: n.ConstraintDef) -> list[str]:
    cols = [c.not_null_column] if c.not_null_column else []
    for col in c.columns or ():
        if col not in cols and re.search(rf"\b{re.escape(col)}\s+IS\s+NOT\s+NULL\b",
                                         c.expr_sql, re.I):
            cols.append(col)
    if not c.columns:
        for m in re.finditer(r"\b(\w+)\s+IS\s+NOT\s+NULL\b", c.expr_sql, re.I):
            if m.group(1) not in cols:
                cols.append(m.group(1))
    return cols


@rule("BF001", "not-null-without-backfill", "backfill", wants=("SetNotNull",),
      summary="SET NOT NULL on a column added earlier in the set that no UPDATE has backfilled.",
      dry_run=True)
def not_null_without_backfill(a: n.SetNotNull, ctx: RuleContext) -> Iterator[Violation]:
    found = _old_rows(ctx, a.rel, a.column)
    if found is None or found[1] != "null" or found[0].not_null:
        return
    col = found[0]
    if ctx.state.has_valid_not_null_check(a.rel, a.column):
        return
    yield Violation(
        f"{ctx.q(a.rel)}.{a.column} was added in {col.added_in} without a DEFAULT and nothing "
        "backfills it before SET NOT NULL: the statement fails on the rows that existed then",
        "Backfill the column (UPDATE in batches, in its own migration) before adding NOT NULL.",
        recipe=BATCH_RECIPE.format(t=a.rel, c=a.column),
    )


@rule("BF002", "check-without-backfill", "backfill",
      wants=("AddConstraint", "ValidateConstraint"),
      summary="A validated CHECK (... IS NOT NULL) on a column added earlier in the set that no "
              "UPDATE has backfilled.", dry_run=True)
def check_without_backfill(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    rel: n.Rel = a.rel  # type: ignore[attr-defined]
    match a:
        case n.AddConstraint(constraint=n.ConstraintDef(kind="check", not_valid=False) as c):
            cols, what = _null_rejecting(c), "ADD CONSTRAINT ... CHECK"
        case n.ValidateConstraint():
            cs = ctx.state.constraint(a.rel, a.name)
            if cs is None or cs.kind != "check" or cs.valid or not cs.not_null_column:
                return
            cols, what = [cs.not_null_column], f"VALIDATE CONSTRAINT {a.name}"
        case _:
            return
    for name in cols:
        found = _old_rows(ctx, rel, name)
        if found is None or found[1] != "null":
            continue
        yield Violation(
            f"{what} checks that {name} IS NOT NULL, but {ctx.q(rel)}.{name} was added in "
            f"{found[0].added_in} without a DEFAULT and never backfilled: validation fails on "
            "the rows that existed then",
            "Backfill the column in batches (its own migration) before validating the CHECK.",
            recipe=BATCH_RECIPE.format(t=rel, c=name),
        )


def _key_columns(a: n.Action) -> tuple[str, tuple[str, ...]] | None:
    match a:
        case n.AddConstraint(constraint=n.ConstraintDef(kind="primary" | "unique") as c) \
                if c.using_index is None:
            return c.kind, c.columns
        case n.CreateIndex(unique=True, partial=False):
            return "unique", a.columns
    return None


@rule("BF003", "unique-key-without-backfill", "backfill",
      wants=("AddConstraint", "CreateIndex"),
      summary="A UNIQUE or PRIMARY KEY on columns added earlier in the set whose old rows all hold "
              "the same ADD COLUMN default (or NULL, for a primary key) with no backfill.",
      dry_run=True)
def unique_key_without_backfill(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    key = _key_columns(a)
    if key is None or not key[1]:
        return
    kind, cols = key
    rel: n.Rel = a.rel  # type: ignore[attr-defined]
    olds = [_old_rows(ctx, rel, c) for c in cols]
    if kind == "primary":
        nulls = [c for c, o in zip(cols, olds) if o is not None and o[1] == "null"]
        if not nulls:
            return
        why = (f"{', '.join(nulls)} {'is' if len(nulls) == 1 else 'are'} NULL in the rows that "
               "existed when added, and a primary key column must be NOT NULL")
    else:
        # NULLs never collide in a unique index, but one shared non-null value does as soon as
        # the table has two rows.
        if any(o is None or o[1] != "constant" for o in olds):
            return
        defaults = ", ".join(f"{c} = {o[0].added_default.sql}"  # type: ignore[union-attr]
                             for c, o in zip(cols, olds) if o is not None)
        why = (f"every row that existed when the column was added holds the same value "
               f"({defaults}), so the key is duplicated as soon as the table has two rows")
    yield Violation(
        f"{'PRIMARY KEY' if kind == 'primary' else 'unique key'} on {ctx.q(rel)} "
        f"({', '.join(cols)}) fails: {why}",
        "Backfill distinct values (in batches, in their own migration) before adding the key.",
    )


@rule("BF004", "foreign-key-without-backfill", "backfill",
      wants=("AddConstraint", "ValidateConstraint"), severity="warning",
      summary="A validated FOREIGN KEY on a column added earlier in the set with a constant "
              "default and no backfill: every old row references that one value.", dry_run=True)
def foreign_key_without_backfill(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    rel: n.Rel = a.rel  # type: ignore[attr-defined]
    match a:
        case n.AddConstraint(constraint=n.ConstraintDef(kind="foreign", not_valid=False) as c):
            cols, ref = c.columns, str(c.ref_table) if c.ref_table else "the referenced table"
        case n.ValidateConstraint():
            cs = ctx.state.constraint(a.rel, a.name)
            if cs is None or cs.kind != "foreign" or cs.valid:
                return
            cols, ref = cs.columns, cs.ref_table or "the referenced table"
        case _:
            return
    olds = [_old_rows(ctx, rel, c) for c in cols]
    # A NULL in any key column satisfies the default MATCH SIMPLE foreign key.
    if not olds or any(o is None or o[1] != "constant" for o in olds):
        return
    vals = ", ".join(o[0].added_default.sql for o in olds if o)  # type: ignore[union-attr]
    yield Violation(
        f"every row of {ctx.q(rel)} that existed when {', '.join(cols)} was added holds the "
        f"ADD COLUMN default ({vals}) and nothing backfilled it: the foreign key fails unless "
        f"{ref} has a row with that key",
        "Backfill real references (in batches, in their own migration) before validating the "
        "foreign key, or add the column without a default so old rows are NULL.",
    )


@rule("BF005", "unbatched-backfill", "backfill", wants=("Update",), severity="warning",
      summary="An UPDATE without WHERE rewrites every row of an existing table in one statement.")
def unbatched_backfill(a: n.Update, ctx: RuleContext) -> Iterator[Violation]:
    if a.has_where or not ctx.existing(a.rel):
        return
    cols = ", ".join(a.columns) or "..."
    yield Violation(
        f"UPDATE {ctx.q(a.rel)} without WHERE writes a new version of every row in one "
        "statement: it holds ROW EXCLUSIVE and a row lock on every row until it commits "
        "(concurrent updates of those rows wait), writes a burst of WAL and bloats the table",
        "Backfill in batches by primary-key range, in a migration of its own, so each batch "
        "commits quickly.",
        recipe=BATCH_RECIPE.format(t=a.rel, c=cols.split(",")[0]),
    )


_NEEDS_BACKFILL = ("SetNotNull", "AddConstraint", "ValidateConstraint")


@rule("BF006", "backfill-in-ddl-transaction", "backfill",
      wants=("Update", "Delete", *_NEEDS_BACKFILL),
      summary="A backfill UPDATE in the same transaction as DDL on the same table: the DDL's "
              "lock or the backfill's row locks are held for the whole of both.", dry_run=True)
def backfill_in_ddl_transaction(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    rel: n.Rel = a.rel  # type: ignore[attr-defined]
    tx = ctx.state.tx
    if not tx.open or ctx.state.is_new(rel):
        return
    key = ctx.q(rel)
    held = tx.locks.get(key, "")
    if isinstance(a, (n.Update, n.Delete)):
        if not lk.is_dangerous(held) or key in tx.updated_tables:
            return  # one finding per table and transaction
        here = (ctx.migration.path, ctx.migration_index)
        new_cols = [c for c in getattr(a, "columns", ()) if (col := ctx.state.column(rel, c))
                    and (col.added_in, col.added_index) == here]
        if a.has_where and not new_cols:
            return  # a targeted data fix, not a backfill of a new column
        yield Violation(
            f"{a.kind.upper()} of {key} runs in the transaction that already holds "
            f"{lk.SQL_NAMES[held]} on it from earlier DDL: reads and "
            "writes of the table wait for the whole backfill",
            "Commit the DDL first; backfill in batches in a migration of its own; add the "
            "constraint in a later one.",
        )
        return
    if key not in tx.updated_tables or lk.is_dangerous(held):
        return
    if isinstance(a, n.AddConstraint) and a.constraint.not_valid:
        return
    yield Violation(
        f"{key} was backfilled earlier in this transaction: the UPDATE's row locks on every "
        "row it touched are held while this statement waits for its lock and validates, and "
        "a concurrent writer waiting on one of those rows deadlocks with it",
        "Backfill in a migration of its own (in batches) and add the constraint in the next one.",
    )


_DDL = (n.AddColumn, n.DropColumn, n.AlterColumnType, n.SetNotNull, n.DropNotNull,
        n.AddConstraint, n.ValidateConstraint, n.CreateIndex)


@rule("BF007", "backfill-mixed-with-ddl", "backfill", wants=("Update", "Delete"),
      severity="warning",
      summary="An UPDATE/DELETE of an existing table in a migration that also changes that "
              "table's schema, outside a transaction.")
def backfill_mixed_with_ddl(a: n.Update | n.Delete, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.in_tx or not ctx.existing(a.rel):
        return  # inside a transaction BF006 judges the pair
    key = ctx.q(a.rel)
    for line, other in ctx.earlier_actions() + ctx.later_actions():
        if isinstance(other, _DDL) and ctx.q(other.rel) == key:
            yield Violation(
                f"{a.kind.upper()} of {key} shares a migration with a schema change of it "
                f"(line {line}): a slow or failing backfill leaves the migration half applied, "
                "and a retry runs the DDL again",
                "Put data changes in a migration of their own, between the schema change that "
                "makes them possible and the one that relies on them.",
            )
            return


@rule("BF008", "copy-table-in-one-statement", "backfill", wants=("Insert",), severity="warning",
      opt_in=True,
      summary="INSERT ... SELECT copying an existing table in one statement misses rows written "
              "during the copy and holds one long snapshot.")
def copy_table_in_one_statement(a: n.Insert, ctx: RuleContext) -> Iterator[Violation]:
    if not a.from_select:
        return
    for src in a.source_rels:
        if ctx.existing(src) and ctx.q(src) != ctx.q(a.rel):
            yield Violation(
                f"INSERT INTO {ctx.q(a.rel)} ... SELECT FROM {ctx.q(src)} copies the table in one "
                "statement: rows written to it after the statement's snapshot are not copied, "
                "and the long transaction holds back VACUUM and writes a burst of WAL",
                "Copy in batches by primary-key range, with a trigger (or dual writes) keeping "
                "the copy current while it runs.",
            )
            return
