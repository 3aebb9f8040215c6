"""PostgreSQL's table-level lock modes and what each statement takes.

Facts from the PostgreSQL documentation, "Explicit Locking" (13.3) and the reference page of
each command; where a fact depends on the server version the version is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import nodes as n

if TYPE_CHECKING:
    from .schema import SchemaState

ACCESS_SHARE = "AccessShareLock"
ROW_SHARE = "RowShareLock"
ROW_EXCLUSIVE = "RowExclusiveLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
SHARE = "ShareLock"
SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
EXCLUSIVE = "ExclusiveLock"
ACCESS_EXCLUSIVE = "AccessExclusiveLock"

MODES = (ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE,
         SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE)

# The SQL names, for messages.
SQL_NAMES = {
    ACCESS_SHARE: "ACCESS SHARE", ROW_SHARE: "ROW SHARE", ROW_EXCLUSIVE: "ROW EXCLUSIVE",
    SHARE_UPDATE_EXCLUSIVE: "SHARE UPDATE EXCLUSIVE", SHARE: "SHARE",
    SHARE_ROW_EXCLUSIVE: "SHARE ROW EXCLUSIVE", EXCLUSIVE: "EXCLUSIVE",
    ACCESS_EXCLUSIVE: "ACCESS EXCLUSIVE",
}

# Table 13.2 "Conflicting Lock Modes".
CONFLICTS: dict[str, frozenset[str]] = {
    ACCESS_SHARE: frozenset({ACCESS_EXCLUSIVE}),
    ROW_SHARE: frozenset({EXCLUSIVE, ACCESS_EXCLUSIVE}),
    ROW_EXCLUSIVE: frozenset({SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE}),
    SHARE_UPDATE_EXCLUSIVE: frozenset({SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE,
                                       EXCLUSIVE, ACCESS_EXCLUSIVE}),
    SHARE: frozenset({ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE,
                      ACCESS_EXCLUSIVE}),
    SHARE_ROW_EXCLUSIVE: frozenset({ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE,
                                    SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE}),
    EXCLUSIVE: frozenset({ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE,
                          SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE}),
    ACCESS_EXCLUSIVE: frozenset(MODES),
}

# What ordinary traffic takes: SELECT takes ACCESS SHARE, SELECT FOR UPDATE ROW SHARE,
# INSERT/UPDATE/DELETE ROW EXCLUSIVE, and other migrations' DDL mostly SHARE UPDATE EXCLUSIVE+.
TRAFFIC = (("reads", ACCESS_SHARE), ("writes", ROW_EXCLUSIVE), ("DDL", SHARE_UPDATE_EXCLUSIVE))


# The answers below depend on the mode alone and the rules ask them for every statement:
# computed once per mode.
_RANK = {mode: i for i, mode in enumerate(MODES)}
_BLOCKS = {mode: tuple(what for what, taken in TRAFFIC if taken in CONFLICTS[mode])
           for mode in MODES}
_DANGEROUS = {mode: any(w in ("reads", "writes") for w in _BLOCKS[mode]) for mode in MODES}


def rank(mode: str) -> int:
    return _RANK.get(mode, -1)


def strongest(modes: list[str] | tuple[str, ...]) -> str | None:
    return max(modes, key=rank) if modes else None


def blocks(mode: str) -> tuple[str, ...]:
    """Which kinds of traffic a lock held in ``mode`` blocks: reads, writes, DDL."""
    return _BLOCKS.get(mode, ())


def blocks_text(mode: str) -> str:
    b = blocks(mode)
    if "reads" in b:
        return "blocks reads and writes"
    if "writes" in b:
        return "blocks writes (reads continue)"
    if b:
        return "blocks other DDL and VACUUM (reads and writes continue)"
    return "blocks nothing ordinary traffic does"


def is_dangerous(mode: str) -> bool:
    """A lock that blocks reads or writes of ordinary traffic."""
    return _DANGEROUS.get(mode, False)


# ---------------------------------------------------------------------------- prediction

# Type changes that need neither a rewrite nor a scan: binary-coercible casts and typmod
# relaxations (PostgreSQL 9.2+ skips the rewrite for these).
_TEXTUAL = {"varchar", "text", "bpchar"}


def type_change_rewrites(old: n.TypeRef | None, new: n.TypeRef, using: str | None) -> bool | None:
    """True when ALTER COLUMN TYPE rewrites the table, False when it doesn't, None if unknown."""
    if old is None:
        return None
    if using is not None:
        return True
    if old.array != new.array:
        return True
    o, w = old.name, new.name
    if o == w:
        if o in ("varchar", "varbit", "bit varying"):
            # Widening or removing the limit is free; narrowing must check every row (rewrite).
            if not new.mods:
                return False
            if not old.mods:
                return True
            return new.mods[0] < old.mods[0]
        if o == "numeric":
            if not new.mods:
                return False
            if not old.mods:
                return True
            old_scale = old.mods[1] if len(old.mods) > 1 else 0
            new_scale = new.mods[1] if len(new.mods) > 1 else 0
            return not (new_scale == old_scale and new.mods[0] >= old.mods[0])
        if o in ("timestamp", "timestamptz", "time", "timetz", "interval"):
            # Raising or removing fractional-second precision is free.
            if not new.mods:
                return False
            if not old.mods:
                return True
            return new.mods[0] < old.mods[0]
        return old.mods != new.mods
    if o == "varchar" and w == "text":
        return False
    if o == "text" and w == "varchar" and not new.mods:
        return False
    if {o, w} <= {"text", "citext"} or (o == "varchar" and w == "citext"):
        return False  # citext's casts from text/varchar are binary coercible
    if (o, w) == ("cidr", "inet"):
        return False
    if (o, w) in (("xml", "text"), ("json", "text")):
        return None
    return True


class Prediction:
    __slots__ = ("locks", "rewrites", "scans")

    def __init__(self) -> None:
        self.locks: dict[str, str] = {}
        self.rewrites: list[str] = []
        self.scans: list[str] = []

    def lock(self, rel: str, mode: str) -> None:
        if rank(mode) > rank(self.locks.get(rel, "")):
            self.locks[rel] = mode

    def rewrite(self, rel: str) -> None:
        if rel not in self.rewrites:
            self.rewrites.append(rel)


def predict(action: n.Action, state: SchemaState, pg: int, p: Prediction | None = None) -> Prediction:
    """Predict the relation locks and rewrites of one action on the schema ``state`` before it."""
    p = p or Prediction()
    q = state.qualify
    match action:
        case n.CreateTable():
            for c in action.constraints:
                if c.kind == "foreign" and c.ref_table is not None:
                    p.lock(q(c.ref_table), SHARE_ROW_EXCLUSIVE)
            for col in action.columns:
                for c in col.constraints:
                    if c.kind == "foreign" and c.ref_table is not None:
                        p.lock(q(c.ref_table), SHARE_ROW_EXCLUSIVE)
            if action.partition_of is not None:
                p.lock(q(action.partition_of), ACCESS_EXCLUSIVE)
            for parent in action.inherits:  # DefineRelation: a plain parent, not a partition
                p.lock(q(parent), SHARE_UPDATE_EXCLUSIVE)
        case n.CreateIndex():
            p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE if action.concurrently else SHARE)
        case n.Drop(objtype="index"):
            for rel in action.rels:
                # DROP INDEX locks the index and its table ACCESS EXCLUSIVE; CONCURRENTLY
                # takes SHARE UPDATE EXCLUSIVE on both instead.
                mode = SHARE_UPDATE_EXCLUSIVE if action.concurrently else ACCESS_EXCLUSIVE
                p.lock(q(rel), mode)
                table = state.index_table(rel)
                if table:
                    p.lock(table, mode)
        case n.Drop(objtype="trigger" | "policy" | "rule"):
            for rel in action.rels:  # the tables: dropping one locks it ACCESS EXCLUSIVE
                p.lock(q(rel), ACCESS_EXCLUSIVE)
        case n.Drop(objtype="table" | "view" | "materialized view" | "sequence"):
            # Relations the set never created are assumed to exist (they predate it).
            for rel in action.rels:
                p.lock(q(rel), ACCESS_EXCLUSIVE)
                known = state.table(q(rel))
                if known is not None and known.partition_of:
                    p.lock(known.partition_of, ACCESS_EXCLUSIVE)  # a partition: its parent too
                for referencing in state.referenced_by_fks(q(rel)):
                    p.lock(referencing, ACCESS_EXCLUSIVE)
        case n.AddColumn():
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            col = action.column
            if add_column_rewrites(col, pg):
                p.rewrite(q(action.rel))
            for c in col.constraints:
                if c.kind == "foreign" and c.ref_table is not None:
                    p.lock(q(c.ref_table), SHARE_ROW_EXCLUSIVE)
        case n.AlterColumnType():
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            old = state.column_type(action.rel, action.column)
            if type_change_rewrites(old, action.type, action.using) is not False:
                p.rewrite(q(action.rel))
        case n.SetNotNull() | n.DropNotNull() | n.SetDefault() | n.DropDefault() | \
                n.DropColumn() | n.SetLogged() | n.SetTablespace():
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            if isinstance(action, n.SetLogged):
                p.rewrite(q(action.rel))
            elif isinstance(action, n.SetTablespace) and action.tablespace != "pg_default":
                # ATExecSetTableSpace (tablecmds.c, every version): "No work if no change in
                # tablespace". A table created without TABLESPACE lives in the database default,
                # pg_default unless CREATE DATABASE said otherwise: moving it there copies nothing
                # (observed on PostgreSQL 15 and 18: the relfilenode stays).
                p.rewrite(q(action.rel))
        case n.AddConstraint():
            c = action.constraint
            if c.kind == "foreign":
                p.lock(q(action.rel), SHARE_ROW_EXCLUSIVE)
                if c.ref_table is not None:
                    p.lock(q(c.ref_table), SHARE_ROW_EXCLUSIVE)
            else:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.ValidateConstraint():
            p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE)
            ref = state.constraint_ref(action.rel, action.name)
            if ref:
                p.lock(ref, ROW_SHARE)
        case n.DropConstraint():
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            ref = state.constraint_ref(action.rel, action.name)
            if ref:
                p.lock(ref, ACCESS_EXCLUSIVE)
        case n.Rename():
            if action.rel is not None and action.objtype in ("table", "column", "constraint",
                                                             "view", "materialized view",
                                                             "sequence", "index", "trigger",
                                                             "policy", "rule"):
                # RENAME COLUMN/TABLE take ACCESS EXCLUSIVE; ALTER INDEX RENAME takes
                # SHARE UPDATE EXCLUSIVE since PG 12.
                mode = ACCESS_EXCLUSIVE
                if action.objtype == "index" and pg >= 12:
                    mode = SHARE_UPDATE_EXCLUSIVE
                p.lock(q(action.rel), mode)
        case n.SetSchema():
            # ALTER TABLE/VIEW/SEQUENCE ... SET SCHEMA (AlterTableNamespace) takes ACCESS
            # EXCLUSIVE on the relation; it moves catalog rows only, so the lock is brief.
            if action.rel is not None:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.AttachPartition():
            # PG 12+: ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent.
            p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE if pg >= 12 else ACCESS_EXCLUSIVE)
            p.lock(q(action.partition), ACCESS_EXCLUSIVE)
        case n.DetachPartition():
            if action.concurrently:
                p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE)
                p.lock(q(action.partition), SHARE_UPDATE_EXCLUSIVE)
            else:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
                p.lock(q(action.partition), ACCESS_EXCLUSIVE)
        case n.Inherit():
            # tablecmds.c: ATExecAddInherit opens the parent with SHARE UPDATE EXCLUSIVE,
            # ATExecDropInherit with ACCESS SHARE; the child takes ACCESS EXCLUSIVE.
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            p.lock(q(action.parent), SHARE_UPDATE_EXCLUSIVE if action.add else ACCESS_SHARE)
        case n.RowSecurity():
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.AlterTableOther():
            p.lock(q(action.rel), alter_other_lock(action.subtype))
        case n.Truncate():
            for rel in action.rels:
                p.lock(q(rel), ACCESS_EXCLUSIVE)
                p.rewrite(q(rel))
        case n.Insert() | n.Update() | n.Delete():
            p.lock(q(action.rel), ROW_EXCLUSIVE)
        case n.Vacuum():
            for rel in action.rels:
                if action.full:
                    p.lock(q(rel), ACCESS_EXCLUSIVE)
                    p.rewrite(q(rel))
                else:
                    p.lock(q(rel), SHARE_UPDATE_EXCLUSIVE)
        case n.Cluster():
            if action.rel is not None:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
                p.rewrite(q(action.rel))
        case n.Reindex():
            if action.target == "index" and action.rel is not None:
                table = state.index_table(action.rel)
                if action.concurrently:
                    if table:
                        p.lock(table, SHARE_UPDATE_EXCLUSIVE)
                    p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE)
                else:
                    if table:
                        p.lock(table, SHARE)
                    p.lock(q(action.rel), ACCESS_EXCLUSIVE)
            elif action.target == "table" and action.rel is not None:
                p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE if action.concurrently else SHARE)
        case n.RefreshMatView():
            p.lock(q(action.rel), EXCLUSIVE if action.concurrently else ACCESS_EXCLUSIVE)
            if not action.concurrently:
                p.rewrite(q(action.rel))
        case n.Lock():
            for rel in action.rels:
                p.lock(q(rel), action.mode)
        case n.CreateObject(objtype="trigger"):
            if action.rel is not None:
                p.lock(q(action.rel), SHARE_ROW_EXCLUSIVE)
        case n.TableLocks():
            for rel in action.rels:
                p.lock(q(rel), action.mode)
        case n.Copy(rel=n.Rel() as rel):
            # COPY FROM writes rows (ROW EXCLUSIVE), COPY TO reads them.
            p.lock(q(rel), ROW_EXCLUSIVE if action.is_from else ACCESS_SHARE)
        case n.CreateObject(objtype="statistics"):
            # CreateStatistics opens the table with ShareUpdateExclusiveLock.
            if action.rel is not None:
                p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE)
        case n.CreateObject(objtype="rule"):
            # DefineQueryRewrite opens the table with AccessExclusiveLock.
            if action.rel is not None:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.CreateObject(objtype="policy"):
            if action.rel is not None:
                p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.AlterPolicy():
            # AlterPolicy opens the table with AccessExclusiveLock, as CreatePolicy does.
            p.lock(q(action.rel), ACCESS_EXCLUSIVE)
        case n.Comment():
            if action.rel is not None:
                p.lock(q(action.rel), SHARE_UPDATE_EXCLUSIVE)
        case n.Select():
            for rel in action.rels:
                p.lock(q(rel), ACCESS_SHARE)
    if action.kind in _RECURSE_TO_PARTITIONS:
        _recurse_to_partitions(action, state, p)
    elif action.kind in _RECURSE_RELS and getattr(action, "objtype", "table") == "table":
        for rel in getattr(action, "rels", ()):
            # TRUNCATE gives each partition a new file, as it does its own tables.
            _recurse_from(state.qualify(rel), state, p, action.kind == "Truncate")
    return p


# Actions on a partitioned table that PostgreSQL repeats on each partition, in the same lock
# mode (checked against the server by tests/dryrun/test_lock_predictions.py).
_RECURSE_TO_PARTITIONS = frozenset({
    "AddColumn", "DropColumn", "AlterColumnType", "SetNotNull", "DropNotNull", "SetDefault",
    "DropDefault", "AddConstraint", "CreateIndex", "AlterTableOther", "Rename", "CreateObject",
})
# ... and those naming several tables: TRUNCATE, LOCK TABLE, DROP TABLE.
_RECURSE_RELS = frozenset({"Truncate", "Lock", "Drop"})


def _recurse_to_partitions(action: n.Action, state: SchemaState, p: Prediction) -> None:
    rel = getattr(action, "rel", None)
    if rel is None or getattr(action, "only", False):  # CREATE INDEX ON ONLY: the parent alone
        return
    match action:
        case n.Rename(objtype="column") | n.CreateObject(objtype="trigger"):
            pass  # a column renamed everywhere; a row trigger cloned to each partition
        case n.Rename() | n.CreateObject():
            return
        case n.AlterTableOther(subtype="SetStatistics"):
            pass
        case n.AlterTableOther():
            return
        case n.SetNotNull(column=column):
            known = state.table(rel)
            col = known.columns.get(column) if known is not None else None
            if col is not None and col.not_null:
                return  # already NOT NULL: PostgreSQL leaves the partitions alone
    _recurse_from(state.qualify(rel), state, p, True)


def _recurse_from(parent: str, state: SchemaState, p: Prediction, rewrites: bool) -> None:
    mode = p.locks.get(parent)
    table = state.table(parent)
    if not mode or table is None or not table.partitioned:
        return
    rewritten = rewrites and parent in p.rewrites  # a partitioned table has no storage
    for child in state.partitions_of(parent):
        p.lock(child, mode)
        if rewritten:
            p.rewrite(child)


# ALTER TABLE sub-commands that take less than ACCESS EXCLUSIVE (ALTER TABLE reference page).
_OTHER_LOCKS = {
    "SetStatistics": SHARE_UPDATE_EXCLUSIVE,
    "SetOptions": SHARE_UPDATE_EXCLUSIVE,  # ALTER COLUMN SET (n_distinct ...)
    "ResetOptions": SHARE_UPDATE_EXCLUSIVE,
    "ClusterOn": SHARE_UPDATE_EXCLUSIVE,
    "DropCluster": SHARE_UPDATE_EXCLUSIVE,
    "SetRelOptions": SHARE_UPDATE_EXCLUSIVE,  # fillfactor, autovacuum_*: PG 10+
    "ResetRelOptions": SHARE_UPDATE_EXCLUSIVE,
    "EnableTrig": SHARE_ROW_EXCLUSIVE,
    "EnableAlwaysTrig": SHARE_ROW_EXCLUSIVE,
    "EnableReplicaTrig": SHARE_ROW_EXCLUSIVE,
    "DisableTrig": SHARE_ROW_EXCLUSIVE,
    "EnableTrigAll": SHARE_ROW_EXCLUSIVE,
    "DisableTrigAll": SHARE_ROW_EXCLUSIVE,
    "EnableTrigUser": SHARE_ROW_EXCLUSIVE,
    "DisableTrigUser": SHARE_ROW_EXCLUSIVE,
    "AddIndexConstraint": ACCESS_EXCLUSIVE,
}


def alter_other_lock(subtype: str) -> str:
    return _OTHER_LOCKS.get(subtype, ACCESS_EXCLUSIVE)


def add_column_rewrites(col: n.ColumnDef, pg: int) -> bool:
    """ADD COLUMN rewrites for a stored generated column, an identity or serial column, a
    volatile default, or (before PostgreSQL 11) any non-null default."""
    if col.generated_stored or col.identity or col.serial:
        return True
    if col.default is None or col.default.is_null:
        return False
    if pg < 11:
        return True
    return col.default.volatile is True
