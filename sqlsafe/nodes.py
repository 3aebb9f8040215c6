"""The normalized statement model rules read: small frozen records (``_record.py``), one per kind of action.

A statement normalizes to one or more actions (an ALTER TABLE with three sub-commands gives
three). Rules never look at pglast nodes; the visitor in ``normalize.py`` builds these.
"""

from __future__ import annotations

from ._record import Record, record


@record
class Rel(Record):
    name: str
    schema: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema or 'public'}.{self.name}"

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@record
class TypeRef(Record):
    name: str  # canonical PostgreSQL name: int4, int8, varchar, text, numeric, timestamptz ...
    mods: tuple[int, ...] = ()
    array: bool = False
    sql: str = ""
    schema: str | None = None

    def __str__(self) -> str:
        return self.sql or self.name


@record
class Default(Record):
    sql: str
    volatile: bool | None  # None: cannot tell (a user function we have not seen)
    is_null: bool = False


@record
class ConstraintDef(Record):
    kind: str  # check | foreign | unique | primary | exclude | notnull
    name: str | None = None
    columns: tuple[str, ...] = ()
    not_valid: bool = False
    using_index: str | None = None
    ref_table: Rel | None = None
    ref_columns: tuple[str, ...] = ()
    expr_sql: str = ""
    # For CHECK (col IS NOT NULL): the column it proves non-null.
    not_null_column: str | None = None
    on_delete_cascade: bool = False


@record
class ColumnDef(Record):
    name: str
    type: TypeRef | None
    not_null: bool = False
    default: Default | None = None
    generated_stored: bool = False
    identity: bool = False
    serial: bool = False
    primary_key: bool = False
    unique: bool = False
    constraints: tuple[ConstraintDef, ...] = ()  # inline REFERENCES / CHECK


# ---------------------------------------------------------------------------- actions


@record
class Action(Record):
    """Base class; ``kind`` is the class name, used by the rule registry for routing."""

    @property
    def kind(self) -> str:
        return type(self).__name__


@record
class CreateTable(Action):
    rel: Rel
    if_not_exists: bool = False
    columns: tuple[ColumnDef, ...] = ()
    constraints: tuple[ConstraintDef, ...] = ()
    partition_of: Rel | None = None
    temporary: bool = False
    unlogged: bool = False
    as_select: bool = False
    materialized: bool = False
    partitioned: bool = False  # PARTITION BY: a partitioned parent with no storage
    inherits: tuple[Rel, ...] = ()  # INHERITS (...): the parents (not a PARTITION OF's)


@record
class CreateIndex(Action):
    rel: Rel
    name: str | None
    concurrently: bool = False
    unique: bool = False
    if_not_exists: bool = False
    columns: tuple[str, ...] = ()
    partial: bool = False
    only: bool = False
    # The index as PostgreSQL compares two of them, less the name (``normalize.index_shape``):
    # access method, key elements with opclass, collation and order, INCLUDE columns,
    # predicate, NULLS NOT DISTINCT. None where unknown (another dialect).
    shape: IndexShape | None = None


IndexShape = tuple[str, tuple[tuple[str, ...], ...], tuple[str, ...], str, bool]


@record
class Drop(Action):
    objtype: str  # table, index, schema, view, materialized view, sequence, type, domain, function, ...
    names: tuple[str, ...]
    # The relations dropped; for a trigger, policy or rule (``names`` "table.object"), the
    # table it belongs to, one per name.
    rels: tuple[Rel, ...] = ()
    if_exists: bool = False
    cascade: bool = False
    concurrently: bool = False


@record
class AddColumn(Action):
    rel: Rel
    column: ColumnDef
    if_not_exists: bool = False


@record
class DropColumn(Action):
    rel: Rel
    column: str
    if_exists: bool = False
    cascade: bool = False


@record
class AlterColumnType(Action):
    rel: Rel
    column: str
    type: TypeRef
    using: str | None = None


@record
class SetNotNull(Action):
    rel: Rel
    column: str


@record
class DropNotNull(Action):
    rel: Rel
    column: str


@record
class SetDefault(Action):
    rel: Rel
    column: str
    default: Default


@record
class DropDefault(Action):
    rel: Rel
    column: str


@record
class AddConstraint(Action):
    rel: Rel
    constraint: ConstraintDef


@record
class ValidateConstraint(Action):
    rel: Rel
    name: str


@record
class DropConstraint(Action):
    rel: Rel
    name: str
    if_exists: bool = False
    cascade: bool = False


@record
class Rename(Action):
    objtype: str  # table, column, schema, index, constraint, view, type, sequence, ...
    rel: Rel | None
    old: str
    new: str


@record
class SetSchema(Action):
    """ALTER <object> ... SET SCHEMA: the object keeps its name in another schema."""

    objtype: str  # table, view, materialized view, foreign table, sequence, type, function, ...
    rel: Rel | None  # the relation moved; None for objects of other kinds
    name: str  # the object as written
    new_schema: str


@record
class SetLogged(Action):
    rel: Rel
    logged: bool


@record
class SetTablespace(Action):
    rel: Rel
    tablespace: str


@record
class AttachPartition(Action):
    rel: Rel
    partition: Rel


@record
class DetachPartition(Action):
    rel: Rel
    partition: Rel
    concurrently: bool = False


@record
class Inherit(Action):
    """ALTER TABLE ... [NO] INHERIT parent."""

    rel: Rel
    parent: Rel
    add: bool = True


@record
class RowSecurity(Action):
    rel: Rel
    enable: bool
    force: bool = False


@record
class AlterTableOther(Action):
    rel: Rel
    subtype: str  # the AlterTableType name without the AT_ prefix
    objtype: str = "table"
    # SET (...) / RESET (...) (SetRelOptions / ResetRelOptions): as CreateObject.options.
    options: tuple[tuple[str, str | None], ...] = ()


@record
class CreateType(Action):
    name: Rel
    type_kind: str  # enum | composite | range | domain
    has_constraints: bool = False
    values: tuple[str, ...] = ()


@record
class AlterEnum(Action):
    name: Rel
    new_value: str | None
    old_value: str | None = None  # set for RENAME VALUE
    if_not_exists: bool = False
    positioned: bool = False  # BEFORE/AFTER given


@record
class AlterDomain(Action):
    name: Rel
    subtype: str  # add-constraint | drop-constraint | validate | set-not-null | drop-not-null | default
    not_valid: bool = False


@record
class CreateObject(Action):
    """CREATE of a schema, sequence, extension, view, function, trigger, policy, ..."""

    objtype: str
    name: str
    if_not_exists: bool = False
    or_replace: bool = False
    rel: Rel | None = None  # the table of a trigger or policy
    materialized: bool = False
    schema: str | None = None  # CREATE EXTENSION ... SCHEMA s (None: the creator's search_path)
    # CREATE VIEW ... WITH (name = value, ...): the value as written (None
    # when given without one, which for a boolean option means true).
    options: tuple[tuple[str, str | None], ...] = ()
    temporary: bool = False  # CREATE TEMP VIEW


@record
class CreatePolicy(CreateObject):
    """CREATE POLICY (objtype "policy", ``rel`` its table): what the security rules read.

    A subclass, so code that matches ``CreateObject(objtype="policy")`` (lock prediction,
    rollback plans) still sees it, while rules route on the kind "CreatePolicy".
    """

    command: str = "all"  # all | select | insert | update | delete
    permissive: bool = True
    roles: tuple[str, ...] = ("public",)  # "public" for PUBLIC
    using_true: bool = False  # USING is a constant true (see normalize.constant_true)
    check_true: bool = False  # WITH CHECK is a constant true
    has_check: bool = False  # WITH CHECK given (without it, ALL and UPDATE check USING)


@record
class AlterPolicy(Action):
    """ALTER POLICY ... [TO roles] [USING (...)] [WITH CHECK (...)] (not RENAME: that is Rename)."""

    name: str
    rel: Rel
    roles: tuple[str, ...] = ()  # () when TO is not given
    using_true: bool = False
    check_true: bool = False


@record
class CreateFunction(Action):
    name: str
    or_replace: bool
    security_definer: bool
    sets_search_path: bool
    language: str
    volatility: str  # i | s | v
    is_procedure: bool = False
    body: str = ""


@record
class AlterFunction(Action):
    """ALTER FUNCTION/PROCEDURE ... SET/RESET/SECURITY ...: only what security rules read."""

    name: str
    sets_search_path: bool = False
    security_definer: bool | None = None  # None: SECURITY not mentioned


@record
class CreateRole(Action):
    name: str
    password_literal: bool
    superuser: bool = False


@record
class CreateDatabase(Action):
    name: str


@record
class CreateLanguage(Action):
    name: str
    trusted: bool


@record
class Insert(Action):
    rel: Rel
    on_conflict: bool
    from_select: bool
    rows: int
    source_rels: tuple[Rel, ...] = ()  # tables the INSERT ... SELECT reads (top-level FROM)


@record
class Update(Action):
    rel: Rel
    has_where: bool
    columns: tuple[str, ...] = ()
    where_sql: str = ""


@record
class Delete(Action):
    rel: Rel
    has_where: bool


@record
class Truncate(Action):
    rels: tuple[Rel, ...]
    cascade: bool = False


@record
class Copy(Action):
    rel: Rel | None
    is_from: bool
    program: bool
    filename: str | None


@record
class SetVar(Action):
    name: str  # lowercased setting name; "" for RESET ALL
    value: str | None  # None for RESET / SET ... TO DEFAULT
    local: bool = False


@record
class Transaction(Action):
    op: str  # begin | commit | rollback | savepoint | release | rollback_to | prepare | commit_prepared


@record
class Vacuum(Action):
    rels: tuple[Rel, ...]
    full: bool
    analyze_only: bool = False


@record
class Cluster(Action):
    rel: Rel | None


@record
class Reindex(Action):
    target: str  # index | table | schema | database | system
    name: str
    rel: Rel | None
    concurrently: bool


@record
class RefreshMatView(Action):
    rel: Rel
    concurrently: bool
    with_data: bool = True


@record
class AlterSystem(Action):
    name: str


@record
class Grant(Action):
    is_grant: bool
    privileges: tuple[str, ...]
    objtype: str
    objects: tuple[str, ...]
    grantees: tuple[str, ...]


@record
class DefaultPrivileges(Action):
    """ALTER DEFAULT PRIVILEGES [FOR ROLE ...] [IN SCHEMA ...] GRANT | REVOKE ...: what objects
    made later start with (``grant.objects`` is empty)."""

    schemas: tuple[str, ...]  # empty: every schema
    for_roles: tuple[str, ...]  # empty: the role that runs the statement
    grant: Grant


@record
class ImportForeignSchema(Action):
    """IMPORT FOREIGN SCHEMA remote [LIMIT TO (...) | EXCEPT (...)] FROM SERVER s INTO local: a
    foreign table in ``local`` for each table of the remote schema. ``tables`` is the LIMIT TO
    list; empty, the tables are whatever the remote schema holds, which the migration does not
    say."""

    local_schema: str
    remote_schema: str
    server: str
    tables: tuple[str, ...] = ()


@record
class TableLocks(Action):
    """A statement whose effect on the tables it names is, for the model, only the lock it
    takes: CREATE/ALTER PUBLICATION ... TABLE (``mode`` a pg_locks name)."""

    statement: str
    rels: tuple[Rel, ...]
    mode: str


@record
class Lock(Action):
    rels: tuple[Rel, ...]
    mode: str  # pg_locks name


@record
class DoBlock(Action):
    body: str
    language: str = "plpgsql"


@record
class Comment(Action):
    objtype: str
    rel: Rel | None


@record
class Select(Action):
    rels: tuple[Rel, ...] = ()
    functions: tuple[str, ...] = ()
    set_configs: tuple[tuple[str, str, bool], ...] = ()  # set_config(name, value, is_local)


@record
class Other(Action):
    node: str  # the pglast node type name
    rels: tuple[Rel, ...] = ()
