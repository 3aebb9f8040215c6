"""locking: statements that hold a lock blocking reads or writes while they scan or build.

A statement is judged only when it touches a table that exists before the migration (created
earlier in the set, or never created by it): a table created in the same migration is empty and
nobody else uses it yet, so its locks and scans cost nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import locks as lk
from .. import nodes as n
from .._record import MutableRecord, field, record
from ..model import Fix
from ..registry import STATEMENT, Violation, rule
from .context import RuleContext, per_lint

_AE = lk.ACCESS_EXCLUSIVE


# ---------------------------------------------------------------------------- helpers


def is_new_q(ctx: RuleContext, qualified: str) -> bool:
    """The relation (schema-qualified) was created in the migration being linted."""
    t = ctx.state.table(qualified)
    return t is not None and t.created_in == ctx.migration.path and \
        t.created_index == ctx.migration_index


def _unsafe_in_tx(fix: Fix | None, ctx: RuleContext) -> Fix | None:
    # CONCURRENTLY cannot run in a transaction block: the edit alone would break the file.
    if fix is not None and ctx.in_tx:
        return Fix(fix.description, fix.start, fix.end, fix.replacement, safe=False)
    return fix


def _not_valid_fix(ctx: RuleContext) -> Fix | None:
    # Appending NOT VALID is only right when the statement has this one sub-command.
    if len(ctx.actions) != 1:
        return None
    return ctx.append_to_statement(" NOT VALID", "add the constraint NOT VALID")


def _cname(c: n.ConstraintDef) -> str:
    return c.name or "<constraint>"


def _partitioned(ctx: RuleContext, qualified: str | None) -> bool:
    t = ctx.state.table(qualified) if qualified else None
    return t is not None and t.partitioned


def _needs_not_null_scan(ctx: RuleContext, rel: n.Rel, column: str) -> bool:
    """SET NOT NULL (explicit or implied by a primary key) must scan the table."""
    col = ctx.state.column(rel, column)
    if col is not None and col.not_null:
        return False  # already NOT NULL: PostgreSQL does nothing
    # PG 12+: a valid CHECK (col IS NOT NULL) proves the column non-null, no scan.
    return not (ctx.pg >= 12 and ctx.state.has_valid_not_null_check(rel, column))


_POINT_WHERE = re.compile(
    r"^\s*\(?\s*[\w.\"]+\s*(=\s*('[^']*'|-?\d+)|IN\s*\((\s*('[^']*'|-?\d+)\s*,?)+\))\s*\)?\s*$",
    re.I)


def slow_work(action: n.Action, ctx: RuleContext) -> str | None:
    """What makes the statement slow on an existing table (a scan, a rewrite, a build), or None.

    Shared with the timeout family: these are the statements whose duration grows with the
    size of the table.
    """
    match action:
        case n.CreateIndex() if ctx.existing(action.rel) and not action.concurrently:
            return f"builds an index on {ctx.q(action.rel)}"
        case n.ValidateConstraint() if ctx.existing(action.rel):
            return f"validates {action.name} by scanning {ctx.q(action.rel)}"
        case n.Update() | n.Delete() if ctx.existing(action.rel):
            where = getattr(action, "where_sql", "")
            if action.has_where and _POINT_WHERE.match(where or ""):
                return None  # a point update touches a handful of rows
            verb = "updates" if isinstance(action, n.Update) else "deletes"
            return f"{verb} rows of {ctx.q(action.rel)}"
        case n.SetNotNull() if ctx.existing(action.rel) and \
                _needs_not_null_scan(ctx, action.rel, action.column):
            return f"scans {ctx.q(action.rel)} to check {action.column} has no NULLs"
        case n.AddConstraint() if ctx.existing(action.rel):
            c = action.constraint
            if c.kind in ("check", "foreign") and not c.not_valid:
                return f"scans {ctx.q(action.rel)} to validate the new constraint"
            if c.kind in ("unique", "primary", "exclude") and not c.using_index:
                return f"builds an index on {ctx.q(action.rel)}"
        case n.Reindex(concurrently=False):
            table = ctx.state.index_table(action.rel) if action.rel is not None and \
                action.target == "index" else (ctx.q(action.rel) if action.rel else None)
            if table is None or not is_new_q(ctx, table):
                return f"rebuilds {action.target} {action.name}"
    if any(isinstance(x, n.Truncate) for x in ctx.actions):
        return None  # TRUNCATE swaps in an empty file: no copy, however big the table
    for rel in ctx.prediction.rewrites:
        if not is_new_q(ctx, rel):
            return f"rewrites {rel}"
    return None


_UNKNOWN = object()


def statement_slow_work(ctx: RuleContext) -> str | None:
    """``slow_work`` of the first of the statement's actions that has one, or None: worked
    out once per statement for the rules that ask (LK021, TO002)."""
    slow = ctx.__dict__.get("_slow_work", _UNKNOWN)
    if slow is _UNKNOWN:
        slow = next((s for s in (slow_work(x, ctx) for x in ctx.actions) if s), None)
        ctx.__dict__["_slow_work"] = slow
    return slow


# ---------------------------------------------------------------------------- indexes


@rule("LK001", "non-concurrent-index-creation", "locking", wants=("CreateIndex",),
      summary="CREATE INDEX without CONCURRENTLY on an existing table blocks writes while it builds.",
      fixable=True, dry_run=True)
def non_concurrent_index_creation(a: n.CreateIndex, ctx: RuleContext) -> Iterator[Violation]:
    if a.concurrently or not ctx.existing(a.rel):
        return
    table = ctx.state.table(a.rel)
    if table is not None and table.partitioned:
        return  # CONCURRENTLY is not supported on partitioned parents (PG <= 18)
    fix = _unsafe_in_tx(ctx.insert_after(r"\bINDEX\b", " CONCURRENTLY",
                                         "build the index concurrently"), ctx)
    yield Violation(
        f"CREATE INDEX {ctx.lock_phrase(lk.SHARE, a.rel)} for the whole build",
        "Use CREATE INDEX CONCURRENTLY (outside a transaction block), which allows reads and "
        "writes while the index builds.",
        fix=fix,
    )


@rule("LK002", "non-concurrent-index-drop", "locking", wants=("Drop",),
      summary="DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table.",
      fixable=True, dry_run=True)
def non_concurrent_index_drop(a: n.Drop, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "index" or a.concurrently:
        return
    for rel in a.rels:
        table = ctx.state.index_table(rel)
        if table is not None and is_new_q(ctx, table):
            continue
        if _partitioned(ctx, table):
            continue  # DROP INDEX CONCURRENTLY cannot drop a partitioned index (PG <= 18)
        fix = None
        if len(a.rels) == 1 and not a.cascade:  # CONCURRENTLY allows neither
            fix = _unsafe_in_tx(ctx.insert_after(r"\bINDEX\b", " CONCURRENTLY",
                                                 "drop the index concurrently"), ctx)
        where = table or "its table"
        yield Violation(
            f"DROP INDEX {rel} takes ACCESS EXCLUSIVE on {where}, which blocks reads and writes; "
            "it first waits for every running query on the table",
            "Use DROP INDEX CONCURRENTLY (one index, no CASCADE, outside a transaction block).",
            fix=fix,
        )


_REINDEX_KW = r"^\s*REINDEX\s*(\([^)]*\)\s*)?(INDEX|TABLE|SCHEMA|DATABASE)\b"


@rule("LK003", "non-concurrent-reindex", "locking", wants=("Reindex",),
      summary="REINDEX without CONCURRENTLY blocks writes, and queries that use the index.",
      fixable=True, dry_run=True)
def non_concurrent_reindex(a: n.Reindex, ctx: RuleContext) -> Iterator[Violation]:
    if a.concurrently:
        return
    if a.rel is not None:
        table = ctx.state.index_table(a.rel) if a.target == "index" else ctx.q(a.rel)
        if table is not None and is_new_q(ctx, table):
            return
    what = {"index": f"index {a.name}", "table": f"every index of {a.name}"}.get(
        a.target, f"every index in {a.target} {a.name}".rstrip())
    msg = (f"REINDEX rebuilds {what} holding SHARE on the table (blocks writes) and ACCESS "
           "EXCLUSIVE on the index (blocks every query that plans with it) for the whole build")
    if ctx.pg < 12:
        # REINDEX CONCURRENTLY arrived in PostgreSQL 12.
        yield Violation(
            msg, f"PostgreSQL {ctx.pg} has no REINDEX CONCURRENTLY (added in 12): build a "
            "replacement with CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY the old one, "
            "then rename the new one.")
        return
    fix = None
    if a.target != "system":
        fix = _unsafe_in_tx(ctx.insert_after(_REINDEX_KW, " CONCURRENTLY",
                                             "reindex concurrently"), ctx)
    yield Violation(msg, "Use REINDEX ... CONCURRENTLY (PostgreSQL 12+, outside a transaction "
                         "block).", fix=fix)


# ---------------------------------------------------------------------------- constraints


@rule("LK004", "foreign-key-validated-on-add", "locking", wants=("AddConstraint",),
      summary="ADD FOREIGN KEY without NOT VALID on an existing table scans it while blocking "
              "writes on both tables.", fixable=True, dry_run=True)
def foreign_key_validated_on_add(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    c = a.constraint
    if c.kind != "foreign" or c.not_valid or not ctx.existing(a.rel):
        return
    both = ctx.q(a.rel)
    if c.ref_table is not None and ctx.existing(c.ref_table) and ctx.q(c.ref_table) != both:
        both = f"{both} and {ctx.q(c.ref_table)}"
    yield Violation(
        f"ADD FOREIGN KEY {_cname(c)} takes SHARE ROW EXCLUSIVE on {both}, which blocks writes, "
        f"while it checks every row of {ctx.q(a.rel)}",
        "Add the foreign key NOT VALID (instant), then VALIDATE CONSTRAINT in a later migration: "
        "validation takes SHARE UPDATE EXCLUSIVE and lets reads and writes through.",
        fix=_not_valid_fix(ctx),
        recipe=f"ALTER TABLE {a.rel} ADD CONSTRAINT {_cname(c)} FOREIGN KEY ... NOT VALID;\n"
               f"-- in a later migration:\nALTER TABLE {a.rel} VALIDATE CONSTRAINT {_cname(c)};",
    )


@rule("LK005", "check-constraint-validated-on-add", "locking", wants=("AddConstraint",),
      summary="ADD CHECK without NOT VALID on an existing table scans it under ACCESS EXCLUSIVE.",
      fixable=True, dry_run=True)
def check_constraint_validated_on_add(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    c = a.constraint
    if c.kind != "check" or c.not_valid or not ctx.existing(a.rel):
        return
    yield Violation(
        f"ADD CHECK {_cname(c)} {ctx.lock_phrase(_AE, a.rel)}, while it checks every row",
        "Add the constraint NOT VALID (instant; new rows are checked at once), then VALIDATE "
        "CONSTRAINT in a later migration under SHARE UPDATE EXCLUSIVE.",
        fix=_not_valid_fix(ctx),
        recipe=f"ALTER TABLE {a.rel} ADD CONSTRAINT {_cname(c)} CHECK ({c.expr_sql}) NOT VALID;\n"
               f"-- in a later migration:\nALTER TABLE {a.rel} VALIDATE CONSTRAINT {_cname(c)};",
    )


@rule("LK006", "constraint-builds-index", "locking", wants=("AddConstraint",),
      summary="ADD UNIQUE / PRIMARY KEY without USING INDEX builds the index under ACCESS "
              "EXCLUSIVE.", dry_run=True)
def constraint_builds_index(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    c = a.constraint
    if c.kind not in ("unique", "primary") or c.using_index or not ctx.existing(a.rel):
        return
    kind = "PRIMARY KEY" if c.kind == "primary" else "UNIQUE"
    name = c.name or f"{a.rel.name}_{'_'.join(c.columns)}_key"
    cols = ", ".join(c.columns)
    steps = [f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {a.rel} ({cols});",
             "-- in a later migration:"]
    if c.kind == "primary":
        steps.append("-- make the columns NOT NULL first (see LK009), then:")
    steps.append(f"ALTER TABLE {a.rel} ADD CONSTRAINT {name} {kind} USING INDEX {name};")
    yield Violation(
        f"ADD {kind} builds its unique index while holding ACCESS EXCLUSIVE on {ctx.q(a.rel)}, "
        "which blocks reads and writes for the whole build",
        f"Build the index with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... {kind} "
        "USING INDEX, which only attaches it.",
        recipe="\n".join(steps),
    )


@rule("LK007", "exclusion-constraint-on-existing-table", "locking", wants=("AddConstraint",),
      summary="ADD EXCLUDE builds its index and checks every row under ACCESS EXCLUSIVE; there "
              "is no concurrent form.", dry_run=True)
def exclusion_constraint(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    if a.constraint.kind != "exclude" or not ctx.existing(a.rel):
        return
    yield Violation(
        f"ADD EXCLUDE {ctx.lock_phrase(_AE, a.rel)}, while it builds the index and checks every "
        "row; PostgreSQL has no NOT VALID or concurrent form for exclusion constraints",
        "Add exclusion constraints when the table is created, or plan a maintenance window; "
        "a partial or trigger-based check on new rows is the online alternative.",
    )


@rule("LK008", "primary-key-on-nullable-columns", "locking", wants=("AddConstraint",),
      summary="ADD PRIMARY KEY USING INDEX on nullable columns implicitly runs SET NOT NULL, "
              "which scans the table under ACCESS EXCLUSIVE.", dry_run=True)
def primary_key_on_nullable(a: n.AddConstraint, ctx: RuleContext) -> Iterator[Violation]:
    c = a.constraint
    if c.kind != "primary" or not c.using_index or not ctx.existing(a.rel):
        return
    qi = f"{a.rel.schema or ctx.state.search_schema}.{c.using_index}"
    cols = ctx.state.index_columns.get(qi, ())
    nullable = [col for col in cols if ctx.state.column(a.rel, col) is not None
                and _needs_not_null_scan(ctx, a.rel, col)]
    if not nullable:
        return  # unknown index or columns: say nothing rather than guess
    names = ", ".join(nullable)
    yield Violation(
        f"PRIMARY KEY USING INDEX {c.using_index} marks {names} NOT NULL, scanning "
        f"{ctx.q(a.rel)} under ACCESS EXCLUSIVE (blocks reads and writes)",
        "Make the columns NOT NULL first without a long lock (LK009's recipe), then attach the "
        "index as the primary key.",
    )


@rule("LK009", "set-not-null-scans-table", "locking", wants=("SetNotNull",),
      summary="SET NOT NULL scans an existing table under ACCESS EXCLUSIVE unless a valid "
              "CHECK (col IS NOT NULL) proves it (PostgreSQL 12+).", dry_run=True)
def set_not_null_scans(a: n.SetNotNull, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.rel) or not _needs_not_null_scan(ctx, a.rel, a.column):
        return
    cname = f"{a.rel.name}_{a.column}_not_null"
    msg = (f"SET NOT NULL on {a.column} {ctx.lock_phrase(_AE, a.rel)}, while it scans every "
           "row for NULLs")
    if ctx.pg < 12:
        # Before 12 the scan always happens; a CHECK constraint does not help.
        yield Violation(
            msg, f"PostgreSQL {ctx.pg} always scans (12+ skips the scan when a valid CHECK "
            f"({a.column} IS NOT NULL) exists): enforce it with a NOT VALID CHECK constraint "
            "validated later instead of NOT NULL, or schedule a window.")
        return
    yield Violation(
        msg,
        f"Prove the column non-null first: ADD CONSTRAINT ... CHECK ({a.column} IS NOT NULL) "
        "NOT VALID, VALIDATE it in a later migration, then SET NOT NULL skips the scan.",
        recipe=(f"ALTER TABLE {a.rel} ADD CONSTRAINT {cname} CHECK ({a.column} IS NOT NULL) "
                f"NOT VALID;\n-- in a later migration:\n"
                f"ALTER TABLE {a.rel} VALIDATE CONSTRAINT {cname};\n-- then:\n"
                f"ALTER TABLE {a.rel} ALTER COLUMN {a.column} SET NOT NULL;\n"
                f"ALTER TABLE {a.rel} DROP CONSTRAINT {cname};"),
    )


# ---------------------------------------------------------------------------- columns

# Types that sort identically, so a change between them keeps indexes (ALTER TABLE docs).
_SAME_SORT = {"varchar", "text"}


@rule("LK010", "column-type-change-rewrites-table", "locking", wants=("AlterColumnType",),
      summary="ALTER COLUMN TYPE that is not binary compatible rewrites the table and its "
              "indexes under ACCESS EXCLUSIVE.", dry_run=True)
def column_type_change(a: n.AlterColumnType, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.rel):
        return
    old = ctx.state.column_type(a.rel, a.column)
    rewrites = lk.type_change_rewrites(old, a.type, a.using)
    indexes = ctx.state.indexes_on_column(a.rel, a.column)
    help_ = ("Add a new column of the new type, backfill it in batches, switch the application "
             "over, then drop the old column.")
    if rewrites:
        yield Violation(
            f"changing {a.column} to {a.type} rewrites {ctx.q(a.rel)} and rebuilds its indexes "
            "while holding ACCESS EXCLUSIVE, which blocks reads and writes", help_)
    elif rewrites is None:
        if old is None and a.type.name in _SAME_SORT and not a.type.mods:
            return  # most likely a widening to text/unbounded varchar, which is free
        was = f"from {old} " if old is not None else ""
        yield Violation(
            f"changing {a.column} {was}to {a.type} probably rewrites {ctx.q(a.rel)} under ACCESS "
            "EXCLUSIVE (the old type is unknown to sqlsafe, or the cast is not binary compatible)",
            help_)
    elif indexes and old is not None and old.name != a.type.name and \
            not {old.name, a.type.name} <= _SAME_SORT:
        yield Violation(
            f"changing {a.column} from {old} to {a.type} needs no rewrite but rebuilds "
            f"{', '.join(indexes)} under ACCESS EXCLUSIVE on {ctx.q(a.rel)}", help_)


def _rewrite_reason(col: n.ColumnDef, pg: int) -> str:
    if col.generated_stored:
        return "a STORED generated column computes a value for every row"
    if col.identity or col.serial:
        return "an identity or serial column draws a sequence value for every row"
    if col.default is not None and col.default.volatile:
        return f"the default {col.default.sql} is volatile, so every row gets its own value"
    return (f"before PostgreSQL 11 any non-null default (here {col.default.sql if col.default else ''}) "
            "is written into every row")


@rule("LK011", "add-column-rewrites-table", "locking", wants=("AddColumn",),
      summary="ADD COLUMN with a volatile default, identity/serial, a STORED generated column, or "
              "(before PostgreSQL 11) any default rewrites the table under ACCESS EXCLUSIVE.",
      dry_run=True)
def add_column_rewrites(a: n.AddColumn, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.rel) or not lk.add_column_rewrites(a.column, ctx.pg):
        return
    # One ALTER TABLE rewrites the table once, however many such columns it adds: report the
    # statement once, at its first rewriting column, naming them all.
    cols = [x.column.name for x in ctx.actions if isinstance(x, n.AddColumn) and x.rel == a.rel
            and lk.add_column_rewrites(x.column, ctx.pg)]
    if cols and cols[0] != a.column.name:
        return
    more = f" (and {len(cols) - 1} more such column(s): {', '.join(cols[1:])})" if len(cols) > 1 \
        else ""
    yield Violation(
        f"ADD COLUMN {a.column.name} rewrites {ctx.q(a.rel)} while holding ACCESS EXCLUSIVE "
        f"(blocks reads and writes): {_rewrite_reason(a.column, ctx.pg)}{more}",
        "Add the column without the default (nullable), set the default with ALTER COLUMN ... "
        "SET DEFAULT (applies to new rows only), and backfill existing rows in batches.",
    )


@rule("LK012", "add-column-with-inline-constraint", "locking", wants=("AddColumn",),
      summary="ADD COLUMN with inline REFERENCES, CHECK, UNIQUE or PRIMARY KEY validates or "
              "indexes the existing table under ACCESS EXCLUSIVE.", dry_run=True)
def add_column_inline_constraint(a: n.AddColumn, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.rel):
        return
    col = a.column
    for c in col.constraints:
        if c.kind == "foreign" and c.ref_table is not None:
            yield Violation(
                f"ADD COLUMN {col.name} REFERENCES {c.ref_table} checks every row of "
                f"{ctx.q(a.rel)} under ACCESS EXCLUSIVE and holds SHARE ROW EXCLUSIVE on "
                f"{ctx.q(c.ref_table)} (blocks its writes) meanwhile",
                "Add the column plain, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and "
                "VALIDATE it in a later migration.")
        elif c.kind == "check":
            yield Violation(
                f"ADD COLUMN {col.name} CHECK (...) scans {ctx.q(a.rel)} under ACCESS EXCLUSIVE "
                "(blocks reads and writes) to validate it",
                "Add the column plain, then ADD CONSTRAINT ... CHECK (...) NOT VALID and "
                "VALIDATE it in a later migration.")
    if col.unique or col.primary_key:
        kind = "PRIMARY KEY" if col.primary_key else "UNIQUE"
        yield Violation(
            f"ADD COLUMN {col.name} {kind} builds a unique index on {ctx.q(a.rel)} under ACCESS "
            "EXCLUSIVE (blocks reads and writes)",
            f"Add the column plain, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... "
            f"{kind} USING INDEX.")


# ---------------------------------------------------------------------------- whole-table commands


@rule("LK013", "vacuum-full-or-cluster", "locking", wants=("Vacuum", "Cluster"),
      summary="VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE.", dry_run=True)
def vacuum_full_or_cluster(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if isinstance(a, n.Vacuum):
        if not a.full:
            return
        rels, what = a.rels, "VACUUM FULL"
    elif isinstance(a, n.Cluster):
        rels, what = ((a.rel,) if a.rel is not None else ()), "CLUSTER"
    else:
        return
    targets = [ctx.q(r) for r in rels if ctx.existing(r)]
    if rels and not targets:
        return
    where = ", ".join(targets) if targets else "every table it covers"
    repack = ("REPACK CONCURRENTLY (PostgreSQL 19)" if ctx.pg >= 19 else "pg_repack")
    yield Violation(
        f"{what} rewrites {where} holding ACCESS EXCLUSIVE, which blocks reads and writes until "
        "the copy finishes",
        f"Use {repack}, which rewrites the table online, or plain VACUUM; keep {what} for "
        "maintenance windows, not migrations.",
    )


@rule("LK014", "non-concurrent-materialized-view-refresh", "locking", wants=("RefreshMatView",),
      summary="REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view.",
      dry_run=True)
def non_concurrent_refresh(a: n.RefreshMatView, ctx: RuleContext) -> Iterator[Violation]:
    if a.concurrently or not a.with_data or not ctx.existing(a.rel):
        return
    yield Violation(
        f"REFRESH MATERIALIZED VIEW {ctx.lock_phrase(_AE, a.rel)}, for as long as the query "
        "behind it runs",
        "Use REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view and a "
        "populated view), which only blocks other refreshes.",
    )


@rule("LK015", "set-logged-rewrites-table", "locking", wants=("SetLogged",),
      summary="ALTER TABLE SET LOGGED / UNLOGGED rewrites the table under ACCESS EXCLUSIVE.",
      dry_run=True)
def set_logged(a: n.SetLogged, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.rel):
        return
    which = "LOGGED" if a.logged else "UNLOGGED"
    extra = " and writes all of it to the WAL" if a.logged else ""
    yield Violation(
        f"SET {which} rewrites {ctx.q(a.rel)}{extra} while holding ACCESS EXCLUSIVE, which "
        "blocks reads and writes",
        "Choose the persistence when the table is created; on a large table, create a new table "
        "and copy into it in batches.",
    )


@rule("LK016", "set-tablespace-copies-relation", "locking", wants=("SetTablespace",),
      summary="ALTER TABLE/INDEX SET TABLESPACE copies the relation's files under ACCESS "
              "EXCLUSIVE.", dry_run=True)
def set_tablespace(a: n.SetTablespace, ctx: RuleContext) -> Iterator[Violation]:
    table = ctx.state.index_table(a.rel)
    is_index = table is not None or re.match(r"\s*ALTER\s+INDEX\b", ctx.sql, re.I) is not None
    if (table is not None and is_new_q(ctx, table)) or (table is None and not ctx.existing(a.rel)):
        return
    what = "index" if is_index else "table"
    yield Violation(
        f"SET TABLESPACE copies {what} {a.rel} file by file while holding ACCESS EXCLUSIVE on it, "
        f"which blocks {'every query that uses it' if is_index else 'reads and writes'}",
        "Move large relations with pg_repack --tablespace, or rebuild an index concurrently in "
        "the new tablespace (CREATE INDEX CONCURRENTLY ... TABLESPACE) and drop the old one.",
    )


# ---------------------------------------------------------------------------- partitions


@rule("LK017", "attach-partition-scans", "locking", wants=("AttachPartition",),
      summary="ATTACH PARTITION of an existing table scans it to check the bounds unless a valid "
              "CHECK constraint proves them; before PostgreSQL 12 it also locks the parent "
              "ACCESS EXCLUSIVE.", dry_run=True)
def attach_partition_scans(a: n.AttachPartition, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.existing(a.partition):
        return  # a partition created in this migration is empty: the scan is instant
    t = ctx.state.table(a.partition)
    if t is not None and any(c.kind == "check" and c.valid for c in t.constraints.values()):
        return  # assume the valid CHECK matches the bounds: PostgreSQL then skips the scan
    parent = ("ACCESS EXCLUSIVE on the parent " + ctx.q(a.rel) + " (blocks every query on the "
              "partitioned table, PostgreSQL < 12)") if ctx.pg < 12 else \
        ("SHARE UPDATE EXCLUSIVE on the parent " + ctx.q(a.rel))
    yield Violation(
        f"ATTACH PARTITION scans {ctx.q(a.partition)} under ACCESS EXCLUSIVE (blocks its reads and "
        f"writes) to check every row fits the bounds, while holding {parent}",
        "First add a CHECK constraint matching the partition bounds NOT VALID and VALIDATE it "
        "(in a later migration); ATTACH then skips the scan, and you can drop the CHECK after.",
    )


@rule("LK018", "non-concurrent-partition-detach", "locking", wants=("DetachPartition",),
      summary="DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent "
              "(PostgreSQL 14+ has CONCURRENTLY).", fixable=True, dry_run=True)
def non_concurrent_detach(a: n.DetachPartition, ctx: RuleContext) -> Iterator[Violation]:
    # DETACH ... CONCURRENTLY exists from PostgreSQL 14; before that there is no better form.
    if a.concurrently or ctx.pg < 14 or not ctx.existing(a.rel):
        return
    fix = _unsafe_in_tx(ctx.append_to_statement(" CONCURRENTLY", "detach concurrently"), ctx) \
        if len(ctx.actions) == 1 and not re.search(r"\bFINALIZE\s*$", ctx.sql, re.I) else None
    yield Violation(
        f"DETACH PARTITION {ctx.lock_phrase(_AE, a.rel)} (the whole partitioned table)",
        "Use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+, outside a transaction block, "
        "not with a default partition), which takes SHARE UPDATE EXCLUSIVE.",
        fix=fix,
    )


# ---------------------------------------------------------------------------- domains, LOCK


@rule("LK019", "domain-constraint-validated-on-add", "locking", wants=("AlterDomain",),
      summary="ALTER DOMAIN ADD CONSTRAINT without NOT VALID checks every column of the domain "
              "in every table, holding SHARE on each.", fixable=True, dry_run=True)
def domain_constraint(a: n.AlterDomain, ctx: RuleContext) -> Iterator[Violation]:
    if a.subtype != "add-constraint" or a.not_valid:
        return
    if ctx.state.type_created_in.get(a.name.name) == ctx.migration.path:
        return  # created in this migration: no column uses it yet
    yield Violation(
        f"ALTER DOMAIN {a.name} ADD CONSTRAINT scans every table with a column of this domain, "
        "holding SHARE on each (blocks their writes) until all are checked",
        "Add the domain constraint NOT VALID, then ALTER DOMAIN ... VALIDATE CONSTRAINT in a "
        "later migration.",
        fix=_not_valid_fix(ctx),
    )


@rule("LK020", "explicit-lock-blocks-traffic", "locking", wants=("Lock",), severity="warning",
      summary="LOCK TABLE in a mode that blocks reads or writes holds it until the transaction "
              "ends.", dry_run=True)
def explicit_lock(a: n.Lock, ctx: RuleContext) -> Iterator[Violation]:
    if not lk.is_dangerous(a.mode):
        return
    rels = [ctx.q(r) for r in a.rels if ctx.existing(r)]
    if not rels:
        return
    yield Violation(
        f"LOCK TABLE takes {lk.SQL_NAMES[a.mode]} on {', '.join(rels)}, which "
        f"{lk.blocks_text(a.mode)} until the transaction commits",
        "Take the weakest mode that protects the change, lock as late as possible, and keep the "
        "transaction short (and set lock_timeout).",
    )


# ---------------------------------------------------------------------------- transactions


def _held_dangerous(ctx: RuleContext) -> list[tuple[str, str]]:
    """Locks on existing tables, taken by earlier statements of the open transaction, that
    block ordinary reads or writes."""
    if not ctx.in_tx:
        return []
    return [(rel, mode) for rel, mode in ctx.state.tx.locks.items()
            if lk.is_dangerous(mode) and not is_new_q(ctx, rel)]


@rule("LK021", "slow-statement-under-held-lock", "locking", wants=(STATEMENT,),
      summary="A slow statement (scan, build, rewrite, backfill) runs in a transaction that "
              "already holds a lock blocking reads or writes on an existing table.", dry_run=True)
def slow_statement_under_held_lock(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    # The statement first (shared with TO002, and mostly not slow): the held locks are every
    # lock of the transaction so far, hundreds in a long one.
    slow = statement_slow_work(ctx)
    if slow is None:
        return
    held = _held_dangerous(ctx)
    if not held:
        return
    # Only the blocking the statement would not cause on its own: a SET NOT NULL after ADD
    # COLUMN on the same table blocks the same traffic either way (LK009 says so already).
    own = ctx.prediction.locks
    extra = [(r, m) for r, m in held if set(lk.blocks(m)) - set(lk.blocks(own.get(r, "")))]
    if not extra:
        return
    # Name a table rather than an index dropped earlier in the transaction.
    rel, mode = max(extra, key=lambda rm: (lk.rank(rm[1]), rm[0] in ctx.state.tables))
    yield Violation(
        f"this statement {slow} while the transaction still holds {lk.SQL_NAMES[mode]} on {rel} "
        f"from an earlier statement, which {lk.blocks_text(mode)} until COMMIT",
        "Commit the lock-taking DDL first: move the slow statement into its own migration (or "
        "transaction), so the strong lock is held only for an instant.",
    )


@rule("LK022", "several-tables-locked-exclusively", "locking", wants=(STATEMENT,),
      summary="One transaction takes ACCESS EXCLUSIVE on several existing tables: long blocking "
              "and deadlocks with application transactions.", severity="warning", dry_run=True)
def several_tables_locked(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.in_tx:
        return
    indexes = ctx.state.indexes

    def tables(locks: dict[str, str]) -> set[str]:
        # Indexes and serial sequences ("<table>_<col>_seq") go with their table: locking them
        # adds no second table to deadlock on.
        return {r for r, m in locks.items()
                if m == _AE and r not in indexes and not r.endswith("_seq")
                and not is_new_q(ctx, r)}

    # Report once per transaction: when the second table joins. A statement that takes
    # ACCESS EXCLUSIVE on no existing table adds none, and the transaction's locks so far
    # (hundreds in a long one) need no count.
    own = tables(ctx.prediction.locks)
    if not own:
        return
    before = tables(ctx.state.tx.locks)
    if len(before) != 1:
        return
    after = before | own
    if len(after) < 2:
        return
    yield Violation(
        f"the transaction now holds ACCESS EXCLUSIVE on {', '.join(sorted(after))}: each one "
        "blocks all traffic until COMMIT, and application transactions that touch the tables in "
        "another order can deadlock with it",
        "Change one table per transaction (one migration each), or take the locks up front in "
        "a fixed order with a short lock_timeout.",
    )


# ---------------------------------------------------------------------------- several ALTER TABLEs



# Sub-commands one ALTER TABLE can combine (RENAME, SET SCHEMA, ATTACH/DETACH PARTITION are
# statements of their own in PostgreSQL's grammar and cannot be merged with anything).
_COMBINABLE = frozenset({
    "AddColumn", "DropColumn", "AlterColumnType", "SetNotNull", "DropNotNull", "SetDefault",
    "DropDefault", "AddConstraint", "ValidateConstraint", "DropConstraint", "SetLogged",
    "SetTablespace", "Inherit", "RowSecurity", "AlterTableOther"})


@record
class _Alter(MutableRecord):
    line: int
    mode: str
    type_changes: frozenset[str]  # columns whose type it changes (one statement can't twice)
    pass_line: int = 0  # first statement of the run whose work is a pass over the table


@record
class _Runs(MutableRecord):
    migration: tuple[str, int] = ("", -1)
    last_index: int = -1
    first: dict[str, _Alter] = field(default_factory=dict)  # table -> first ALTER of the run


def _alter_target(ctx: RuleContext) -> n.Rel | None:
    """The table of a plain ALTER TABLE whose sub-commands could join another ALTER TABLE."""
    if ctx.stmt.kind != "AlterTableStmt" or ctx.stmt.objtype != "table":
        return None
    rel = getattr(ctx.actions[0], "rel", None)
    for x in ctx.actions:
        if type(x).__name__ not in _COMBINABLE or getattr(x, "rel", None) != rel:
            return None
    return rel


def _table_pass(ctx: RuleContext, rel: n.Rel) -> bool:
    """The statement rewrites the table or scans it to check rows: work that one ALTER TABLE
    with several sub-commands does in a single pass (ATRewriteTables, all versions). Index
    builds and foreign key checks run once per constraint either way."""
    if ctx.q(rel) in ctx.prediction.rewrites:
        return True
    for x in ctx.actions:
        if isinstance(x, n.SetNotNull) and _needs_not_null_scan(ctx, rel, x.column):
            return True
        if isinstance(x, n.AddConstraint) and x.constraint.kind == "check" and \
                not x.constraint.not_valid:
            return True
    return False


@rule("LK023", "several-alter-table-on-one-table", "locking", wants=(STATEMENT,),
      severity="warning",
      summary="Separate ALTER TABLE statements on one existing table, each taking a lock that "
              "blocks traffic, where one ALTER TABLE with several sub-commands would do.")
def several_alter_table(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    runs = per_lint(ctx, "LK023", _Runs)
    here = (ctx.migration.path, ctx.migration_index)
    if runs.migration != here:
        runs.migration, runs.last_index, runs.first = here, -1, {}
    if ctx.stmt.index == runs.last_index:
        return  # a statement inside a DO block: the DO statement already ended every run
    runs.last_index = ctx.stmt.index
    if any(isinstance(x, (n.Transaction, n.DoBlock)) for x in ctx.actions):
        # After COMMIT the author chose separate transactions; a DO block may touch anything.
        runs.first.clear()
        return
    rel = _alter_target(ctx)
    table = ctx.q(rel) if rel is not None else None
    if runs.first:
        # Any other statement naming the table may depend on the earlier ALTER (a backfill
        # between ADD COLUMN and SET NOT NULL, an index on the new column): merging the two
        # would change what runs. The test is textual and errs towards ending the run.
        sql = ctx.sql.lower()
        for t in [t for t in runs.first
                  if t != table and t.rsplit(".", 1)[-1].lower() in sql]:
            del runs.first[t]
    if rel is None or table is None or not ctx.existing(rel):
        return
    mode = ctx.prediction.locks.get(table, "")
    types = frozenset(x.column for x in ctx.actions if isinstance(x, n.AlterColumnType))
    first = runs.first.get(table)
    if not lk.is_dangerous(mode) or (first is not None and first.type_changes & types):
        # VALIDATE CONSTRAINT, SET STATISTICS...: it lets traffic through and often must run
        # apart (after a NOT VALID add); it ends the run. Two type changes of one column
        # cannot share a statement.
        runs.first.pop(table, None)
        return
    works = _table_pass(ctx, rel)
    if first is None:
        runs.first[table] = _Alter(ctx.stmt.span.line, mode, types,
                                   ctx.stmt.span.line if works else 0)
        return
    first.type_changes |= types
    earlier_pass = first.pass_line
    if works and not first.pass_line:
        first.pass_line = ctx.stmt.span.line
    help_ = (f"Merge them into one statement with comma-separated sub-commands: ALTER TABLE "
             f"{rel} <first change>, <second change>;")
    if not ctx.in_tx:
        yield Violation(
            f"another ALTER TABLE on {table} after the one on line {first.line}: outside a "
            f"transaction each statement queues for {lk.SQL_NAMES[mode]} again, and while it "
            "waits behind a running query every new query on the table waits behind it",
            help_)
    elif works and earlier_pass:
        # In one transaction the lock is already held; what a merge saves is the second pass.
        yield Violation(
            f"this ALTER TABLE passes over every row of {table} again after the one on line "
            f"{earlier_pass} did, while ACCESS EXCLUSIVE blocks reads and writes: one ALTER "
            "TABLE with both sub-commands rewrites or checks the table once", help_)


# ---------------------------------------------------------------------------- server bugs

# PostgreSQL 14.0 to 14.3: an optimization of CONCURRENTLY builds could leave out rows updated
# during the build (fixed, by reverting it, in 14.4).
_CONCURRENT_BUILD_FIXED = (14, 4)


@rule("LK024", "concurrent-index-build-on-pg14-before-14-4", "locking",
      wants=("CreateIndex", "Reindex"),
      summary="CREATE INDEX / REINDEX CONCURRENTLY on PostgreSQL 14.0-14.3 can build an index "
              "that silently misses rows (fixed in 14.4).")
def concurrent_build_on_buggy_14(a: n.CreateIndex | n.Reindex, ctx: RuleContext,
                                 ) -> Iterator[Violation]:
    minor = ctx.config.pg_minor
    if not a.concurrently or ctx.pg != 14 or minor is None or (14, minor) >= \
            _CONCURRENT_BUILD_FIXED:
        return
    what = "CREATE INDEX CONCURRENTLY" if isinstance(a, n.CreateIndex) else \
        "REINDEX CONCURRENTLY"
    yield Violation(
        f"{what} on PostgreSQL 14.{minor} can build an index that misses rows updated while "
        "it builds; queries that use it then return wrong results, and nothing reports an "
        "error (fixed in 14.4)",
        "Upgrade the server to 14.4 or later before this migration runs (a minor-release "
        "update, no dump and restore), then rebuild the indexes built CONCURRENTLY on 14.0-"
        "14.3. If it must run first, build this index without CONCURRENTLY in a quiet window.")
