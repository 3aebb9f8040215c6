"""The schema the migration set builds up, folded statement by statement.

Rules read the state *before* the statement they judge. The state knows which tables exist
and where they were created (in this file, earlier in the set, or before the set: unknown
tables are assumed to exist in production), their columns, constraints and indexes, the
timeouts in force and the open transaction with the locks it already holds.
"""

from __future__ import annotations

from . import locks as lk
from . import nodes as n
from ._record import MutableRecord, field, record
from .plpgsql import ends_transaction

# The suffix PostgreSQL gives a constraint it names itself (ChooseConstraintName's label).
_CONSTRAINT_LABELS = {"primary": "pkey", "unique": "key", "foreign": "fkey", "check": "check",
                      "exclude": "excl", "notnull": "not_null"}
_MAX_NAME_BYTES = 63  # NAMEDATALEN - 1


def implicit_constraint_name(table: str, kind: str, columns: tuple[str, ...],
                             attempt: int = 0) -> str:
    """The name PostgreSQL gives an unnamed constraint: ``<table>_pkey``, ``<table>_<columns>_
    key`` / ``_fkey`` / ``_excl`` / ``_not_null``, ``<table>_<column>_check`` for a column's
    CHECK (``<table>_check`` when the columns are not known), cut to 63 bytes the way
    ``makeObjectName`` cuts it (the longer part loses a byte at a time). ``attempt`` N > 0
    is the name tried after N taken ones: the label gets the digits (``_check1``), as
    ``ChooseConstraintName`` does."""
    label = _CONSTRAINT_LABELS.get(kind, kind) + (str(attempt) if attempt else "")
    second = "_".join(columns) if kind != "primary" and columns else ""
    first_b, second_b = table.encode(), second.encode()
    room = _MAX_NAME_BYTES - len(label) - 1 - (1 if second else 0)
    n1, n2 = len(first_b), len(second_b)
    while n1 + n2 > room:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    # A cut inside a multibyte character drops the whole character (pg_mbcliplen).
    parts = [first_b[:n1].decode("utf-8", "ignore")]
    if second:
        parts.append(second_b[:n2].decode("utf-8", "ignore"))
    return "_".join([*parts, label])


@record
class ColumnState(MutableRecord):
    name: str
    type: n.TypeRef | None
    not_null: bool = False
    has_default: bool = False
    added_in: str | None = None  # path of the migration that added it (None: before the set)
    added_index: int = -1  # migration index that added it
    backfilled: bool = False  # an UPDATE set it after it was added
    # The DEFAULT given in ADD COLUMN: the value every row that existed then received (a later
    # SET DEFAULT changes only future INSERTs). None: added without one, so those rows are NULL.
    added_default: n.Default | None = None


@record
class ConstraintState(MutableRecord):
    name: str
    kind: str
    valid: bool
    columns: tuple[str, ...] = ()
    not_null_column: str | None = None
    ref_table: str | None = None
    added_in: str | None = None


@record
class PolicyState(MutableRecord):
    name: str
    command: str  # all | select | insert | update | delete
    permissive: bool = True
    roles: tuple[str, ...] = ("public",)


@record
class TableState(MutableRecord):
    qualified: str
    created_in: str | None = None  # path of the migration that created it; None: pre-existing
    created_index: int = -1
    created_in_tx: int = -1  # transaction serial number when created
    columns: dict[str, ColumnState] = field(default_factory=dict)
    constraints: dict[str, ConstraintState] = field(default_factory=dict)
    indexes: set[str] = field(default_factory=set)
    partitioned: bool = False
    known: bool = True  # False when we only assume it exists (never saw its CREATE)
    # Row level security enabled; None: not known (a table the set did not create and has not
    # enabled or disabled it on).
    rls: bool | None = False
    # Policies created in the set and not dropped, by name (a policy created before the set
    # is not known).
    policies: dict[str, PolicyState] = field(default_factory=dict)
    kind: str = "table"
    if_not_exists: bool = False  # created by CREATE TABLE IF NOT EXISTS (a re-run skips it)
    partition_of: str | None = None  # the partitioned parent (PARTITION OF, ATTACH PARTITION)


@record
class TxState(MutableRecord):
    open: bool = False
    explicit: bool = False  # opened by BEGIN (vs the implicit one of the runner)
    serial: int = 0
    locks: dict[str, str] = field(default_factory=dict)  # relation -> strongest mode held
    first_strong_lock_line: int = 0
    enum_values_added: set[tuple[str, str]] = field(default_factory=set)
    statements: int = 0
    updated_tables: set[str] = field(default_factory=set)
    ddl_tables: set[str] = field(default_factory=set)


class SchemaState:
    def __init__(self) -> None:
        self.tables: dict[str, TableState] = {}
        self.indexes: dict[str, str] = {}  # qualified index -> qualified table
        # qualified index -> its key columns (expressions as text), when the set created it.
        self.index_columns: dict[str, tuple[str, ...]] = {}
        self.types: dict[str, n.CreateType] = {}
        self.type_created_in: dict[str, str] = {}
        self.type_created_tx: dict[str, int] = {}  # type -> tx serial it was created in (-1: none)
        # (object type, unqualified name) dropped with IF EXISTS earlier in the migration being
        # linted: a guard that makes a later CREATE / ADD of the same object re-runnable.
        self.guards: set[tuple[str, str]] = set()
        self.functions: dict[str, str] = {}  # name -> volatility (i, s, v)
        # Procedures of the set whose PL/pgSQL body COMMITs or ROLLBACKs (unqualified,
        # lower-case names): a CALL of one fails inside a transaction block (TX002).
        self.committing_procedures: set[str] = set()
        self.schemas: set[str] = set()
        self.settings: dict[str, str] = {}  # session-level settings in force
        self.local_settings: dict[str, str] = {}  # SET LOCAL, reset at transaction end
        self.search_schema = "public"
        self.tx = TxState()
        self.tx_serial = 0
        self.path = ""
        self.migration_index = 0
        # Where each (table, column) was last backfilled by an UPDATE: migration index.
        self.backfills: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ queries
    def qualify(self, rel: n.Rel) -> str:
        return f"{rel.schema or self.search_schema}.{rel.name}"

    def table(self, rel: n.Rel | str) -> TableState | None:
        key = rel if isinstance(rel, str) else self.qualify(rel)
        return self.tables.get(key)

    def partitions_of(self, parent: str) -> list[str]:
        """The partitions the state knows of a partitioned table, and theirs, in turn."""
        out: list[str] = []
        todo = [parent]
        while todo:
            current = todo.pop()
            for key, t in self.tables.items():
                if t.partition_of == current and key not in out:
                    out.append(key)
                    if t.partitioned:
                        todo.append(key)
        return out

    def is_new(self, rel: n.Rel) -> bool:
        """Created in the migration being linted (so it is empty and nobody uses it yet)."""
        t = self.table(rel)
        return t is not None and t.created_in == self.path and t.created_index == self.migration_index

    def created_in_tx(self, rel: n.Rel) -> bool:
        t = self.table(rel)
        return t is not None and self.tx.open and t.created_in_tx == self.tx.serial and self.is_new(rel)

    def is_existing(self, rel: n.Rel) -> bool:
        """Exists before this migration: created earlier in the set, or before it."""
        return not self.is_new(rel)

    def column(self, rel: n.Rel, name: str) -> ColumnState | None:
        t = self.table(rel)
        return t.columns.get(name) if t else None

    def column_type(self, rel: n.Rel, name: str) -> n.TypeRef | None:
        c = self.column(rel, name)
        return c.type if c else None

    def index_table(self, rel: n.Rel) -> str | None:
        return self.indexes.get(self.qualify(rel))

    def indexes_on_column(self, rel: n.Rel, column: str) -> list[str]:
        """Indexes of the table known to include ``column`` (as a plain key column)."""
        t = self.table(rel)
        if t is None:
            return []
        return sorted(i for i in t.indexes if column in self.index_columns.get(i, ()))

    def constraint(self, rel: n.Rel, name: str) -> ConstraintState | None:
        t = self.table(rel)
        return t.constraints.get(name) if t else None

    def constraint_ref(self, rel: n.Rel, name: str) -> str | None:
        c = self.constraint(rel, name)
        return c.ref_table if c else None

    def referenced_by_fks(self, qualified: str) -> list[str]:
        return [t.qualified for t in self.tables.values()
                for c in t.constraints.values() if c.kind == "foreign" and c.ref_table == qualified
                and t.qualified != qualified]

    def policy(self, rel: n.Rel, name: str) -> PolicyState | None:
        """A policy the set created on the table (None: not created in the set, or dropped)."""
        t = self.table(rel)
        return t.policies.get(name) if t else None

    def has_valid_not_null_check(self, rel: n.Rel, column: str) -> bool:
        t = self.table(rel)
        return t is not None and any(
            c.kind == "check" and c.valid and c.not_null_column == column
            for c in t.constraints.values()
        )

    def setting(self, name: str) -> str | None:
        if name in self.local_settings:
            return self.local_settings[name]
        return self.settings.get(name)

    def timeout_set(self, name: str) -> bool:
        v = self.setting(name)
        return v is not None and v.strip().lower() not in ("0", "", "default")

    # ------------------------------------------------------------------ folding
    def begin_migration(self, path: str, index: int, in_transaction: bool) -> None:
        self.path = path
        self.migration_index = index
        self.settings = {}
        self.local_settings = {}
        self.search_schema = "public"
        self.tx = TxState()
        self.guards = set()
        if in_transaction:
            self._open_tx(explicit=False)

    def end_migration(self) -> None:
        self._close_tx()

    def _open_tx(self, explicit: bool) -> None:
        self.tx_serial += 1
        self.tx = TxState(open=True, explicit=explicit, serial=self.tx_serial)

    def _close_tx(self) -> None:
        self.tx = TxState()
        self.local_settings = {}

    def begin_atomic(self) -> bool:
        """A statement that runs as one transaction even outside BEGIN (a DO block) starts:
        open an implicit transaction unless one is open. True if it opened one."""
        if self.tx.open:
            return False
        self._open_tx(explicit=False)
        return True

    def end_atomic(self, opened: bool) -> None:
        """The atomic statement ends: close the transaction ``begin_atomic`` opened."""
        if opened and self.tx.open:
            self._close_tx()

    def _ensure_table(self, rel: n.Rel) -> TableState:
        key = self.qualify(rel)
        t = self.tables.get(key)
        if t is None:
            t = TableState(key, known=False, rls=None)
            self.tables[key] = t
        return t

    def hold_locks(self, prediction: lk.Prediction, line: int) -> None:
        if not self.tx.open:
            return
        for rel, mode in prediction.locks.items():
            if lk.rank(mode) > lk.rank(self.tx.locks.get(rel, "")):
                self.tx.locks[rel] = mode
                if lk.is_dangerous(mode) and not self.tx.first_strong_lock_line:
                    self.tx.first_strong_lock_line = line

    def apply(self, action: n.Action, *, implicit_tx_open: bool = False) -> None:
        path, idx = self.path, self.migration_index
        self._record_guard(action)
        match action:
            case n.Transaction(op="begin"):
                # BEGIN inside the runner's implicit transaction is only a warning in
                # PostgreSQL; the transaction stays the same one.
                if not self.tx.open:
                    self._open_tx(explicit=True)
                else:
                    self.tx.explicit = True
            case n.Transaction(op="commit" | "rollback" | "commit_prepared" | "prepare"):
                self._close_tx()
            case n.SetVar():
                if action.name == "search_path" and action.value:
                    first = action.value.split(",")[0].strip().strip('"')
                    if first and first != "$user":
                        self.search_schema = first
                if action.local:
                    if self.tx.open:
                        self._set(self.local_settings, action.name, action.value)
                else:
                    self._set(self.settings, action.name, action.value)
                    self.local_settings.pop(action.name, None)
            case n.Select():
                for name, value, local in action.set_configs:
                    target = self.local_settings if local else self.settings
                    if not local or self.tx.open:
                        target[name] = value
            case n.CreateTable():
                key = self.qualify(action.rel)
                if action.if_not_exists and key in self.tables and self.tables[key].known:
                    return
                t = TableState(key, created_in=path, created_index=idx,
                               created_in_tx=self.tx.serial if self.tx.open else -1,
                               kind="materialized view" if action.materialized else "table")
                t.partitioned = action.partitioned
                if action.partition_of is not None:
                    t.partition_of = self.qualify(action.partition_of)
                for col in action.columns:
                    t.columns[col.name] = ColumnState(
                        col.name, col.type, col.not_null or col.primary_key,
                        col.default is not None, path, idx)
                    self._add_column_keys(t, col, path)
                    for c in col.constraints:
                        self._add_constraint(t, c, path, default_cols=(col.name,))
                for c in action.constraints:
                    self._add_constraint(t, c, path)
                self.tables[key] = t
                t.if_not_exists = action.if_not_exists
            case n.AttachPartition():
                self._ensure_table(action.partition).partition_of = self.qualify(action.rel)
            case n.DetachPartition():
                child = self.tables.get(self.qualify(action.partition))
                if child is not None:
                    child.partition_of = None
            case n.CreateIndex():
                t = self._ensure_table(action.rel)
                if action.name:
                    qi = f"{action.rel.schema or self.search_schema}.{action.name}"
                    self.indexes[qi] = t.qualified
                    t.indexes.add(qi)
                    self.index_columns[qi] = action.columns
            case n.Drop(objtype="table" | "view" | "materialized view"):
                for rel in action.rels:
                    self.tables.pop(self.qualify(rel), None)
            case n.Drop(objtype="index"):
                for rel in action.rels:
                    qi = self.qualify(rel)
                    table = self.indexes.pop(qi, None)
                    if table and table in self.tables:
                        self.tables[table].indexes.discard(qi)
            case n.Drop(objtype="type" | "domain"):
                for rel in action.rels:
                    self.types.pop(rel.name, None)
            case n.AddColumn():
                t = self._ensure_table(action.rel)
                col = action.column
                t.columns[col.name] = ColumnState(col.name, col.type, col.not_null,
                                                  col.default is not None, path, idx,
                                                  added_default=col.default)
                self._add_column_keys(t, col, path)
                for c in col.constraints:
                    self._add_constraint(t, c, path, default_cols=(col.name,))
            case n.DropColumn():
                t = self._ensure_table(action.rel)
                t.columns.pop(action.column, None)
            case n.AlterColumnType():
                cs = self.column(action.rel, action.column)
                if cs is not None:
                    cs.type = action.type
                else:
                    self._ensure_table(action.rel).columns[action.column] = ColumnState(
                        action.column, action.type)
            case n.SetNotNull():
                cs = self.column(action.rel, action.column)
                if cs is not None:
                    cs.not_null = True
            case n.DropNotNull():
                cs = self.column(action.rel, action.column)
                if cs is not None:
                    cs.not_null = False
            case n.SetDefault() | n.DropDefault():
                cs = self.column(action.rel, action.column)
                if cs is not None:
                    cs.has_default = isinstance(action, n.SetDefault)
            case n.AddConstraint():
                self._add_constraint(self._ensure_table(action.rel), action.constraint, path)
            case n.ValidateConstraint():
                con = self.constraint(action.rel, action.name)
                if con is not None:
                    con.valid = True
            case n.DropConstraint():
                tbl = self.table(action.rel)
                if tbl is not None:
                    tbl.constraints.pop(action.name, None)
            case n.Rename(objtype="table"):
                if action.rel is not None:
                    self._move_table(self.qualify(action.rel),
                                     f"{action.rel.schema or self.search_schema}.{action.new}")
            case n.SetSchema(objtype="table" | "view" | "materialized view" | "foreign table"):
                if action.rel is not None:
                    self._move_table(self.qualify(action.rel),
                                     f"{action.new_schema}.{action.rel.name}")
            case n.Rename(objtype="column"):
                if action.rel is not None:
                    tbl = self.table(action.rel)
                    if tbl is not None and action.old in tbl.columns:
                        cs = tbl.columns.pop(action.old)
                        cs.name = action.new
                        tbl.columns[action.new] = cs
            case n.Update():
                key = self.qualify(action.rel)
                for name in action.columns:
                    self.backfills[(key, name)] = idx
                    cs = self.column(action.rel, name)
                    if cs is not None:
                        cs.backfilled = True
                if self.tx.open:
                    self.tx.updated_tables.add(key)
            case n.DoBlock():
                # A batched backfill is often a DO loop of UPDATEs; count every column of an
                # updated table that the body names as backfilled (a guess that errs towards
                # fewer backfill findings).
                self._do_block_backfills(action.body, idx)
            case n.CreateType():
                self.types[action.name.name] = action
                self.type_created_in[action.name.name] = path
                self.type_created_tx[action.name.name] = self.tx.serial if self.tx.open else -1
            case n.AlterEnum():
                if action.new_value and self.tx.open:
                    self.tx.enum_values_added.add((action.name.name, action.new_value))
            case n.CreateFunction():
                short = action.name.split(".")[-1].lower()
                self.functions[short] = action.volatility
                if action.is_procedure and action.language == "plpgsql" and \
                        ends_transaction(action.body):
                    self.committing_procedures.add(short)
                else:
                    self.committing_procedures.discard(short)
            case n.CreateObject(objtype="schema"):
                self.schemas.add(action.name)
            case n.RowSecurity():
                t = self._ensure_table(action.rel)
                if not action.force:
                    t.rls = action.enable
            case n.CreatePolicy():
                # Recorded only on tables the state already has: a policy on a table it has
                # never seen must not make that table look known to other rules.
                tbl = self.table(action.rel) if action.rel is not None else None
                if tbl is not None:
                    tbl.policies[action.name] = PolicyState(action.name, action.command,
                                                            action.permissive, action.roles)
            case n.AlterPolicy(roles=(_, *_)):
                pol = self.policy(action.rel, action.name)
                if pol is not None:
                    pol.roles = action.roles
            case n.Drop(objtype="policy"):
                for rel, name in zip(action.rels, action.names, strict=False):
                    tbl = self.table(rel)
                    if tbl is not None:
                        tbl.policies.pop(name.split(".")[-1], None)
            case n.Rename(objtype="policy"):
                tbl = self.table(action.rel) if action.rel is not None else None
                if tbl is not None and action.old in tbl.policies:
                    pol = tbl.policies.pop(action.old)
                    pol.name = action.new
                    tbl.policies[action.new] = pol
            case _:
                pass

    def _move_table(self, old: str, new: str) -> None:
        """A table renamed or moved to another schema: the state follows it, with what refers
        to it by name (its indexes, which move with it to the new schema, the backfills seen,
        the locks the open transaction holds on it)."""
        tbl = self.tables.pop(old, None)
        if tbl is not None:
            tbl.qualified = new
            self.tables[new] = tbl
        old_schema, new_schema = old.split(".")[0], new.split(".")[0]
        for qi, table in list(self.indexes.items()):
            if table != old:
                continue
            self.indexes[qi] = new
            if old_schema != new_schema:
                moved = f"{new_schema}.{qi.split('.')[-1]}"
                self.indexes[moved] = self.indexes.pop(qi)
                if qi in self.index_columns:
                    self.index_columns[moved] = self.index_columns.pop(qi)
                if tbl is not None and qi in tbl.indexes:
                    tbl.indexes.discard(qi)
                    tbl.indexes.add(moved)
        for table, column in list(self.backfills):
            if table == old:
                self.backfills[(new, column)] = self.backfills.pop((table, column))
        if old in self.tx.locks:
            self.tx.locks[new] = self.tx.locks.pop(old)
        for names in (self.tx.updated_tables, self.tx.ddl_tables):
            if old in names:
                names.discard(old)
                names.add(new)

    def _do_block_backfills(self, body: str, idx: int) -> None:
        import re

        for m in re.finditer(r"\bUPDATE\s+(?:ONLY\s+)?((?:\"?\w+\"?\.)?\"?\w+\"?)\s", body, re.I):
            parts = [p.strip('"') for p in m.group(1).split(".")]
            rel = n.Rel(parts[-1], parts[0] if len(parts) > 1 else None)
            t = self.table(rel)
            if t is None:
                continue
            words = set(re.findall(r"\w+", body[m.end():].lower()))
            for c in t.columns.values():
                if c.name.lower() in words:
                    c.backfilled = True
                    self.backfills[(t.qualified, c.name)] = idx
            if self.tx.open:
                self.tx.updated_tables.add(t.qualified)

    def guarded(self, objtype: str, name: str) -> bool:
        """An earlier statement of this migration dropped the object with IF EXISTS."""
        return (objtype, name.split(".")[-1].strip('"').lower()) in self.guards

    def _record_guard(self, action: n.Action) -> None:
        match action:
            case n.Drop(if_exists=True):
                for name in action.names:
                    self.guards.add((action.objtype, name.split(".")[-1].lower()))
            case n.DropColumn(if_exists=True):
                self.guards.add(("column", f"{self.qualify(action.rel)}.{action.column}".lower()))
            case n.DropConstraint(if_exists=True):
                self.guards.add(("constraint", action.name.lower()))

    @staticmethod
    def _set(target: dict[str, str], name: str, value: str | None) -> None:
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value

    def _add_column_keys(self, t: TableState, col: n.ColumnDef, path: str) -> None:
        """A column's own PRIMARY KEY / UNIQUE: constraints (with their indexes) like the
        table-level ones, under the names PostgreSQL gives them."""
        for kind, flagged in (("primary", col.primary_key), ("unique", col.unique)):
            if flagged:
                self._add_constraint(t, n.ConstraintDef(kind), path, default_cols=(col.name,))

    def _choose_name(self, t: TableState, kind: str, columns: tuple[str, ...]) -> str:
        """The name PostgreSQL gives an unnamed constraint of ``t``, with the digits it appends
        while the name is taken: by a constraint of the table or of another table of the
        schema (``_taken_in_schema``), or for a constraint with an index (PRIMARY KEY,
        UNIQUE, EXCLUDE), by a table or index of the schema too."""
        schema, table = t.qualified.split(".")[0], t.qualified.split(".")[-1]
        indexed = kind in ("primary", "unique", "exclude")
        attempt = 0
        while True:
            name = implicit_constraint_name(table, kind, columns, attempt)
            taken = name in t.constraints or (indexed and (f"{schema}.{name}" in self.indexes
                                                           or f"{schema}.{name}" in self.tables))
            if not taken and not self._taken_in_schema(schema, name):
                return name
            attempt += 1

    def _taken_in_schema(self, schema: str, name: str) -> bool:
        """Whether another table of ``schema`` has a constraint ``name``. PostgreSQL looks
        across the schema; the tables whose own unnamed constraints could be called ``name``
        are those whose name starts it at an underscore (``t3_a`` for ``t3_a_b_check``), and
        only those are looked at (a hand-given name that copies another table's pattern is
        not seen)."""
        for i, ch in enumerate(name):
            if ch != "_" or i == 0:
                continue
            other = self.tables.get(f"{schema}.{name[:i]}")
            if other is not None and name in other.constraints:
                return True
        return False

    def _add_constraint(self, t: TableState, c: n.ConstraintDef, path: str,
                        default_cols: tuple[str, ...] = ()) -> None:
        name = c.name or self._choose_name(t, c.kind, c.columns or default_cols)
        ref = self.qualify(c.ref_table) if c.ref_table is not None else None
        t.constraints[name] = ConstraintState(name, c.kind, not c.not_valid,
                                              c.columns or default_cols, c.not_null_column, ref,
                                              path)
        if c.kind in ("primary", "notnull"):
            for col in c.columns or default_cols:
                if col in t.columns:
                    t.columns[col].not_null = True
        if c.kind in ("primary", "unique"):
            qi = f"{t.qualified.split('.')[0]}.{c.using_index or name}"
            self.indexes[qi] = t.qualified
            t.indexes.add(qi)
            if c.columns or default_cols:
                self.index_columns[qi] = c.columns or default_cols
