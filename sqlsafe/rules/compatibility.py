"""compatibility: changes that break application code still running during the deploy.

During a rolling deploy the previous release keeps running against the migrated schema for a
while (and keeps running for good if the deploy is rolled back). Anything it names that the
migration renames, narrows or stops defaulting makes its queries fail.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext

_EXPAND_CONTRACT = (
    "-- 1. add the new {what} next to the old one\n"
    "-- 2. deploy code that writes both and reads the old one\n"
    "-- 3. backfill the new {what} from the old one (in batches)\n"
    "-- 4. deploy code that reads and writes only the new one\n"
    "-- 5. drop the old {what} in a later migration"
)


def _untouched_by_code(ctx: RuleContext, rel: n.Rel, column: str | None = None) -> bool:
    """The table (or column) is new in this migration: no running code uses it yet."""
    if ctx.state.is_new(rel):
        return True
    if column is None:
        return False
    col = ctx.state.column(rel, column)
    return col is not None and col.added_in == ctx.migration.path and \
        col.added_index == ctx.migration_index


@rule("CP001", "not-null-column-without-default", "compatibility", wants=("AddColumn",),
      summary="ADD COLUMN ... NOT NULL without a DEFAULT on an existing table fails on rows and "
              "breaks INSERTs of code that does not know the column.", dry_run=True)
def not_null_column_without_default(a: n.AddColumn, ctx: RuleContext) -> Iterator[Violation]:
    col = a.column
    if not col.not_null or col.default is not None or col.identity or col.serial:
        return
    if col.generated_stored or not ctx.existing(a.rel):
        return
    yield Violation(
        f"column {col.name} is NOT NULL with no DEFAULT: the ALTER fails if {ctx.q(a.rel)} has "
        "rows, and INSERTs from code that does not set the column fail",
        "Add the column nullable (or with a DEFAULT), backfill it, then add the NOT NULL "
        "constraint in a later migration.",
        recipe=(
            f"ALTER TABLE {a.rel} ADD COLUMN {col.name} {col.type};\n"
            f"-- backfill in batches, in its own migration\n"
            f"ALTER TABLE {a.rel} ADD CONSTRAINT {a.rel.name}_{col.name}_not_null "
            f"CHECK ({col.name} IS NOT NULL) NOT VALID;\n"
            f"ALTER TABLE {a.rel} VALIDATE CONSTRAINT {a.rel.name}_{col.name}_not_null;\n"
            f"ALTER TABLE {a.rel} ALTER COLUMN {col.name} SET NOT NULL;"
        ),
    )


@rule("CP002", "rename-column", "compatibility", wants=("Rename",),
      summary="RENAME COLUMN breaks every query of the running release that uses the old name.")
def rename_column(a: n.Rename, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "column" or a.rel is None or _untouched_by_code(ctx, a.rel, a.old):
        return
    yield Violation(
        f"renaming {ctx.q(a.rel)}.{a.old} to {a.new} breaks every query of the running release "
        "that still uses the old name, until the new code is fully deployed",
        "Add the new column, write both, backfill, switch reads, then drop the old column in a "
        "later release (or keep the old name and map it in the application).",
        recipe=_EXPAND_CONTRACT.format(what="column"),
    )


@rule("CP003", "rename-table", "compatibility", wants=("Rename", "SetSchema"),
      summary="RENAME of a table or view, or a move to another schema (SET SCHEMA), breaks "
              "every query of the running release that uses the old name.")
def rename_table(a: n.Rename | n.SetSchema, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype not in ("table", "view", "materialized view", "foreign table"):
        return
    if a.rel is None or _untouched_by_code(ctx, a.rel):
        return
    if isinstance(a, n.SetSchema):
        if a.new_schema == (a.rel.schema or ctx.state.search_schema):
            return  # already there: nothing moves
        yield Violation(
            f"moving {a.objtype} {ctx.q(a.rel)} to schema {a.new_schema} breaks every query of "
            "the running release that still finds it in its old schema, by a qualified name "
            "or through search_path",
            f"Move in steps: move it and create a view with the old name over it "
            f"(CREATE VIEW {ctx.q(a.rel)} AS SELECT * FROM {a.new_schema}.{a.rel.name}; simple "
            "views are updatable), deploy code using the new schema, then drop the view.",
            recipe=_EXPAND_CONTRACT.format(what="table"),
        )
        return
    yield Violation(
        f"renaming {a.objtype} {ctx.q(a.rel)} to {a.new} breaks every query of the running "
        "release that still uses the old name",
        "Rename in steps: rename the table and create a view with the old name over it (simple "
        "views are updatable), deploy code using the new name, then drop the view.",
        recipe=_EXPAND_CONTRACT.format(what="table"),
    )


@rule("CP004", "rename-schema", "compatibility", wants=("Rename",),
      summary="ALTER SCHEMA ... RENAME TO breaks every query and search_path that uses the old "
              "name.")
def rename_schema(a: n.Rename, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "schema":
        return
    yield Violation(
        f"renaming schema {a.old} to {a.new} breaks every qualified name, search_path setting "
        "and grant-by-name of the running release that uses the old name",
        "Create the new schema, move objects with ALTER ... SET SCHEMA after code stops "
        "qualifying them with the old name, or leave the name alone.",
    )


_INT_BYTES = {"int2": 2, "int4": 4, "int8": 8}
_TEXTUAL = ("text", "varchar", "bpchar")
_PRECISION = ("timestamp", "timestamptz", "time", "timetz", "interval")


def _limit(t: n.TypeRef) -> int | None:
    """The character limit of a textual type; None when unlimited."""
    if t.name == "text" or not t.mods:
        return None if t.name != "bpchar" else 1
    return t.mods[0]


def narrowing(old: n.TypeRef | None, new: n.TypeRef) -> str | None:
    """Why a type change narrows what the column accepts (None: it does not, or unknown)."""
    if old is None or old.array != new.array:
        return None
    o, w = old.name, new.name
    if o in _INT_BYTES and w in _INT_BYTES and _INT_BYTES[w] < _INT_BYTES[o]:
        return f"{w} holds fewer values than {o}"
    if o in ("numeric", "float4", "float8") and w in _INT_BYTES:
        return f"{w} rounds away fractions that {o} kept"
    if (o, w) == ("float8", "float4") or (o == "numeric" and w in ("float4", "float8")):
        return f"{w} keeps fewer significant digits than {o}"
    if o in _TEXTUAL and w in ("varchar", "bpchar") and new.mods:
        before, after = _limit(old), new.mods[0]
        if before is None or after < before:
            was = "unlimited" if before is None else str(before)
            return f"the length limit drops from {was} to {after}"
    if o == w == "numeric" and new.mods:
        if not old.mods:
            return "an unconstrained numeric becomes constrained"
        p, s = old.mods[0], old.mods[1] if len(old.mods) > 1 else 0
        p2, s2 = new.mods[0], new.mods[1] if len(new.mods) > 1 else 0
        if s2 < s:
            return f"the scale drops from {s} to {s2}, so existing values are rounded"
        if p2 - s2 < p - s:
            return f"fewer digits fit before the decimal point ({p2 - s2} instead of {p - s})"
    if o == w and o in _PRECISION and new.mods and (not old.mods or new.mods[0] < old.mods[0]):
        return "fractional seconds are rounded to fewer digits"
    return None


@rule("CP005", "narrowing-type-change", "compatibility", wants=("AlterColumnType",),
      summary="ALTER COLUMN TYPE to a narrower type (shorter varchar, smaller integer, lower "
              "numeric scale) fails on existing rows or rejects the running release's writes.")
def narrowing_type_change(a: n.AlterColumnType, ctx: RuleContext) -> Iterator[Violation]:
    if _untouched_by_code(ctx, a.rel, a.column):
        return
    why = narrowing(ctx.state.column_type(a.rel, a.column), a.type)
    if why is None:
        return
    yield Violation(
        f"changing {ctx.q(a.rel)}.{a.column} to {a.type} narrows it ({why}): the ALTER fails on "
        "an existing row that does not fit, and writes of the running release that still send "
        "wider values start failing",
        "Check the data first (SELECT max(length(col)) / max(col) ...), enforce the new limit "
        "with a CHECK ... NOT VALID + VALIDATE while the application catches up, or keep the "
        "wider type.",
    )


@rule("CP006", "drop-default-on-not-null-column", "compatibility", wants=("DropDefault",),
      summary="DROP DEFAULT on a NOT NULL column makes INSERTs that omit the column fail.")
def drop_default_on_not_null_column(a: n.DropDefault, ctx: RuleContext) -> Iterator[Violation]:
    col = ctx.state.column(a.rel, a.column)
    if col is None or not col.not_null or _untouched_by_code(ctx, a.rel, a.column):
        return
    if any(isinstance(x, n.DropNotNull) and x.rel == a.rel and x.column == a.column
           for x in ctx.actions):
        return  # the same ALTER TABLE makes the column nullable: omitted values become NULL
    yield Violation(
        f"{ctx.q(a.rel)}.{a.column} is NOT NULL: without its DEFAULT, every INSERT of the "
        "running release that omits the column fails with a not-null violation",
        "Deploy code that always sets the column first, then drop the default in a later "
        "migration.",
    )


@rule("CP007", "rename-enum-value", "compatibility", wants=("AlterEnum",),
      summary="ALTER TYPE ... RENAME VALUE breaks code that still reads or writes the old label.")
def rename_enum_value(a: n.AlterEnum, ctx: RuleContext) -> Iterator[Violation]:
    if a.old_value is None or ctx.state.type_created_in.get(a.name.name) == ctx.migration.path:
        return
    yield Violation(
        f"renaming value '{a.old_value}' of {a.name} to '{a.new_value}' (PostgreSQL 10+) makes "
        f"every write of '{a.old_value}' by the running release fail with 'invalid input value "
        "for enum', and its comparisons silently match nothing",
        f"Add '{a.new_value}' with ADD VALUE, deploy code that writes it and accepts both, "
        f"update the rows, and stop using '{a.old_value}' (enum values cannot be dropped; "
        "removing one means recreating the type).",
    )


@rule("CP008", "drop-not-null", "compatibility", wants=("DropNotNull",), severity="warning",
      opt_in=True,
      summary="DROP NOT NULL lets NULLs in that the running release may not expect (opt-in).")
def drop_not_null(a: n.DropNotNull, ctx: RuleContext) -> Iterator[Violation]:
    if _untouched_by_code(ctx, a.rel, a.column):
        return
    yield Violation(
        f"{ctx.q(a.rel)}.{a.column} may hold NULLs from now on; code of the running release "
        "that reads it may not expect them",
        "Make sure every reader handles NULL before relaxing the constraint.",
    )
