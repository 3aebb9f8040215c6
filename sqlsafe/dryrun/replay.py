"""Replay migrations on a disposable PostgreSQL and observe what each statement really does.

The method is eugene's trace (ANCHORS.md section 2), improved:

- Each migration runs with its layout's transaction semantics: ``Migration.in_transaction``
  wraps the file in BEGIN ... COMMIT unless the file has its own transaction control, and a
  statement that cannot run in a transaction block fails there exactly as in production.
- Statements run one by one on one connection, in the order and with the text the parser split
  (psql meta-commands are skipped and reported).
- After each statement, one catalog query (``catalog.LOCKS``) on the migration's own connection
  returns the relation locks the session holds, each with its relation's current relfilenode.
  New locks are the set difference by (oid, mode) with what the session held after the previous
  statement of the same transaction; only relations that existed before the statement count.
  A relfilenode that differs from the one known before is a rewrite.
- A statement that runs outside a transaction block releases its locks before it returns, so
  pg_locks afterwards shows nothing. Such statements that *can* run in a transaction block are
  run as ``BEGIN; stmt; <observe>; COMMIT`` — for one statement that is what autocommit means
  anyway. The ones that cannot (CREATE INDEX CONCURRENTLY, VACUUM, ...) are watched by a second
  connection that polls pg_locks for the migration's backend every few milliseconds while the
  statement runs (``_Watcher``), keeping the strongest mode seen per relation.
- A schema snapshot (``catalog.SCHEMA``) after each migration gives the catalog diff; it is the
  "before" of the next migration, so there is one snapshot per migration. Snapshots after the
  first are incremental (``_Session.snapshot``): a per-object fingerprint of the catalog rows
  (``catalog.SCHEMA_FINGERPRINT``) says what changed, and only that and what depends on it is
  read again (``catalog.SCHEMA_OF``); the result equals a full snapshot.

Checks by execution, after a migration applied:

- idempotency: the migration runs a second time. When every statement can run in a transaction
  block and the file has no transaction control of its own, the rerun happens inside
  BEGIN ... ROLLBACK on the same connection (cheap, and the main replay never sees it);
  otherwise on a clone made with CREATE DATABASE ... TEMPLATE (the connections to the scratch
  database are closed around it, as PostgreSQL requires), dropped afterwards.
- down round trip: down, compare the schema with the snapshot taken before up, up again — in
  BEGIN ... ROLLBACK when both files are transaction-safe, else on a clone. Either way the main
  replay continues from the state after up.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import locks as lk
from .._record import replace
from ..model import DiscoveryResult, LintResult, Migration, Section, StatementInfo
from ..normalize import objtype_name
from ..parse import ParsedSection, ParsedStatement, parse_section
from ..txblock import refuses_transaction_block
from . import blocking as bk
from . import catalog as q
from . import sampledata
from .result import (
    CatalogDiff,
    DownResult,
    DryRunResult,
    LockQueue,
    MigrationResult,
    ObservedLock,
    ServerInfo,
    StatementError,
    StatementResult,
    size_changes,
)
from .sandbox import Sandbox, SandboxError

if TYPE_CHECKING:
    import psycopg

    from ..config import Config

__all__ = ["ProgressCallback", "dry_run", "load_setup"]

# on_progress(index, total, migration, result): called with result=None when a migration starts
# and with its MigrationResult when it is done (also for skipped ones).
ProgressCallback = Callable[[int, int, Migration, "MigrationResult | None"], None]

# How often the watcher polls pg_locks while a non-transactional statement runs.
_POLL_SECONDS = 0.0005
# Relation kinds the static prediction speaks about (ordinary and partitioned tables,
# materialized views); indexes only when the prediction names them.
_PREDICTED_KINDS = frozenset("rpm")
_TABLE_KINDS = frozenset("rpm")
# The errors of a statement that only refuses the transaction block the replay opened to
# observe it: 25001 active_sql_transaction ("... cannot run inside a transaction block") and
# 2D000 invalid_transaction_termination (a procedure or DO block that COMMITs).
_REFUSES_OUR_BLOCK = frozenset({"25001", "2D000"})
# A schema, relation, type or function that does not exist (3F000, 42P01, 42704, 42883): on
# an empty sandbox often one that production already has before this set runs.
_MISSING_OBJECT = frozenset({"3F000", "42P01", "42704", "42883"})
START_HINT = ("if production already has it before this set runs, start the dry run from "
              "production's schema: --setup FILE (pg_dump --schema-only), or --from N for the "
              "migrations it has already applied")
_META_UNSUPPORTED = re.compile(r"^\\(i|ir|include|include_relative|c|connect|copy|!|o|out|g|gx|gexec)\b")

# Extensions and where to get them when the sandbox lacks them. The official postgres image
# ships every contrib module; PostGIS and TimescaleDB have their own images.
_EXTENSION_IMAGES = {
    "postgis": "postgis/postgis:16-3.4",
    "postgis_topology": "postgis/postgis:16-3.4",
    "postgis_raster": "postgis/postgis:16-3.4",
    "timescaledb": "timescale/timescaledb:latest-pg16",
    "vector": "pgvector/pgvector:pg16",
}


# --------------------------------------------------------------------------------------------
# Schema snapshots


@dataclass(frozen=True)
class Rel:
    relfilenode: int
    relkind: str
    name: str


_SERIALS = itertools.count()

# What SCHEMA_HELD compares its reads with: the snapshot before's part fingerprints (types,
# global parts) and its horizon (``Snapshot.horizon``).
_Fps = tuple[str | None, str | None, str | None]


@dataclass
class Snapshot:
    """One ``catalog.SCHEMA`` result: readable object keys with a definition, plus relations.

    ``owners`` (relation or type -> its keys) and ``fingerprint`` let the next snapshot of the
    same database recompute only what changed (``_Session.snapshot``); ``take_snapshot``
    leaves them empty."""

    objects: dict[str, str]
    rels: dict[int, Rel]
    owners: dict[str, list[str]] = field(default_factory=dict)
    fingerprint: dict[tuple[int, int], tuple[int, int, int]] | None = None
    typefp: str | None = None  # of the types, by SCHEMA_LOCKED (None: not known)
    globalfp: str | None = None  # of schemas, functions and extensions, likewise
    # The transaction id from which on a catalog row was written after this snapshot was read
    # (SCHEMA_HELD's and SCHEMA_LOCKED's horizon; None: not known). The next SCHEMA_HELD
    # deparses only its touched relations' column and constraint rows from then on.
    horizon: str | None = None
    # Set by ``_merge``: (serial of the base, the keys that can differ from it). Only the keys
    # of the owners read again can, so ``catalog_diff`` against that base looks at those.
    # A serial, not the base itself: a chain of snapshots would keep every one alive.
    changed: tuple[int, frozenset[str]] | None = field(default=None, repr=False, compare=False)
    serial: int = field(default_factory=lambda: next(_SERIALS), repr=False, compare=False)

    def digest(self) -> str:
        h = hashlib.sha256()
        for key in sorted(self.objects):
            h.update(f"{key}\t{self.objects[key]}\n".encode())
        return h.hexdigest()


class _Stale(Exception):
    """A row that SCHEMA_HELD left without its text (unchanged since the snapshot before)
    names an object that snapshot does not have: the rows must be read again in full."""


def _add_rows(snap: Snapshot, rows: Iterable[tuple[Any, ...]],
              before: dict[str, str] | None = None) -> set[str]:
    """Add snapshot rows to ``snap``; returns the keys they gave. A row without its text
    (SCHEMA_HELD: not written since ``before`` was read) takes it from ``before``."""
    objects, rels, owners = snap.objects, snap.rels, snap.owners
    added: set[str] = set()
    for kind, name, detail, oid, relfilenode, relkind, owner in rows:
        if kind == "owner":
            continue
        if kind == "relation":
            kind = q.RELKIND_NAMES.get(relkind, "relation")
            rels[int(oid)] = Rel(int(relfilenode), str(relkind), str(name))
        key = f"{kind} {name}"
        if detail is None:
            detail = None if before is None or key in added else before.get(key)
            if detail is None:
                raise _Stale(key)
        detail = str(detail)
        if key in added:
            # Two objects of one table with one name (PostgreSQL 18 names NOT NULL
            # constraints itself, and a foreign key can carry the same name): keep the greater
            # definition, so the result does not depend on the order the plan returns rows in.
            detail = max(detail, objects[key])
        else:
            added.add(key)
            owners.setdefault(owner or "", []).append(key)
        objects[key] = detail
    return added


def _merge(base: Snapshot, dirty: set[str], rows: Iterable[tuple[Any, ...]],
           into: Snapshot) -> Snapshot:
    """``into`` (empty, with the new fingerprints) filled with ``base`` less the objects of
    the ``dirty`` owners, plus ``rows`` (those owners read again)."""
    # Whole-dict copies, then the few dirty entries out: a copy runs in C, while a loop
    # that skips the dirty entries ran in Python over every object after every migration.
    objects = into.objects
    objects.update(base.objects)
    into.owners.update(base.owners)
    into.rels.update(base.rels)
    changed: set[str] = set()
    for owner in dirty:
        keys = into.owners.pop(owner, None)
        if keys:
            changed.update(keys)
            for key in keys:
                objects.pop(key, None)
        if owner[:1] == "c":
            into.rels.pop(int(owner[1:]), None)
    changed.update(_add_rows(into, rows, base.objects))
    into.changed = (base.serial, frozenset(changed))
    return into


_PG_CLASS = 1259  # 'pg_class'::regclass, fixed in every PostgreSQL version
_PG_TYPE = 1247  # 'pg_type'::regclass


def _oid_arrays(objects: Sequence[tuple[int, int]]) -> str:
    """The (classids, objids) parameters of SCHEMA_OF / SCHEMA_OWN as two array literals."""
    classids = ",".join(str(c) for c, _ in objects)
    objids = ",".join(str(o) for _, o in objects)
    return f"'{{{classids}}}', '{{{objids}}}'"


def _by_owner(rows: Iterable[tuple[Any, ...]]) -> dict[str, dict[str, str]]:
    """Snapshot rows as {owner: {object key: detail}}; an owner row alone gives an empty
    entry (an owner read again that has no objects any more)."""
    new: dict[str, dict[str, str]] = {}
    for kind, name, detail, _oid, _filenode, relkind, owner in rows:
        if kind == "owner":
            new.setdefault(str(owner), {})
            continue
        if kind == "relation":
            kind = q.RELKIND_NAMES.get(relkind, "relation")
        new.setdefault(owner or "", {})[f"{kind} {name}"] = str(detail)
    return new


def _needs_walk(changed: Sequence[tuple[int, int]],
                old: dict[tuple[int, int], tuple[int, int, int]],
                fp: dict[tuple[int, int], tuple[int, int, int]], base: Snapshot,
                rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether another object's text may show a name that changed among ``changed``, so that
    SCHEMA_OF must also read what depends on them (``rows``: SCHEMA_OWN of ``changed``).

    An object's text comes from its own catalog rows (under the fingerprint) and the names of
    what it references by oid. So a dependent whose own rows did not change shows something
    new only when a referenced name changed. For a relation the keys of its rows hold every
    name a dependent can show (relation, column, index and sequence names); for a type the
    key and, for enum labels, the detail. A name that only disappeared (a dropped column)
    or only appeared (an added one) is no rename: a dependent of a dropped part was dropped
    with it, and nothing that existed could reference a new part without changing its own
    rows. Likewise a new object needs no walk. Conservative everywhere else: a changed
    function, schema, extension, collation, operator or operator class, a relation or type
    the snapshot does not show (composite type columns, TOAST tables), names both gone and
    new on one object, and any changed type detail walk as before."""
    new = _by_owner(rows)
    for classid, objid in changed:
        if (classid, objid) not in old:
            continue  # created since the base snapshot
        if classid not in (_PG_CLASS, _PG_TYPE):
            return True
        owner = ("c" if classid == _PG_CLASS else "t") + str(objid)
        before = base.owners.get(owner, [])
        after = new.get(owner, {})
        if not before or (not after and (classid, objid) in fp):
            return True  # not shown by the snapshot (then or now)
        removed, added = set(before) - set(after), set(after) - set(before)
        if removed and added:
            # A rename (or a drop and an add): a dependent of a dropped part was dropped
            # with it, and nothing could reference an added part yet; only both can hide a
            # rename.
            return True
        if classid == _PG_TYPE and any(base.objects.get(k) != after[k] for k in after
                                       if k in before):
            return True  # enum labels (a RENAME VALUE shows in defaults and views)
    return False


# Command tags whose row count is the statement's "rows affected".
_ROW_COMMANDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "SELECT", "COPY"})


def _rows_affected(status: str | None, count: int) -> int | None:
    return count if count >= 0 and status and status.split()[0] in _ROW_COMMANDS else None


def _lock_query_can_follow(node: Any) -> bool:
    """Whether the lock query can go in the same message right after this statement: not
    after COPY FROM STDIN (its data follows it), nor after DEALLOCATE or DISCARD (they may
    drop the prepared lock query)."""
    return not _is_copy_from_stdin(node) and \
        type(node).__name__ not in ("DeallocateStmt", "DiscardStmt")

_DML_MODES = frozenset(q.DML_MODES)  # (SCHEMA_HELD leaves them out the same way)
_DML_MODE_BYTES = frozenset(m.encode() for m in q.DML_MODES)

# A write to a system catalog (a hand-made enum or column change): no relation lock shows it.
_CATALOG_WRITE = re.compile(
    r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(?:\"?pg_catalog\"?\s*\.\s*)?\"?pg_\w+", re.I)


def _blinds_locks(stmt: ParsedStatement) -> bool:
    """Whether a statement can change what the snapshot shows without a lock on the relation
    it changes: a write to a system catalog, or ALTER EXTENSION ADD/DROP (membership decides
    whether an object is shown at all)."""
    if stmt.node is not None and type(stmt.node).__name__ == "AlterExtensionContentsStmt":
        return True
    return "pg_" in stmt.sql and _CATALOG_WRITE.search(stmt.sql) is not None


def _schema_held(typefp: str | None, globalfp: str | None, horizon: str | None = None,
                 lean: bool = False) -> str:
    """EXECUTE sqlsafe_schema_held (``lean``: SCHEMA_HELD_LEAN's statement) against the part
    fingerprints and the horizon of the snapshot before (digits and a colon only: safe to
    inline)."""
    name = "sqlsafe_schema_lean" if lean else "sqlsafe_schema_held"
    return (f"EXECUTE {name}(NULL, {_fp_literal(typefp)}, {_fp_literal(globalfp)}, "
            f"{_fp_literal(horizon)})")


# Statements that change the catalog rows of relations only (and what they own), as far as
# the statement itself goes: after a file of these, SCHEMA_HELD_LEAN reads what changed. A
# guess, not a proof (a trigger or a DROP ... CASCADE may change a type or a function after
# all): the fingerprints tell, and the parts left out are then read on their own.
_RELATION_ONLY = frozenset({
    "CreateStmt", "AlterTableStmt", "IndexStmt", "InsertStmt", "UpdateStmt", "DeleteStmt",
    "CreateSeqStmt", "AlterSeqStmt", "ViewStmt", "CreateTableAsStmt", "CommentStmt",
    "TruncateStmt", "VariableSetStmt", "ClusterStmt", "RuleStmt", "CreateTrigStmt",
    "CreatePolicyStmt", "AlterPolicyStmt", "CreateStatsStmt", "RefreshMatViewStmt"})
_RELATION_KINDS = frozenset({"table", "index", "sequence", "view", "materialized view",
                             "foreign table", "trigger", "policy", "rule"})


def _lean_will_do(statements: Sequence[ParsedStatement]) -> bool:
    """Whether SCHEMA_HELD_LEAN is expected to read all that ``statements`` change."""
    for stmt in statements:
        node = stmt.node
        if node is None:
            return False
        name = type(node).__name__
        if name == "DropStmt":
            if objtype_name(node.removeType) not in _RELATION_KINDS:
                return False
        elif name not in _RELATION_ONLY:
            return False
    return True


def _fps_of(rows: Sequence[tuple[Any, ...]]) -> _Fps:
    """The part fingerprints and the horizon in SCHEMA_HELD's or SCHEMA_LOCKED's last two
    rows (``q._LOCKED_TAIL``), as the next such read takes them."""
    horizon = rows[-2][1]
    return str(rows[-2][2]), str(rows[-1][2]), None if horizon is None else str(horizon)


def _unread(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether SCHEMA_HELD_LEAN's ``rows`` left out parts whose fingerprint changed."""
    return rows[-2][6] == "unread" or rows[-1][6] == "unread"


def _fp_literal(fp: str | None) -> str:
    """A part fingerprint as an SQL literal (digits and a colon only: safe to inline)."""
    return "NULL" if fp is None else f"'{fp}'"


def _schema_locked(touched: Iterable[int], base: Snapshot) -> str:
    """EXECUTE sqlsafe_schema_locked for the ``touched`` relations and the fingerprints
    ``base`` was read with (digits and a colon only: safe to inline)."""
    oids = ",".join(str(o) for o in sorted(touched))
    return (f"EXECUTE sqlsafe_schema_locked('{{{oids}}}', {_fp_literal(base.typefp)}, "
            f"{_fp_literal(base.globalfp)})")


def _lock_walk_needed(base: Snapshot, rows: Sequence[tuple[Any, ...]],
                      types_read: bool, globals_read: bool) -> str | None:
    """Which SCHEMA_LOCKED ``rows`` may leave another object's text stale after a statement
    that can rename (``_may_rename``): 'relations' when a relation has names both gone and new
    (its dependents, through pg_depend, must be read again), 'all' when a schema, function,
    type or extension is gone or a type changed other than by new enum labels (RENAME VALUE
    shows in defaults and views; ADD VALUE only adds), else None. Without a rename such
    changes are drops and adds: whatever depended on a dropped object was dropped with it
    (under a lock), and nothing can show a new name without changing its own rows."""
    new = _by_owner(rows)
    globals_after: dict[str, str] = {}
    for owner, shown in new.items():
        if owner == "" or owner[:1] == "t":
            globals_after.update(shown)
    for owner, keys in base.owners.items():
        if not (owner == "" and globals_read) and not (owner[:1] == "t" and types_read):
            continue
        for key in keys:
            detail = globals_after.get(key)
            if detail is None:
                return "all"
            old = base.objects.get(key)
            if old != detail and key.startswith("type ") and not _labels_added(old, detail):
                return "all"
    for owner, after in new.items():
        if owner[:1] != "c":
            continue
        before = base.owners.get(owner)
        if before and after and set(before) - set(after) and set(after) - set(before):
            return "relations"
    return None


# Statements that can rename what other objects' text shows: renames themselves, and those
# that run code (which may run anything).
_RENAMING = frozenset({"RenameStmt", "AlterObjectSchemaStmt", "DoStmt", "CallStmt",
                       "SelectStmt", "ExecuteStmt"})


def _may_rename(node: Any) -> bool:
    name = type(node).__name__
    if name == "AlterEnumStmt":
        return node.oldVal is not None  # RENAME VALUE
    return name in _RENAMING


def _moves_unlocked(node: Any) -> bool:
    """Whether a statement renames relations without locking them, so the lock query after it
    does not show their new names: ``ALTER TABLE ... SET SCHEMA`` takes the table's indexes and
    owned sequences along, ``ALTER SCHEMA ... RENAME`` renames every relation in the schema."""
    name = type(node).__name__
    if name == "AlterObjectSchemaStmt":
        return True
    return name == "RenameStmt" and objtype_name(node.renameType) == "schema"


def _labels_added(old: str | None, new: str) -> bool:
    """Whether type detail ``new`` is ``old`` with enum labels added (ALTER TYPE ADD VALUE)."""
    if old is None:
        return False
    head_old, _, labels_old = old.rpartition("|")
    head_new, _, labels_new = new.rpartition("|")
    return head_old == head_new and set(labels_old.split(",")) <= set(labels_new.split(","))


# Deparsed text (defaults, constraints, index and view definitions, type names) leaves out the
# schema of a name whose schema is on the search_path, and a migration may change the session's
# search_path: read under it, the text of objects that did not change would change too (a
# false "altered" in the catalog diff, a false "differs" in the checks). Every read of the
# catalog's text pins search_path to pg_catalog for its own message, as a local setting that
# is put back right after: statements after it in the same transaction keep their own.
#
# The same message plans the catalog queries generically from their first run (PostgreSQL
# 12+): a prepared statement with parameters is planned again for each of its first five
# runs, and planning SCHEMA_LOCKED, a union of a dozen catalog queries, takes about 5 ms, the
# time of five runs of its generic plan. (The setting is local to the message as well: a
# migration's own prepared statements and PL/pgSQL plans keep the session's.) JIT compilation
# (PostgreSQL 11+) is off for them too: a plan whose estimate passes jit_above_cost, as a big
# schema's full snapshot can, and as any plan made without sequential scans does before
# PostgreSQL 17 (a disabled path cost 10^10 there), would spend seconds compiling
# expressions that run a few hundred times.
_Setting = tuple[str, str, int]  # (name, value for the catalog read, first server version)
_PINNED: tuple[_Setting, ...] = (
    ("search_path", "pg_catalog", 0),
    ("plan_cache_mode", "force_generic_plan", 120000),
    ("jit", "off", 110000),
)

# The queries that read the catalog rows of a few owners (SCHEMA_HELD, SCHEMA_LOCKED,
# SCHEMA_OWN) are planned once per session, on the first run's estimates: those of a nearly
# empty database, whose catalogs are small enough that scanning all of pg_constraint or
# pg_trigger and hashing or sorting it looks cheaper than an index probe per owner. Those
# plans then cost time in proportion to the whole schema after every migration (0.3 ms of a
# 1.2 ms snapshot for documenso's 500 constraints). Planned without sequential scans, hash
# and merge joins, every part probes the owners' rows by index, whatever the schema grows
# to. (Not the full snapshot or SCHEMA_OF's walk: they read much of the catalog.)
_KEYED: tuple[_Setting, ...] = (
    ("enable_seqscan", "off", 0), ("enable_hashjoin", "off", 0), ("enable_mergejoin", "off", 0))


def _guarded(since: int, expr: str) -> str:
    return expr if not since else (
        f"CASE WHEN current_setting('server_version_num')::int >= {since} THEN {expr} END")


def _pin(settings: tuple[_Setting, ...]) -> str:
    """Each setting saved (as sqlsafe.<name>) and set for the rest of the transaction."""
    return "SELECT " + ", ".join(
        _guarded(since, f"set_config('sqlsafe.{name}', current_setting('{name}'), true) "
                        f"|| set_config('{name}', '{value}', true)")
        for name, value, since in settings)


def _unpin(settings: tuple[_Setting, ...]) -> str:
    """Each setting ``_pin`` saved put back."""
    return "SELECT " + ", ".join(
        _guarded(since, f"set_config('{name}', current_setting('sqlsafe.{name}'), true)")
        for name, _value, since in settings)


_PIN, _UNPIN = _pin(_PINNED), _unpin(_PINNED)
_PIN_KEYED, _UNPIN_KEYED = _pin(_PINNED + _KEYED), _unpin(_PINNED + _KEYED)


def _keyed_until_end(server_version_num: int) -> tuple[str, ...]:
    """The keyed pin as SET LOCAL statements, for a catalog read that the end of its
    transaction follows (nothing to put back): a third of ``_PIN_KEYED``'s cost, which saves
    and guards each setting (about 80 against 20 us, after every migration)."""
    return tuple(f"SET LOCAL {name} = '{value}'" for name, value, since in _PINNED + _KEYED
                 if server_version_num >= since)


def _wal_position(server_version_num: int) -> str:
    """The server's WAL insert position (text such as '0/1A2B3C8'), read between statements:
    the WAL a statement wrote is the distance between the positions around it. Before
    PostgreSQL 10 the function had another name: NULL there."""
    return "pg_current_wal_insert_lsn()" if server_version_num >= 100000 else "NULL"


def _clock_sql(server_version_num: int) -> str:
    """The server's clock and WAL position, read after each statement of a batched file."""
    return f"SELECT clock_timestamp(), {_wal_position(server_version_num)}"


def _wal_sql(server_version_num: int) -> str:
    return f"SELECT {_wal_position(server_version_num)}"


def _lsn(text: Any) -> int | None:
    if not isinstance(text, str) or "/" not in text:
        return None
    high, low = text.split("/", 1)
    return (int(high, 16) << 32) + int(low, 16)


def wal_between(before: Any, after: Any) -> int | None:
    """Bytes of WAL between two insert positions read on the server (None if unknown)."""
    a, b = _lsn(before), _lsn(after)
    return None if a is None or b is None else max(b - a, 0)


def _read_text(conn: psycopg.Connection[Any], sql: str,
               keyed: bool = False) -> list[tuple[Any, ...]]:
    """The rows of one catalog-text query, read with the search_path pinned (``_PIN``);
    ``keyed``: a query of a few owners' rows, planned for index probes (``_PIN_KEYED``)."""
    cur = conn.cursor()
    cur.execute(f"{_PIN_KEYED};{sql};{_UNPIN_KEYED}" if keyed else f"{_PIN};{sql};{_UNPIN}")
    cur.nextset()
    return cur.fetchall()


def take_snapshot(conn: psycopg.Connection) -> Snapshot:
    snap = Snapshot({}, {})
    _add_rows(snap, _read_text(conn, q.SCHEMA))
    return snap


def catalog_diff(before: Snapshot, after: Snapshot) -> CatalogDiff:
    old, new = before.objects, after.objects
    if after.changed is not None and after.changed[0] == before.serial:
        keys: Iterable[str] = after.changed[1]  # the rest is the same by construction
    else:
        keys = new.keys() | old.keys()
    created = sorted(k for k in keys if k in new and k not in old)
    dropped = sorted(k for k in keys if k in old and k not in new)
    altered = sorted(k for k in keys if k in new and k in old and old[k] != new[k])
    return CatalogDiff(tuple(created), tuple(altered), tuple(dropped))


def schema_differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """What ``actual`` lacks, has extra, or defines differently, compared with ``expected``."""
    d = catalog_diff(expected, actual)
    return ([f"{k}: left behind" for k in d.created]
            + [f"{k}: missing" for k in d.dropped]
            + [f"{k}: differs" for k in d.altered])


# --------------------------------------------------------------------------------------------
# Statement classification


def _txn_kind(node: Any) -> str | None:
    """'begin' | 'end' for transaction control statements, else None."""
    if node is None or type(node).__name__ != "TransactionStmt":
        return None
    kind = node.kind.name if hasattr(node.kind, "name") else str(node.kind)
    if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        return "begin"
    if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE",
                "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED"):
        return "end"
    return "other"  # SAVEPOINT, RELEASE, ROLLBACK TO


def cannot_run_in_transaction(node: Any, server_version_num: int) -> bool:
    """PostgreSQL refuses the statement inside a transaction block (``sqlsafe.txblock``)."""
    return refuses_transaction_block(node, server_version_num) is not None


def _extension_name(node: Any) -> str | None:
    if node is not None and type(node).__name__ == "CreateExtensionStmt":
        return str(node.extname)
    return None


def _is_copy_from_stdin(node: Any) -> bool:
    return (node is not None and type(node).__name__ == "CopyStmt" and bool(node.is_from)
            and node.filename is None and not node.is_program)


def _copy_data(section: Section, stmt: ParsedStatement) -> str:
    """The data lines psql would send for COPY ... FROM stdin: after the statement, up to \\."""
    text = section.text
    pos = stmt.span.end - section.char_offset
    nl = text.find("\n", pos)
    if nl < 0:
        return ""
    end = re.compile(r"^\\\.[ \t]*\r?$", re.M).search(text, nl + 1)
    return text[nl + 1 : end.start() if end else len(text)]


# --------------------------------------------------------------------------------------------
# The per-connection replay state


@dataclass
class _Unit:
    """A file (or down section) ready to run: its parsed statements and how to wrap them."""

    migration: Migration
    section: Section
    statements: tuple[ParsedStatement, ...]
    wrap: bool  # BEGIN ... COMMIT around the whole file
    tx_safe: bool  # can rerun inside BEGIN ... ROLLBACK (idempotency and down checks)
    notes: tuple[str, ...] = ()


def _unit(migration: Migration, section: Section, server_version_num: int,
          parsed: ParsedSection | None = None) -> _Unit:
    """``parsed``: the lint's parse of the same section, if it kept one."""
    if parsed is None or parsed.section is not section:
        parsed = parse_section(section)
    has_control = any(_txn_kind(s.node) for s in parsed.statements)
    no_tx = any(cannot_run_in_transaction(s.node, server_version_num) for s in parsed.statements)
    notes = []
    for meta in parsed.meta_commands:
        if _META_UNSUPPORTED.match(meta.command):
            notes.append(f"{meta.path}:{meta.line}: psql meta-command {meta.command.split()[0]} "
                         "is not supported by the dry run; it was skipped")
    return _Unit(migration, section, parsed.statements,
                 wrap=migration.in_transaction and not has_control,
                 tx_safe=not has_control and not no_tx and not _has_copy(parsed.statements),
                 notes=tuple(notes))


# Settings whose session-level change alters how later statements resolve names or whose
# privileges they run with.
_NOTED_SESSION_SETTINGS = frozenset({"search_path", "role", "session_authorization"})


def _session_settings(statements: Iterable[ParsedStatement]) -> list[tuple[int, str]]:
    """(line, setting) for each SET of a ``_NOTED_SESSION_SETTINGS`` without LOCAL: state
    the migration leaves in the session for the ones after it."""
    out = []
    for stmt in statements:
        node: Any = stmt.node
        if type(node).__name__ == "VariableSetStmt" and not node.is_local and \
                getattr(node.kind, "name", "") == "VAR_SET_VALUE" and \
                str(node.name).lower() in _NOTED_SESSION_SETTINGS:
            out.append((stmt.span.line, str(node.name).lower()))
    return out


def _has_copy(statements: Iterable[ParsedStatement]) -> bool:
    return any(_is_copy_from_stdin(s.node) for s in statements)


def _send(conn: psycopg.Connection[Any], sql: str) -> None:
    """Send ``sql`` as one simple-protocol message; its answers are read with ``_fetch``."""
    from psycopg import generators

    with conn.lock:
        conn.pgconn.send_query(sql.encode(conn.info.encoding))
        conn.wait(generators.send(conn.pgconn))


def _fetch(conn: psycopg.Connection[Any]) -> list[Any]:
    """Every answer to the message ``_send`` sent, with psycopg's own wait (which cancels the
    query on Ctrl-C, as ``execute`` does)."""
    from psycopg import generators

    with conn.lock:
        return conn.wait(generators.fetch_many(conn.pgconn))


class _Answers:
    """All of the server's answers to one simple-protocol message, read without raising.

    ``cursor.execute`` raises at the first error and keeps none of the answers before it; a
    batched migration needs those (the statements before the failing one ran and were
    observed). This sends the text and reads every answer with psycopg's own wait, which
    cancels the query on Ctrl-C as ``execute`` does, and converts rows with psycopg's loaders.
    An error ends the message, so it is the last answer (``failed_at``). ``of``: the answers
    to a message sent earlier (``_Session.send_ahead``)."""

    def __init__(self, conn: psycopg.Connection[Any], sql: str) -> None:
        _send(conn, sql)
        self._take(conn, _fetch(conn))

    @classmethod
    def of(cls, conn: psycopg.Connection[Any], results: list[Any]) -> _Answers:
        """The answers to a message sent earlier (``_send``) and read with ``_fetch``."""
        answers = cls.__new__(cls)
        answers._take(conn, results)
        return answers

    def _take(self, conn: psycopg.Connection[Any], results: list[Any]) -> None:
        from psycopg import adapt, pq

        self._conn = conn
        self.raw = results  # the PGresults, one per part
        self._tx = adapt.Transformer(conn)
        self.failed_at: int | None = None
        for i, res in enumerate(self.raw):
            if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK,
                                  pq.ExecStatus.EMPTY_QUERY):
                self.failed_at = i
                break

    def rows(self, i: int) -> list[tuple[Any, ...]]:
        res = self.raw[i]
        self._tx.set_pgresult(res)
        return self._tx.load_rows(0, res.ntuples, tuple)

    def status(self, i: int) -> tuple[str | None, int]:
        """The command tag and the row count, as a cursor's statusmessage and rowcount."""
        res = self.raw[i]
        tag = res.command_status
        count = res.command_tuples
        return (tag.decode(self._conn.info.encoding) if tag else None,
                count if count is not None else -1)

    def error(self) -> Exception:
        from psycopg import errors

        assert self.failed_at is not None
        return errors.error_from_result(self.raw[self.failed_at],
                                        encoding=self._conn.info.encoding)


class _Rerun(NamedTuple):
    """What a check's rerun in one message found (``_Session.rerun_in_one_message``)."""

    error: StatementError | None  # the file's statement that failed
    snapshot: Snapshot  # the schema after the file (empty when it failed)
    then_error: StatementError | None = None  # the statement of ``then`` that failed


class _Message:
    """A simple-protocol message built part by part: each part gives one answer, in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0  # of the text so far: each part and the ';' after it

    def add(self, part: str) -> int:
        """Append a part; returns where its answer is."""
        self.parts.append(part)
        self.size += len(part) + 1
        return len(self.parts) - 1

    @property
    def text(self) -> str:
        return ";".join(self.parts)


def _held_locks(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """SCHEMA_HELD's first rows, the locks after the last statement, ('lock', name, mode,
    oid, relfilenode, relkind, NULL), as the lock query's rows."""
    return [(oid, node, kind, name, mode) for _k, name, mode, oid, node, kind, _o
            in itertools.takewhile(lambda r: r[0] == "lock", rows)]


def _keeps_owners(base: Snapshot) -> bool:
    """Whether a snapshot can be built on from the relations touched since (it keeps its
    objects' owners, or has no objects)."""
    return bool(base.owners or not base.objects)


@dataclass
class _Batch:
    """The message that runs a wrapped file (``_Session._batch_message``), with where each
    of its answers is: every part of the message gives one answer, in order."""

    unit: _Unit
    parts: tuple[str, ...]  # of the message, one per answer
    starts: tuple[int, ...]  # where each statement starts in ``text`` (error positions)
    base: Snapshot | None  # the snapshot SCHEMA_HELD compares its fingerprints with
    statement_at: tuple[int, ...]  # per statement: its answer,
    locks_at: tuple[int | None, ...]  # the lock query's (None: SCHEMA_HELD's first rows)
    clock_at: tuple[int, ...]  # and the clock's after it
    snapshot_at: int | None  # SCHEMA_HELD before the COMMIT (else the fingerprint after it)
    snapshot_clock_at: int | None  # the clock after SCHEMA_HELD, right before the COMMIT
    commit_at: int
    commit_clock_at: int  # the clock after the COMMIT
    fingerprint_at: int | None  # the fingerprint after the COMMIT (not held)
    sent: float = 0.0  # perf_counter() when it was sent
    lean: bool = False  # SCHEMA_HELD_LEAN rather than SCHEMA_HELD

    @property
    def text(self) -> str:
        return ";".join(self.parts)

    def against(self, fps: _Fps) -> _Batch:
        """The same message with SCHEMA_HELD against the part fingerprints ``fps``."""
        assert self.snapshot_at is not None
        parts = list(self.parts)
        parts[self.snapshot_at] = _schema_held(*fps, lean=self.lean)
        return replace(self, parts=tuple(parts))


class _Failed(Exception):
    def __init__(self, error: StatementError, result: StatementResult | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result


class _Session:
    """One connection to one database, with what the observation needs to remember."""

    def __init__(self, replayer: _Replayer, conn: psycopg.Connection, dbname: str | None) -> None:
        self.r = replayer
        self.conn = conn
        self.dbname = dbname
        row = conn.execute(q.BACKEND_PID).fetchone()
        assert row is not None  # SELECT pg_backend_pid() always returns one row
        self.pid: int = int(row[0])
        self.known: dict[int, Rel] = {}  # relations as of the end of the previous statement
        self.held: set[tuple[int, str]] = set()  # (oid, mode) held in the open transaction
        self._watch_conn: psycopg.Connection | None = None
        self._hold_conn: psycopg.Connection | None = None  # --measure-blocking: lock_queue
        self._prober: bk.Prober | None = None  # --measure-blocking: the probe session
        # The snapshot before the running migration: the base of mid-migration refreshes.
        self.base: Snapshot | None = None
        # The observation queries are PREPAREd by name, once per session, and psycopg's own
        # cache is off: after every DROP/ALTER/ROLLBACK a migration runs, psycopg would send
        # DEALLOCATE ALL and parse and plan the queries again (a quarter of the run).
        conn.prepare_threshold = None
        self._prepared = False
        self._keyed_until_end = _keyed_until_end(replayer.server_version_num)
        # A wrapped migration's BEGIN is sent in the same message as its first statement
        # (one round trip less per migration); until then it is only pending.
        self._pending_begin = False
        # Rows read in the same message as a wrapped migration's COMMIT for the snapshot that
        # follows at once (``snapshot``): ("locked", the base they were read against,
        # SCHEMA_LOCKED rows) or ("fingerprint", None, SCHEMA_FINGERPRINT rows). Cleared by
        # anything that runs SQL.
        self._stash: tuple[str, Snapshot | None, list[tuple[Any, ...]]] | None = None
        # The relations whose catalog rows may have changed since ``base``, from the lock
        # query after each statement (``_touch``); None when something ran that the lock
        # query did not see (an unobserved or watched statement, a write to a system
        # catalog): then ``snapshot`` falls back to the fingerprint. Set by the caller that
        # knows where ``base`` is (``_replay_one``, ``touch_held``).
        self.touched: set[int] | None = None
        # Since ``start_touched``: a change the lock query cannot show (a lock on a relation the
        # snapshot does not show, a write to a system catalog, ALTER EXTENSION ADD/DROP).
        self._blind = False
        self._renamed = False  # since ``start_touched``: a statement that can rename ran
        # The observation of a batched file's statements, left by ``_run_batched`` for the
        # client to do while the server runs the COMMIT's message; ``run_unit`` does it at the
        # latest. It uses no connection.
        self._deferred: Callable[[], None] | None = None
        # The message of the next file, sent before the client finished with the one before
        # (``send_ahead``); its answers are read by ``_run_batched``.
        self._inflight: _Batch | None = None
        # A check's rerun in flight (``send_rerun``): the file, each statement's file and
        # place in the message by the position of its answer, and the snapshot's answer.
        self._rerun: tuple[_Unit, dict[int, tuple[_Unit, ParsedStatement, int]], int] | None = None
        # The file that runs after the current one, when nothing else must run in between
        # (set by ``_replay_one``): its message may be sent as soon as the current file's
        # answers are in.
        self.next_unit: _Unit | None = None

    # -- observation queries ------------------------------------------------------------------

    _PREPARE: tuple[tuple[str, str, str], ...] = (
        ("sqlsafe_locks", "", q.LOCKS),
        ("sqlsafe_fingerprint", "", q.SCHEMA_FINGERPRINT),
        ("sqlsafe_schema", "", q.SCHEMA),
        ("sqlsafe_schema_of", "(oid[], oid[])", q.SCHEMA_OF),
        ("sqlsafe_schema_own", "(oid[], oid[])", q.SCHEMA_OWN),
        ("sqlsafe_schema_locked", "(oid[], text, text)", q.SCHEMA_LOCKED),
        ("sqlsafe_schema_held", "(oid[], text, text, text)", q.SCHEMA_HELD),
        ("sqlsafe_schema_lean", "(oid[], text, text, text)", q.SCHEMA_HELD_LEAN),
    )

    def _ensure_prepared(self) -> None:
        if self._prepared:
            return
        # After a migration's DEALLOCATE/DISCARD some or none may be gone: ask.
        have = {r[0] for r in self.conn.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'sqlsafe\\_%'")}
        for name, params, sql in self._PREPARE:
            if name not in have:
                self.conn.execute(f"PREPARE {name}{params} AS {sql}")
        self._prepared = True

    def _forget_prepared(self, node: Any) -> None:
        """A migration's DEALLOCATE or DISCARD may drop the session's prepared statements."""
        if node is not None and type(node).__name__ in ("DeallocateStmt", "DiscardStmt"):
            self._prepared = False

    def relation_sizes(self) -> dict[int, tuple[str, str, int]] | None:
        """``_read_sizes`` before a migration; None inside a transaction the one before left
        open (the reading would run in it)."""
        return None if self.in_transaction else self._read_sizes()

    def _read_sizes(self, oids: AbstractSet[int] | None = None,
                    ) -> dict[int, tuple[str, str, int]]:
        """Every user relation's size on disk (``q.RELATION_SIZES``), or only those of
        ``oids`` (``q.RELATION_SIZES_OF``): oid -> (name, relkind, bytes)."""
        self._check_idle()
        cur = (self.conn.execute(q.RELATION_SIZES) if oids is None
               else self.conn.execute(q.RELATION_SIZES_OF, {"oids": sorted(oids)}))
        return {int(oid): (str(name), str(kind), int(size))
                for oid, name, kind, size in cur if size is not None}

    def warm(self) -> None:
        """Plan the queries that run after every statement and every migration now, in the
        set-up, rather than on their first runs in the replay: PostgreSQL plans a prepared
        statement on its first EXECUTE, which for the held reads (a union of a dozen catalog
        queries each) takes milliseconds. Each runs once, in a transaction rolled back, under
        the settings it runs with later (the lock query under the session's own, the held
        reads under the keyed pin); on the empty database that costs little more than the
        planning, and the catalog's caches are filled on the way."""
        self._ensure_prepared()
        answers = _Answers(self.conn, ";".join((
            "BEGIN", "EXECUTE sqlsafe_locks", *self._keyed_until_end, _schema_held(None, None),
            _schema_held(None, None, lean=True), "ROLLBACK")))
        if answers.failed_at is not None:
            raise answers.error()

    def locks(self) -> list[tuple[Any, ...]]:
        self._ensure_prepared()
        return self.conn.execute("EXECUTE sqlsafe_locks").fetchall()

    def snapshot(self, base: Snapshot | None = None) -> Snapshot:
        """``take_snapshot`` on this session; with ``base`` (an earlier snapshot of the same
        database, or of the one it was cloned from, taken at a committed state no later than
        now) only part of the catalog is read again. When every statement since ``base`` was
        observed (``touched``), the relations they locked (``_snapshot_from_locks``);
        otherwise the objects whose catalog fingerprint changed, and what depends on them.
        The result is the same as a full snapshot's (tests/dryrun/test_snapshots.py)."""
        self._ensure_prepared()
        kind, stash_base, stash_rows = self._stash or ("", None, [])
        self._stash = None
        if self._can_build_from_locks(base):
            assert base is not None and self.touched is not None
            # Rows read against another base's fingerprints would not do.
            locked_rows = stash_rows if kind == "locked" and stash_base is base else None
            snap = self._snapshot_from_locks(base, self.touched, locked_rows)
            if snap is not None:
                return snap
        self._check_idle()
        fp_rows = stash_rows if kind == "fingerprint" else None
        if fp_rows is None:
            fp_rows = self.conn.execute("EXECUTE sqlsafe_fingerprint").fetchall()
        fp = {(int(c), int(o)): (int(n), int(x), int(st)) for c, o, n, x, st in fp_rows}
        if base is None or base.fingerprint is None:
            snap = Snapshot({}, {}, {}, fp)
            _add_rows(snap, _read_text(self.conn, "EXECUTE sqlsafe_schema"))
            return snap
        old = base.fingerprint
        changed = [k for k, v in fp.items() if old.get(k) != v]
        changed += [k for k in old if k not in fp]
        if not changed:
            # Every catalog row the snapshot reads is under the fingerprint: nothing to read.
            return Snapshot(dict(base.objects), dict(base.rels), dict(base.owners), fp)
        # First only the changed objects themselves; their dependents too only when a name
        # another object's text can show changed (``_needs_walk``): adding a foreign key to a
        # table does not change the text of the tables that reference it.
        rows = _read_text(self.conn, f"EXECUTE sqlsafe_schema_own({_oid_arrays(changed)})",
                          keyed=True)
        if _needs_walk(changed, old, fp, base, rows):
            rows = _read_text(self.conn, f"EXECUTE sqlsafe_schema_of({_oid_arrays(changed)})")
        dirty = {row[6] for row in rows if row[0] == "owner"}
        dirty.add("")  # the global parts are always read again
        return _merge(base, dirty, rows, Snapshot({}, {}, {}, fp))

    def _snapshot_from_locks(self, base: Snapshot, touched: set[int],
                             rows: list[tuple[Any, ...]] | None) -> Snapshot | None:
        """The snapshot after statements whose locks were all seen: the touched relations,
        the global parts and the types read again, the rest kept from ``base``. None when a
        name another object's text can show may have changed (a rename), or a lock fell on a
        relation the snapshot does not show (a composite type's attributes): then the caller
        takes the fingerprint path, which follows dependents (or reads everything)."""
        if self._blind:
            return None
        if rows is None:
            self._check_idle()
            rows = _read_text(self.conn, _schema_locked(touched, base), keyed=True)
        elif _unread(rows):
            # SCHEMA_HELD_LEAN left out the types or the global parts, and one of them
            # changed: read them now (SCHEMA_LOCKED for no relation), before anything else
            # runs. Its last two rows then stand for the lean read's.
            self._check_idle()
            rows = rows[:-2] + _read_text(self.conn, _schema_locked((), base), keyed=True)
        # The last two rows: the fingerprints of the types and of the global parts (and the
        # horizon), and whether those parts were read again.
        typefp, globalfp, horizon = _fps_of(rows)
        types_read, globals_read = rows[-2][6], rows[-1][6]
        rows = rows[:-2]
        walk = (_lock_walk_needed(base, rows, types_read is not None, globals_read is not None)
                if self._renamed else None)
        if walk == "all":
            return None
        if walk == "relations":
            # The touched relations and their dependents from SCHEMA_OF; the global parts and
            # the types as SCHEMA_LOCKED read them.
            pairs = [(_PG_CLASS, oid) for oid in sorted(touched)]
            self._check_idle()
            walked = _read_text(self.conn, f"EXECUTE sqlsafe_schema_of({_oid_arrays(pairs)})")
            rows = ([r for r in rows if not str(r[6] or "").startswith("c")]
                    + [r for r in walked if str(r[6] or "").startswith("c")])
        dirty = {str(row[6]) for row in rows if row[0] == "owner"}
        if globals_read is not None:
            dirty.add("")
        if types_read is not None:
            dirty.update(o for o in base.owners if o.startswith("t"))
        try:
            return _merge(base, dirty, rows,
                          Snapshot({}, {}, {}, None, typefp, globalfp, horizon))
        except _Stale:
            return None  # not seen so far; the caller reads by fingerprint or statement

    def _touch(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Add the relations the lock query's ``rows`` show locked in a mode that can change
        catalog rows (anything above ROW EXCLUSIVE: reads and DML change none)."""
        if self.touched is None:
            return
        for oid, _filenode, relkind, _name, mode in rows:
            if mode in _DML_MODES or relkind == "t":  # a TOAST table: never shown
                continue
            if relkind == "c":
                self._blind = True  # ALTER TYPE on a composite type's attributes
            self.touched.add(int(oid))

    def _note(self, stmt: ParsedStatement) -> None:
        """What a statement about to run means for the next lock-derived snapshot."""
        if _blinds_locks(stmt):
            self._blind = True
        if stmt.node is not None and _may_rename(stmt.node):
            self._renamed = True

    def start_touched(self) -> None:
        """From here on, collect the relations the observed statements lock (``_touch``)."""
        self.touched = set()
        self._blind = False
        self._renamed = False

    def touch_held(self) -> None:
        """At the end of a transaction that ran every statement since ``start_touched``: what
        it changed is still locked, so the relations to read again come from pg_locks."""
        if self._blind or not self.in_transaction:
            self.touched = None
            return
        self.touched = set()
        self._touch(self.locks())

    # -- transaction state --------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def execute_control(self, sql: str) -> None:
        self._stash = None
        self.conn.execute(sql)
        if not self.in_transaction:
            self.held = set()

    def rollback_if_open(self) -> None:
        self._pending_begin = False
        self._stash = None
        if self.in_transaction:
            self.conn.execute("ROLLBACK")
        self.held = set()

    def close(self) -> None:
        if self._prober is not None:
            self._prober.close()
            self._prober = None
        if self._watch_conn is not None:
            self._watch_conn.close()
            self._watch_conn = None
        if self._hold_conn is not None:
            self._hold_conn.close()
            self._hold_conn = None
        self.conn.close()

    # -- running a unit -----------------------------------------------------------------------

    def run_unit(self, unit: _Unit, *, observe: bool,
                 predictions: dict[tuple[str, int], StatementInfo] | None = None,
                 defer: bool = False,
                 ) -> tuple[list[StatementResult], StatementError | None, float]:
        """Run a file; on failure roll back what the file's transaction holds and stop.
        Returns (statement results, error, duration in ms). ``defer``: a file that ran as
        one message may leave the observation of its statements to ``finish_unit``, which
        completes the list of results returned."""
        results: list[StatementResult] = []
        started = time.perf_counter()
        try:
            batched: float | None = None
            if observe and self._batchable(unit):
                batched = self._run_batched(unit, predictions, results)
            if batched is not None:
                if not defer:
                    self._run_deferred()
                return results, None, batched
            if unit.wrap and observe:
                self._pending_begin = True
            elif unit.wrap:
                self.execute_control("BEGIN")
            for stmt in unit.statements:
                results.append(self.run_statement(unit, stmt, observe=observe,
                                                  predictions=predictions))
            if self._pending_begin:
                self._pending_begin = False  # no statement: BEGIN; COMMIT would do nothing
            elif self.in_transaction:
                # The wrapper's COMMIT, or a file's BEGIN without COMMIT (psql would roll
                # it back at disconnect; migration tools differ — we commit and say so).
                if not unit.wrap:
                    self.r.notes.append(f"{unit.section.path}: the file leaves a transaction "
                                        "open (BEGIN without COMMIT); the dry run committed it")
                self._commit_unit(unit, observe)
        except _Failed as failed:
            self._run_deferred()
            if failed.result is not None:
                results.append(failed.result)
            self.rollback_if_open()
            return results, failed.error, (time.perf_counter() - started) * 1000
        self._run_deferred()
        return results, None, (time.perf_counter() - started) * 1000

    def finish_unit(self) -> None:
        """The observation ``run_unit(defer=True)`` left to do."""
        self._run_deferred()

    def _commit_unit(self, unit: _Unit, observe: bool) -> None:
        """The COMMIT that ends a file's transaction. It can fail (a deferred constraint is
        checked then): that is the file's failure, at its last statement, not ours."""
        import psycopg

        try:
            if observe and unit.wrap and self._prepared:
                self._commit_observed()
            else:
                self.execute_control("COMMIT")
        except psycopg.Error as exc:
            last = unit.statements[-1]
            error = self._error(exc, last)
            error = replace(error, message=f"{error.message} (when the transaction committed)")
            self.rollback_if_open()
            raise _Failed(error, None) from None

    def _batchable(self, unit: _Unit) -> bool:
        """Whether a file can go to the server as one message (``_run_batched``): a wrapped
        file, or one statement (run in a transaction of its own all the same, so that its
        locks can be read), of which no statement needs a connection of its own (COPY FROM
        STDIN, the watched ones), drops the prepared lock query (DEALLOCATE, DISCARD), is
        probed while it holds its locks, or controls the transaction."""
        if self.r.measure_blocking or self.r.measure_sizes or not unit.statements:
            return False
        if not unit.wrap and (len(unit.statements) > 1 or _txn_kind(unit.statements[0].node)):
            return False
        return all(self._can_join_a_message(stmt) for stmt in unit.statements)

    def _can_join_a_message(self, stmt: ParsedStatement) -> bool:
        """Whether a statement can run in a message with others inside a transaction: not
        COPY FROM STDIN, DEALLOCATE or DISCARD (``_lock_query_can_follow``), nothing that
        refuses a transaction block, nothing whose names are read after it."""
        return (stmt.node is not None and _lock_query_can_follow(stmt.node)
                and not cannot_run_in_transaction(stmt.node, self.r.server_version_num)
                and not _moves_unlocked(stmt.node))

    def _batch_message(self, unit: _Unit, base: Snapshot | None,
                       fps: _Fps | None = None) -> _Batch:
        """The one message that runs a wrapped file (``_run_batched``): BEGIN and the server's
        clock; each statement followed by the lock query and the clock; then the snapshot
        query and the COMMIT. The snapshot query is SCHEMA_HELD before the COMMIT when every
        statement's locks will be seen and the snapshot before the file is known (``base``,
        or only its part fingerprints ``fps``): inside the transaction it reads what the
        COMMIT makes permanent, while the locks that name the touched relations are still
        held. Otherwise the fingerprint, after the COMMIT. A clock reading before and after
        the COMMIT times it."""
        if fps is None and base is not None:
            fps = (base.typefp, base.globalfp, base.horizon)
        held = fps is not None and not any(_blinds_locks(s) for s in unit.statements)
        lean = held and _lean_will_do(unit.statements)
        clock_sql = _clock_sql(self.r.server_version_num)
        message = _Message()
        add = message.add
        add("BEGIN")
        add(clock_sql)
        starts, statement_at, locks_at, clock_at = [], [], [], []
        last = len(unit.statements) - 1
        for i, stmt in enumerate(unit.statements):
            starts.append(message.size)
            # A newline before the ';': the statement may end in a -- comment. SCHEMA_HELD
            # reads the locks after the last statement itself.
            statement_at.append(add(stmt.sql + "\n"))
            locks_at.append(None if held and i == last else add("EXECUTE sqlsafe_locks"))
            clock_at.append(add(clock_sql))
        snapshot_at = snapshot_clock_at = fingerprint_at = None
        if held:
            assert fps is not None
            for pin in self._keyed_until_end:
                add(pin)
            snapshot_at = add(_schema_held(*fps, lean=lean))
            snapshot_clock_at = add(clock_sql)
        commit_at = add("COMMIT")
        commit_clock_at = add(clock_sql)
        if not held:
            fingerprint_at = add("EXECUTE sqlsafe_fingerprint")
        return _Batch(unit, tuple(message.parts), tuple(starts), base, tuple(statement_at),
                      tuple(locks_at), tuple(clock_at), snapshot_at, snapshot_clock_at,
                      commit_at, commit_clock_at, fingerprint_at, lean=lean)

    def send_ahead(self, unit: _Unit, base: Snapshot | None = None,
                   fps: _Fps | None = None,
                   built: _Batch | None = None) -> bool:
        """Send the message of the file that runs next (``unit``) before the client has
        worked through the results of the one before: the server runs it while the client
        builds those. ``_run_batched`` reads its answers. The snapshot it starts from is
        ``base``, or, while that is still being built from the answers before, only its part
        fingerprints ``fps``: ``rebase_inflight`` then gives the snapshot itself. Only when
        the file would be batched anyway; False when it was not sent. ``built``: its message
        built already (``_ready_ahead``), to send against ``fps``."""
        if self._inflight is not None or not self._prepared or not self._batchable(unit):
            return False
        if built is not None and fps is not None:
            batch = built.against(fps)
        else:
            batch = self._batch_message(unit, base, fps)
        _send(self.conn, batch.text)
        batch.sent = time.perf_counter()
        self._inflight = batch
        return True

    def _ready_ahead(self, batch: _Batch) -> _Batch | None:
        """The next file's message, built while the server still runs ``batch`` (this
        file's), when it may go as soon as this file's answers show that it committed and
        locked no composite type (``_fingerprints_if_done``): every other condition of
        ``_snapshot_needs_no_query`` is known before it ran. Its SCHEMA_HELD waits for the
        fingerprints (``_Batch.against``). None when it may not go that early."""
        unit = self.next_unit
        # (A SCHEMA_HELD in ``batch`` means none of its statements blinds the lock query.)
        if unit is None or self._inflight is not None or not self._prepared or \
                batch.snapshot_at is None or not self._can_build_from_locks(batch.base) or \
                any(_may_rename(s.node) for s in batch.unit.statements) or \
                not self._batchable(unit):
            return None
        ahead = self._batch_message(unit, None, ("", "", None))
        return ahead if ahead.snapshot_at is not None else None

    @staticmethod
    def _fingerprints_if_done(batch: _Batch, answers: _Answers,
                              ) -> _Fps | None:
        """The part fingerprints SCHEMA_HELD found after ``batch``, read from the raw answers
        before any row is converted, if every part of it ran and no statement locked a
        composite type's relation (``_touch``: the snapshot would then need the fingerprint
        path's query); else None."""
        if answers.failed_at is not None or batch.snapshot_at is None:
            return None
        results = answers.raw
        lock_columns = [(results[at], 2, 4) for at in batch.locks_at if at is not None]
        held = results[batch.snapshot_at]
        lock_columns.append((held, 5, 2))
        for res, relkind_col, mode_col in lock_columns:
            for row in range(res.ntuples):
                if res.get_value(row, relkind_col) == b"c" and \
                        res.get_value(row, mode_col) not in _DML_MODE_BYTES and \
                        (res is not held or res.get_value(row, 0) == b"lock"):
                    return None
        n = held.ntuples
        if held.get_value(n - 2, 6) == b"unread" or held.get_value(n - 1, 6) == b"unread":
            return None  # parts left out must be read before the next file runs
        base = batch.base
        for row in range(n - 2):
            # A row without its text takes it from the snapshot before, which must have it
            # (else the rows are read again: ``_Stale``), and needs that snapshot at hand.
            if held.get_value(row, 2) is None and held.get_value(row, 0) != b"lock" and (
                    base is None or f"{held.get_value(row, 0).decode()} "
                    f"{held.get_value(row, 1).decode()}" not in base.objects):
                return None
        typefp, globalfp = held.get_value(n - 2, 2), held.get_value(n - 1, 2)
        horizon = held.get_value(n - 2, 1)
        return (None if typefp is None else typefp.decode(),
                None if globalfp is None else globalfp.decode(),
                None if horizon is None else horizon.decode())

    def rebase_inflight(self, base: Snapshot) -> None:
        """The snapshot that the message sent ahead (on part fingerprints) starts from."""
        if self._inflight is not None and self._inflight.base is None:
            self._inflight.base = base

    def _check_idle(self) -> None:
        """A catalog read must not find the next file's message in flight: it would read
        the catalog after that file (``_snapshot_needs_no_query`` rules this out)."""
        if self._inflight is not None or self._rerun is not None:
            raise RuntimeError("catalog read while the next file ran")  # a bug of ours

    def _snapshot_needs_no_query(self, base: Snapshot | None) -> bool:
        """Whether ``snapshot(base)`` will be built from the rows read with the COMMIT alone
        (``_snapshot_from_locks`` without a walk), so the connection may be busy meanwhile."""
        return (self._can_build_from_locks(base) and self._stash is not None
                and self._stash[0] == "locked" and self._stash[1] is base and self._prepared
                and not self._blind and not self._renamed and not _unread(self._stash[2]))

    def _can_build_from_locks(self, base: Snapshot | None) -> bool:
        """Whether ``snapshot(base)`` may build on ``base`` from the touched relations: every
        statement since it was observed, and it keeps its objects' owners."""
        return base is not None and self.touched is not None and _keeps_owners(base)

    def _run_batched(self, unit: _Unit,
                     predictions: dict[tuple[str, int], StatementInfo] | None,
                     results: list[StatementResult]) -> float | None:
        """Run and commit a wrapped file as one simple-protocol message (``_batch_message``).
        The server runs its parts in order, so each lock query sees exactly the locks after
        its statement, as one message per statement does, at one round trip per file instead
        of one per statement. A statement's duration is the server's time between the clock
        readings around it (it includes the lock query, as the per-statement path's does);
        the file's is theirs plus the COMMIT's. Returns the file's duration in ms.

        When a statement fails, the server has already answered for the ones before it: their
        results go into ``results`` and the failure raises ``_Failed``, as the per-statement
        path would, without running anything twice (a statement that hits statement_timeout
        would otherwise cost that timeout twice). A failing COMMIT (a deferred constraint) is
        the file's failure at its last statement. None, after a ROLLBACK, for an error the
        message's own parts raised: the caller then runs the file statement by statement.

        The observation of the statements is left in ``_deferred`` for the caller to do
        while the server works on something else (``_replay_one``), or at the latest
        before anything else reads ``results``."""
        import psycopg

        batch, self._inflight = self._inflight, None
        if batch is not None and batch.unit is not unit:
            raise RuntimeError("the message sent ahead was for another file")  # a bug of ours
        self._stash = None
        if batch is None:
            self._ensure_prepared()
            batch = self._batch_message(unit, self.base)
            batch.sent = time.perf_counter()
            _send(self.conn, batch.text)
        # The next file's message goes as soon as these answers allow (the server waits for
        # it meanwhile), before they are worked through: on the fingerprints the snapshot
        # after this file will have (``_snapshot_from_locks``), while this client builds it.
        # This is the one place a file goes on fingerprints: whenever the snapshot will need
        # no further query, ``_ready_ahead`` and ``_fingerprints_if_done`` let it go here.
        ahead = self._ready_ahead(batch)
        answers = _Answers.of(self.conn, _fetch(self.conn))
        if ahead is not None:
            fps = self._fingerprints_if_done(batch, answers)
            if fps is not None:
                self.send_ahead(ahead.unit, fps=fps, built=ahead)
        # For a failing statement, the time since the message was sent less the statements'
        # before it (for a message sent ahead, an upper bound).
        wall = (time.perf_counter() - batch.sent) * 1000
        commit_at = batch.commit_at
        failed_at = answers.failed_at
        if failed_at is not None and failed_at < commit_at and \
                failed_at not in batch.statement_at:
            self.rollback_if_open()  # our own part failed
            return None
        # SCHEMA_HELD's rows: first the locks after the last statement, as rows ('lock', name,
        # mode, oid, relfilenode, relkind, NULL); then the snapshot's.
        snapshot_rows: list[tuple[Any, ...]] = []
        if batch.snapshot_at is not None and (failed_at is None or failed_at >= commit_at):
            snapshot_rows = answers.rows(batch.snapshot_at)
        last_locks = _held_locks(snapshot_rows)
        first, position = answers.rows(1)[0]  # the clock after BEGIN
        previous = first
        spent = 0.0
        for stmt in unit.statements:
            self._note(stmt)
        # Only what the snapshot needs is worked out at once (the touched relations); the
        # rest of the observation is left for later (``_deferred``).
        ran: list[tuple[ParsedStatement, float, str | None, int, list[tuple[Any, ...]],
                        int | None]] = []

        def observe() -> None:
            for stmt, duration, status, count, lock_rows, wal in ran:
                before = dict(self.known)
                held_before = set(self.held)
                locks, rewrites = self._observe(before, held_before, lock_rows, touch=False)
                results.append(_observed_result(unit, stmt, duration, locks, rewrites,
                                                _rows_affected(status, count), unit.wrap,
                                                before,
                                                held_before, predictions, wal_bytes=wal))
            if committed:
                self.held = set()

        committed = False
        for i, stmt in enumerate(unit.statements):
            at = batch.statement_at[i]
            if at == failed_at:
                exc = answers.error()
                assert isinstance(exc, psycopg.Error)
                if not unit.wrap and exc.sqlstate in _REFUSES_OUR_BLOCK:
                    # Legal outside the block we opened (``run_statement`` runs it again).
                    self.rollback_if_open()
                    return None
                observe()
                error = self._error(exc, stmt, batch.starts[i])
                raise _Failed(error, StatementResult(
                    stmt.span.line, stmt.sql, max(wall - spent, 0.0), error=error,
                    in_transaction=unit.wrap, end_line=stmt.span.end_line))
            status, count = answers.status(at)
            locks_at = batch.locks_at[i]
            lock_rows = last_locks if locks_at is None else answers.rows(locks_at)
            clock, after = answers.rows(batch.clock_at[i])[0]
            duration = (clock - previous).total_seconds() * 1000
            spent += duration
            previous = clock
            wal = wal_between(position, after)
            position = after
            self._touch(lock_rows)
            ran.append((stmt, duration, status, count, lock_rows, wal))
        if failed_at == commit_at:
            observe()
            exc = answers.error()
            assert isinstance(exc, psycopg.Error)
            error = self._error(exc, unit.statements[-1])
            error = replace(error, message=f"{error.message} (when the transaction committed)")
            self.rollback_if_open()
            raise _Failed(error, None)
        committed = True
        if batch.snapshot_at is not None and batch.snapshot_clock_at is not None:
            before_commit = answers.rows(batch.snapshot_clock_at)[0][0]
            rows = snapshot_rows[len(last_locks):]
            self._stash = ("locked", batch.base, rows)
        else:
            before_commit = previous
        done = answers.rows(batch.commit_clock_at)[0][0] if failed_at is None or \
            failed_at > batch.commit_clock_at else before_commit
        if batch.fingerprint_at is not None and failed_at is None:
            self._stash = ("fingerprint", None, answers.rows(batch.fingerprint_at))
        self._deferred = observe
        return ((previous - first) + (done - before_commit)).total_seconds() * 1000

    def rerun_in_one_message(self, unit: _Unit, base: Snapshot, then: _Unit | None = None,
                             next_unit: _Unit | None = None) -> _Rerun | None:
        """Run a transaction-safe file inside a block that is rolled back, unobserved, as one
        simple-protocol message: BEGIN, its statements, SCHEMA_HELD, the statements of
        ``then`` if given, and ROLLBACK. The idempotency check reruns a file this way; the
        down check runs the down, then the up again. Returns the error of the file's
        statement that failed, or the snapshot of the schema the file left (built from
        ``base``, the snapshot before it, as the replay builds one) and the error of
        ``then``'s statement that failed, if one did. None when the file cannot go this way
        (a statement that may rename, blinds the lock query, or needs a message of its own),
        or when the snapshot would need a further read of a catalog already rolled back: the
        caller then runs it statement by statement. One round trip instead of one per
        statement and three more. ``send_rerun`` sends the message earlier, while the client
        still works. ``next_unit``: as ``finish_rerun``'s."""
        if not self.send_rerun(unit, (base.typefp, base.globalfp, base.horizon), base, then):
            return None
        return self.finish_rerun(base, next_unit)

    def send_rerun(self, unit: _Unit, fps: _Fps,
                   base: Snapshot | None = None, then: _Unit | None = None) -> bool:
        """Send ``rerun_in_one_message``'s message for ``unit`` (and ``then``) against a
        snapshot with the part fingerprints ``fps`` (``base`` itself, or None while the
        client still builds it from the rows at hand); ``finish_rerun`` reads the answers.
        False when the file cannot go this way (nothing was sent)."""
        if self._inflight is not None or self._rerun is not None:
            return False
        if not (self._prepared and self._rerunnable(unit)) or \
                (then is not None and not self._rerunnable(then)) or \
                (base is not None and not _keeps_owners(base)) or \
                any(_blinds_locks(s) or _may_rename(s.node) for s in unit.statements):
            return False
        message = _Message()
        message.add("BEGIN")
        starts: dict[int, tuple[_Unit, ParsedStatement, int]] = {}  # answer -> statement

        def run(file: _Unit) -> None:
            for stmt in file.statements:
                offset = message.size
                starts[message.add(stmt.sql + "\n")] = (file, stmt, offset)  # (a -- comment)

        run(unit)
        for pin in (self._keyed_until_end if then is None else (_PIN_KEYED,)):
            message.add(pin)
        snapshot_at = message.add(_schema_held(*fps))
        if then is not None:
            message.add(_UNPIN_KEYED)  # ``then`` runs under the migrations' own search_path
            run(then)
        message.add("ROLLBACK")
        _send(self.conn, message.text)
        self._rerun = (unit, starts, snapshot_at)
        return True

    def _rerunnable(self, unit: _Unit) -> bool:
        """Whether a file can run in one message inside a block of ours (``send_rerun``):
        ``_batchable``'s test, for a file of several statements that its tool does not wrap
        too (a check's block is rolled back: it never commits a statement on its own), and for
        an empty file (many tools write an empty down)."""
        return unit.tx_safe and not self.r.measure_blocking and all(
            self._can_join_a_message(stmt) and not _txn_kind(stmt.node)
            for stmt in unit.statements)

    def rerun_ahead(self, unit: _Unit) -> bool:
        """Send the idempotency check's rerun of ``unit``, the file that just ran, before the
        client builds the snapshot after it and works through its statements: the server
        reruns it meanwhile (``finish_rerun`` reads the answers). Only when that snapshot
        will be built from the rows at hand (``_snapshot_needs_no_query``): the fingerprints
        the rerun is read against are among them."""
        if self._stash is None or not self._snapshot_needs_no_query(self.base):
            return False
        return self.send_rerun(unit, _fps_of(self._stash[2]))

    def finish_rerun(self, base: Snapshot, next_unit: _Unit | None = None) -> _Rerun | None:
        """The answers to ``send_rerun``'s message, against ``base`` (the snapshot the rerun
        started from): as ``rerun_in_one_message`` returns them. ``next_unit``: the file that
        runs next, sent ahead (``send_ahead``) once the answers are in and nothing else needs
        the connection (not when the statement path must run the check instead)."""
        import psycopg

        assert self._rerun is not None, "finish_rerun() without send_rerun()"
        (unit, starts, snapshot_at), self._rerun = self._rerun, None
        answers = _Answers.of(self.conn, _fetch(self.conn))
        failed_at = answers.failed_at
        self._stash = None
        self.held = set()
        error: StatementError | None = None
        if failed_at is not None:
            self.rollback_if_open()
            failed = starts.get(failed_at)
            if failed is None:
                return None  # our own part failed: the statement path finds out why
            exc = answers.error()
            assert isinstance(exc, psycopg.Error)
            error = self._error(exc, failed[1], failed[2])
            if failed[0] is unit:
                if next_unit is not None:
                    self.send_ahead(next_unit, base)
                return _Rerun(error, Snapshot({}, {}))
        if not _keeps_owners(base):
            return None
        rows = answers.rows(snapshot_at)
        lock_rows = _held_locks(rows)
        self.start_touched()
        self._touch(lock_rows)
        assert self.touched is not None
        snap = self._snapshot_from_locks(base, self.touched, rows[len(lock_rows):])
        self.touched = None
        if snap is None:
            return None
        if next_unit is not None:
            self.send_ahead(next_unit, base)  # the rerun was rolled back: ``base`` is now
        return _Rerun(None, snap, error)

    def _run_deferred(self) -> None:
        work, self._deferred = self._deferred, None
        if work is not None:
            work()

    def _commit_observed(self) -> None:
        """COMMIT an observed wrapped migration together with the query its snapshot
        (``_replay_one``, right after) starts with, in one round trip: SCHEMA_LOCKED before
        the COMMIT when every statement's locks were seen (inside the transaction it reads
        what the COMMIT makes permanent, while the locks that name the touched relations are
        still held), else the fingerprint after it. A failing COMMIT raises as before. (A
        file that runs as one message has its COMMIT in that message: ``_batch_message``.)"""
        locked = self.touched is not None and not self._blind and self.base is not None
        message = _Message()
        if locked:
            assert self.base is not None and self.touched is not None
            for pin in self._keyed_until_end:
                message.add(pin)
            read_at = message.add(_schema_locked(self.touched, self.base))
            message.add("COMMIT")
        else:
            message.add("COMMIT")
            read_at = message.add("EXECUTE sqlsafe_fingerprint")
        answers = _Answers(self.conn, message.text)
        self.held = set()
        if answers.failed_at is not None:
            raise answers.error()
        self._stash = (("locked", self.base, answers.rows(read_at)) if locked
                       else ("fingerprint", None, answers.rows(read_at)))

    def run_statement(self, unit: _Unit, stmt: ParsedStatement, *, observe: bool,
                      predictions: dict[tuple[str, int], StatementInfo] | None = None,
                      ) -> StatementResult:
        import psycopg

        self._stash = None
        in_tx = self.in_transaction or self._pending_begin
        control = _txn_kind(stmt.node)
        no_tx = cannot_run_in_transaction(stmt.node, self.r.server_version_num)
        self._note(stmt)
        if not observe or (no_tx and not in_tx):
            self.touched = None  # no lock query after it (or only the watcher's polls)
        self._forget_prepared(stmt.node)
        # Outside a transaction block a statement's locks are gone when it returns: run it in
        # its own one-statement transaction (what autocommit does) so they can be read.
        own_tx = observe and not in_tx and not control and not no_tx
        watch = observe and not in_tx and no_tx
        before = dict(self.known) if observe else {}
        held_before = set(self.held)
        # An observed statement, the BEGIN before it (ours, pending or per statement) and the
        # lock query after it go in one simple-protocol message: the server runs them in order,
        # so the lock query still sees exactly the locks after this statement and before the
        # next, without a round trip of its own (a psycopg pipeline does the same at twice the
        # client cost). Not for COPY FROM STDIN, the watched statements, or a
        # DEALLOCATE/DISCARD (it may drop the prepared lock query sent after it).
        combined = observe and not watch and _lock_query_can_follow(stmt.node)
        begin = own_tx or self._pending_begin
        self._pending_begin = False
        # The per-statement COMMIT joins too, unless --measure-blocking probes the locks the
        # statement still holds before it.
        commit_too = combined and own_tx and not self.r.measure_blocking
        offset = 0  # of the statement in the text sent (for the error position)
        lock_rows: list[tuple[Any, ...]] | None = None
        t0 = time.perf_counter()
        rows: int | None = None
        probes: tuple[Any, ...] = ()
        watcher: _Watcher | None = None
        wal_sql = _wal_sql(self.r.server_version_num)
        positions: list[Any] = []  # the WAL insert positions before and after the statement
        lock_queue: LockQueue | None = None
        try:
            if begin and not combined:
                self.conn.execute("BEGIN")
            if watch:
                positions.append(self.conn.execute(wal_sql).fetchone()[0])  # type: ignore[index]
                watcher = _Watcher(self._watcher_conn(), self.pid,
                                   _tables_to_hold(stmt, unit, predictions, before))
                watcher.start()
            t0 = time.perf_counter()
            try:
                if _is_copy_from_stdin(stmt.node):
                    cur = self.conn.cursor()
                    with cur.copy(stmt.sql) as copy:
                        copy.write(_copy_data(unit.section, stmt))
                elif watch and self.r.measure_blocking:
                    # Locks of a non-transactional statement exist only while it runs.
                    cur, probes = bk.probe_during(
                        self.prober(), lambda: self.conn.execute(stmt.sql),
                        self.pid, bk.statement_tables(stmt.node))
                elif combined:
                    self._ensure_prepared()
                    prefix = ("BEGIN;" if begin else "") + wal_sql + ";\n"
                    offset = len(prefix)
                    # A newline before the ';': the statement may end in a -- comment.
                    text = (prefix + stmt.sql + f"\n;{wal_sql};EXECUTE sqlsafe_locks"
                            + (";COMMIT" if commit_too else ""))
                    queue = self._queue_target(stmt, unit, predictions, before) \
                        if self.r.measure_blocking else None
                    with (bk.lock_queue(self._holder_conn(), self.prober(), self.pid,
                                        queue[0], max_hold=queue[1])
                          if queue else contextlib.nullcontext(None)) as queued:
                        t0 = time.perf_counter()
                        answers = _Answers(self.conn, text)
                    if queue is not None and queued is not None and queued.waited and \
                            queued.released is not None:
                        # Its own time starts when the stand-in query let go.
                        waited_ms = max((queued.released - t0) * 1000, 0.0)
                        t0 = max(t0, queued.released)
                        read = queued.read
                        lock_queue = LockQueue(queue[0], waited_ms, bool(read and read.blocked),
                                               read.waited_ms if read else 0.0)
                    if answers.failed_at is not None:
                        raise answers.error()
                    # Answers: [BEGIN,] position, statement, position, locks[, COMMIT].
                    at = 1 if begin else 0
                    positions.append(answers.rows(at)[0][0])
                    status, count = answers.status(at + 1)
                    positions.append(answers.rows(at + 2)[0][0])
                    lock_rows = answers.rows(at + 3)
                else:
                    cur = self.conn.execute(stmt.sql)
            finally:
                duration = (time.perf_counter() - t0) * 1000
                seen = watcher.stop() if watcher is not None else None
            if watch:
                positions.append(self.conn.execute(wal_sql).fetchone()[0])  # type: ignore[index]
            if lock_rows is None:
                status, count = cur.statusmessage, cur.rowcount
            rows = _rows_affected(status, count)
        except psycopg.Error as exc:
            # Sent together, an error of our COMMIT after the statement (a deferred constraint)
            # is the statement's: production commits it the same way.
            duration = (time.perf_counter() - t0) * 1000
            error = self._error(exc, stmt, offset)
            if own_tx and self.in_transaction:
                self.conn.execute("ROLLBACK")
            if own_tx and getattr(exc, "sqlstate", None) in _REFUSES_OUR_BLOCK:
                # A statement our classifier did not know to be non-transactional (say, CALL
                # of a procedure that commits): it is legal here (we opened the block), so run
                # it again the way production does. The failed attempt was rolled back.
                return self._run_watched_retry(unit, stmt, observe, predictions)
            result = StatementResult(stmt.span.line, stmt.sql, duration, error=error,
                                     in_transaction=in_tx, end_line=stmt.span.end_line)
            raise _Failed(error, result) from None
        if not observe:
            if not self.in_transaction:
                self.held = set()
            return StatementResult(stmt.span.line, stmt.sql, duration, rows=rows,
                                   in_transaction=in_tx, end_line=stmt.span.end_line)
        if watch:
            assert seen is not None
            self._refresh_known()
            locks = [ObservedLock(before[oid].name, mode, before[oid].relkind)
                     for oid, mode in seen.items() if oid in before]
            rewrites = self._rewrites(before, self.known)
        else:
            locks, rewrites = self._observe(before, held_before, lock_rows)
            if _moves_unlocked(stmt.node):
                self._rename_known()
            if self.r.measure_blocking and locks:
                # After the statement, before COMMIT: its locks are still held.
                probes = self.prober().probe(bk.tables_of(locks))
            if own_tx:
                if not commit_too:
                    self.conn.execute("COMMIT")
                self.held = set()
        if control == "end" or not self.in_transaction:
            self.held = set()
        wal = wal_between(*positions) if len(positions) == 2 else None
        # The relations to read the size of again: those locked after the statement (its
        # transaction's locks, all of them still held), when the lock query's rows are at
        # hand; a watched statement's locks were polled and may have been missed: all.
        locked = None if watch or lock_rows is None else {int(r[0]) for r in lock_rows}
        return self._with_sizes(_observed_result(
            unit, stmt, duration, locks, rewrites, rows, in_tx, before, held_before,
            predictions, probes, wal_bytes=wal, polled=watch, lock_queue=lock_queue), locked)

    def _with_sizes(self, result: StatementResult,
                    locked: AbstractSet[int] | None = None) -> StatementResult:
        """With ``measure_sizes``: the relations whose size the statement changed, against
        the reading after the statement before it (or before the migration). ``locked``:
        the relations the statement's transaction holds locks on; with their indexes, the
        only ones whose size it can have changed (``q.RELATION_SIZES_OF``), the others keep
        their reading. None: read every relation (a thousand cost about 15 ms a reading)."""
        if self.r.sizes_now is None:
            return result
        # Inside the migration's transaction, if it has one.
        if locked is None:
            now = self._read_sizes()
        else:
            read = self._read_sizes(locked)
            # A relation that was read keeps its new size; one of ``locked`` that was not (a
            # table the statement dropped) is gone. An index of a locked table that was
            # dropped went with a lock on it, so it is in ``locked`` too.
            now = {oid: v for oid, v in self.r.sizes_now.items() if oid not in locked}
            now.update(read)
        changes = size_changes(self.r.sizes_now, now)
        self.r.sizes_now = now
        return replace(result, sizes=changes)

    def _run_watched_retry(self, unit: _Unit, stmt: ParsedStatement, observe: bool,
                           predictions: dict[tuple[str, int], StatementInfo] | None,
                           ) -> StatementResult:
        import psycopg

        before = dict(self.known)
        self.touched = None
        watcher = _Watcher(self._watcher_conn(), self.pid) if observe else None
        if watcher is not None:
            watcher.start()
        t0 = time.perf_counter()
        try:
            try:
                self.conn.execute(stmt.sql)
            finally:
                duration = (time.perf_counter() - t0) * 1000
                seen = watcher.stop() if watcher is not None else {}
        except psycopg.Error as exc:
            error = self._error(exc, stmt)
            raise _Failed(error, StatementResult(stmt.span.line, stmt.sql, duration, error=error,
                                                 in_transaction=False,
                                                 end_line=stmt.span.end_line)) from None
        if not observe:
            return StatementResult(stmt.span.line, stmt.sql, duration, in_transaction=False,
                                   end_line=stmt.span.end_line)
        self._refresh_known()
        locks = sorted((ObservedLock(before[oid].name, mode, before[oid].relkind)
                        for oid, mode in seen.items() if oid in before),
                       key=lambda lock: lock.relation)
        result = StatementResult(stmt.span.line, stmt.sql, duration, tuple(locks),
                                 tuple(self._rewrites(before, self.known)), None, None, False,
                                 stmt.span.end_line)
        info = (predictions or {}).get((unit.section.path, stmt.span.line))
        return self._with_sizes(_with_prediction(result, info, before, set(), polled=True)
                                if info else result)

    # -- observation --------------------------------------------------------------------------

    def _observe(self, before: dict[int, Rel], held_before: set[tuple[int, str]],
                 rows: list[tuple[Any, ...]] | None = None, *, touch: bool = True,
                 ) -> tuple[list[ObservedLock], list[str]]:
        """``rows``: the lock query's result when it came in the statement's message;
        ``touch=False``: the caller has passed them to ``_touch`` already."""
        if rows is None:
            rows = self.locks()
        if touch:
            self._touch(rows)
        now: set[tuple[int, str]] = set()
        current: dict[int, Rel] = {}
        for oid, relfilenode, relkind, name, mode in rows:
            now.add((int(oid), str(mode)))
            if relkind is not None:  # else dropped by this transaction, still locked
                current[int(oid)] = Rel(int(relfilenode), str(relkind), str(name))
        locks = [ObservedLock(before[oid].name, mode, before[oid].relkind)
                 for oid, mode in now - held_before if oid in before]
        rewrites = self._rewrites(before, current)
        self.known.update(current)
        self.held = now
        return locks, rewrites

    @staticmethod
    def _rewrites(before: dict[int, Rel], after: dict[int, Rel]) -> list[str]:
        out = []
        for oid, rel in after.items():
            old = before.get(oid)
            # Partitioned tables and indexes have relfilenode 0: no storage to rewrite.
            if old is not None and rel.relfilenode and old.relfilenode and \
                    rel.relfilenode != old.relfilenode:
                out.append(old.name)
        return sorted(out)

    def _rename_known(self) -> None:
        """Read the names of the relations known so far again (``_moves_unlocked``): a later
        statement that drops one is then reported on the name it had when it ran."""
        rows = self.conn.execute(q.RELATION_NAMES, (list(self.known),)).fetchall()
        for oid, name in rows:
            rel = self.known.get(int(oid))
            if rel is not None and rel.name != name:
                self.known[int(oid)] = Rel(rel.relfilenode, rel.relkind, str(name))

    def _refresh_known(self) -> None:
        self.known = self.snapshot(self.base).rels

    def prober(self) -> bk.Prober:
        if self._prober is None:
            self._prober = bk.Prober(self.r.sandbox.connect(self.dbname))
        return self._prober

    def _holder_conn(self) -> psycopg.Connection:
        """--measure-blocking: the session that stands in for a running query (``lock_queue``)."""
        if self._hold_conn is None or self._hold_conn.closed:
            self._hold_conn = self.r.sandbox.connect(self.dbname)
        return self._hold_conn

    def _queue_target(self, stmt: ParsedStatement, unit: _Unit,
                      predictions: dict[tuple[str, int], StatementInfo] | None,
                      before: dict[int, Rel]) -> tuple[str, float] | None:
        """(table, longest hold in seconds) for the lock-queue measurement: the first existing
        table the lint predicts the statement takes ACCESS EXCLUSIVE on, unless the
        transaction already holds that, or the session's lock_timeout is too short to wait
        behind a stand-in query without failing the statement."""
        from ..rules.context import parse_duration_ms

        info = (predictions or {}).get((unit.section.path, stmt.span.line))
        if info is None:
            return None
        by_name = {rel.name: (oid, rel.relkind) for oid, rel in before.items()}
        for guess in info.locks:
            found = by_name.get(guess.relation)
            if guess.mode != lk.ACCESS_EXCLUSIVE or found is None or found[1] not in _TABLE_KINDS:
                continue
            if (found[0], lk.ACCESS_EXCLUSIVE) in self.held:
                return None
            row = self.conn.execute("SELECT current_setting('lock_timeout')").fetchone()
            timeout = parse_duration_ms(str(row[0])) if row else None
            if not timeout:
                return guess.relation, 0.5
            if timeout < 150:
                return None
            return guess.relation, min(0.5, timeout * 0.4 / 1000)
        return None

    def _watcher_conn(self) -> psycopg.Connection:
        if self._watch_conn is None or self._watch_conn.closed:
            self._watch_conn = self.r.sandbox.connect(self.dbname)
        return self._watch_conn

    def _error(self, exc: Exception, stmt: ParsedStatement, offset: int = 0) -> StatementError:
        """``offset``: where the statement starts in the text sent (after our BEGIN)."""
        diag = getattr(exc, "diag", None)
        message = (getattr(diag, "message_primary", None) or str(exc).strip().splitlines()[0]
                   if str(exc).strip() else type(exc).__name__)
        line = stmt.span.line
        position = getattr(diag, "statement_position", None)
        if position:
            try:
                p = int(position) - offset
                line += stmt.sql[: max(p - 1, 0)].count("\n")
            except ValueError:
                pass
        sqlstate = getattr(exc, "sqlstate", None)
        gap = self.r.sandbox_gap(stmt.node)
        hint = START_HINT if self.r.starts_empty and sqlstate in _MISSING_OBJECT else None
        return StatementError(message, line, sqlstate, gap, hint)


class _Watcher:
    """Polls pg_locks for another backend from a thread while that backend runs a statement.

    A fast statement on a small table can start and finish between two polls. So before the
    statement starts, the watcher opens a transaction with a snapshot and takes SHARE UPDATE
    EXCLUSIVE (NOWAIT) on the tables the statement is expected to lock: a statement that needs
    a conflicting lock (VACUUM, CREATE/DROP/REINDEX ... CONCURRENTLY, DETACH ... CONCURRENTLY:
    all take at least SHARE UPDATE EXCLUSIVE) or waits for older snapshots (CREATE INDEX
    CONCURRENTLY) then waits where the watcher sees it — a waiting request shows the mode it
    needs — and the watcher lets go at once. The statement's duration includes that wait.
    """

    _HOLD_LIMIT = 2.0  # seconds: let go even if the statement never waited

    def __init__(self, conn: psycopg.Connection, pid: int, hold: Sequence[str] = ()) -> None:
        self.conn = conn
        self.pid = pid
        self.hold = tuple(hold)
        self.seen: dict[int, str] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="sqlsafe-lock-watcher",
                                        daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> dict[int, str]:
        self._stop.set()
        self._thread.join()
        return self.seen

    def _take_hold(self) -> bool:
        import psycopg
        from psycopg import sql

        if not self.hold:
            return False
        self.conn.execute(q.WATCH_BEGIN)
        self.conn.execute(q.WATCH_SNAPSHOT)
        for name in self.hold:
            schema, _, rel = name.partition(".")
            try:
                self.conn.execute(sql.SQL(q.WATCH_HOLD).format(sql.Identifier(schema, rel)))
            except psycopg.Error:
                self.conn.execute("ROLLBACK")
                return False
        return True

    def _poll(self) -> None:
        holding = False
        try:
            holding = self._take_hold()
            held_since = time.perf_counter()
            self._ready.set()
            rechecked = False
            while True:
                waiting = False
                for oid, _filenode, _kind, _name, mode, granted in self.conn.execute(
                        q.LOCKS_OF_PID, (self.pid,), prepare=True):
                    oid = int(oid)
                    waiting = waiting or not granted
                    if lk.rank(mode) > lk.rank(self.seen.get(oid, "")):
                        self.seen[oid] = str(mode)
                if holding and not waiting:
                    row = self.conn.execute(q.WAITING, (self.pid,), prepare=True).fetchone()
                    waiting = bool(row and row[0])
                    if waiting and not rechecked:
                        # It began to wait between the two queries: read the lock it waits
                        # for before letting go, or it takes it and finishes unseen.
                        rechecked = True
                        continue
                if holding and (waiting or self._stop.is_set()
                                or time.perf_counter() - held_since > self._HOLD_LIMIT):
                    self.conn.execute("ROLLBACK")
                    holding = False
                if self._stop.is_set():
                    return
                if not holding:
                    time.sleep(_POLL_SECONDS)
        except BaseException as exc:  # the connection died with the server: stop watching
            self._error = exc
        finally:
            self._ready.set()
            if holding:
                try:
                    self.conn.execute("ROLLBACK")
                except Exception:
                    pass


def _tables_to_hold(stmt: ParsedStatement, unit: _Unit,
                    predictions: dict[tuple[str, int], StatementInfo] | None,
                    before: dict[int, Rel]) -> list[str]:
    """The existing tables the prediction says a statement locks (for the watcher's hold)."""
    info = (predictions or {}).get((unit.section.path, stmt.span.line))
    if info is None:
        return []
    tables = {rel.name for rel in before.values() if rel.relkind in _TABLE_KINDS}
    return sorted({p.relation for p in info.locks if p.relation in tables})


def _observed_result(unit: _Unit, stmt: ParsedStatement, duration: float,
                     locks: list[ObservedLock], rewrites: list[str], rows: int | None,
                     in_tx: bool, before: dict[int, Rel], held_before: set[tuple[int, str]],
                     predictions: dict[tuple[str, int], StatementInfo] | None,
                     probes: tuple[Any, ...] = (), wal_bytes: int | None = None,
                     polled: bool = False, lock_queue: LockQueue | None = None
                     ) -> StatementResult:
    """An observed statement's result, with the lint's prediction for it when there is one.
    ``polled``: its locks were seen by the watcher's polls (``discrepancies``)."""
    locks.sort(key=lambda lock: (lock.relation, lk.rank(lock.mode)))
    result = StatementResult(stmt.span.line, stmt.sql, duration, tuple(locks), tuple(rewrites),
                             rows, None, in_tx, stmt.span.end_line, blocking=probes,
                             wal_bytes=wal_bytes, lock_queue=lock_queue)
    info = predictions.get((unit.section.path, stmt.span.line)) if predictions else None
    return result if info is None else _with_prediction(result, info, before, held_before,
                                                        polled=polled)


def _with_prediction(result: StatementResult, info: StatementInfo, before: dict[int, Rel],
                     held_before: set[tuple[int, str]], *, polled: bool = False
                     ) -> StatementResult:
    predicted = tuple((p.relation, p.mode) for p in info.locks)
    return replace(result, predicted_locks=predicted, predicted_rewrites=tuple(info.rewrites),
                   discrepancies=tuple(discrepancies(result, info, before, held_before,
                                                     polled=polled)))


def discrepancies(result: StatementResult, info: StatementInfo, before: dict[int, Rel],
                  held_before: AbstractSet[tuple[int, str]] = frozenset(), *,
                  polled: bool = False) -> list[str]:
    """Where PostgreSQL contradicts the static prediction for one statement.

    Only relations that existed before the statement count, compared by the strongest mode per
    relation; locks on indexes, TOAST tables, sequences and views count only when the prediction
    names them (it covers tables, partitioned tables, materialized views and named indexes).
    ``polled``: a statement outside a transaction, whose locks the watcher saw by polling: a
    weak lock held between two polls is missed, so one predicted and not seen is no
    contradiction.
    """
    if result.error is not None:
        return []
    # Only the names the prediction or the result mention are looked up (this runs for every
    # statement, and ``before`` holds every relation of the schema).
    wanted = {p.relation for p in info.locks}
    wanted.update(result.rewrites, info.rewrites)
    existing = {rel.name: rel.relkind for rel in before.values() if rel.name in wanted}
    held_modes: dict[str, str] = {}
    for oid, mode in held_before:
        held = before.get(oid)
        if held is not None and held.name in wanted and \
                lk.rank(mode) > lk.rank(held_modes.get(held.name, "")):
            held_modes[held.name] = mode
    predicted: dict[str, str] = {}
    for guess in info.locks:
        if guess.relation in existing and \
                lk.rank(guess.mode) > lk.rank(predicted.get(guess.relation, "")):
            predicted[guess.relation] = guess.mode
    observed: dict[str, str] = {}
    # A separate name from the loop above: these are ObservedLocks (with a relkind), those
    # LockPredictions.
    for seen in result.locks:
        # An unpredicted ACCESS SHARE is a read (REFRESH reading the view's tables, a view or
        # function body, a FK check): the static model does not follow reads, and the mode
        # conflicts only with ACCESS EXCLUSIVE.
        if seen.mode == lk.ACCESS_SHARE and seen.relation not in predicted:
            continue
        if (seen.relkind in _PREDICTED_KINDS or seen.relation in predicted) and \
                lk.rank(seen.mode) > lk.rank(observed.get(seen.relation, "")):
            observed[seen.relation] = seen.mode
    out: list[str] = []
    for rel in sorted(set(predicted) | set(observed)):
        p, o = predicted.get(rel), observed.get(rel)
        if p == o:
            continue
        if p and not o:
            # Already held from an earlier statement of the transaction: PostgreSQL does not
            # show a lock twice, so "not new" is not a contradiction.
            if lk.rank(held_modes.get(rel, "")) >= lk.rank(p):
                continue
            # The watcher makes a statement wait for SHARE UPDATE EXCLUSIVE and stronger on
            # the tables it holds, where its polls see the request; a weaker lock (a row lock
            # of an INSERT after a COMMIT in a DO block) may come and go between two polls.
            if polled and lk.rank(p) < lk.rank(lk.SHARE_UPDATE_EXCLUSIVE):
                continue
            out.append(f"predicted {p} on {rel}; PostgreSQL took no new lock on it")
        elif o and not p:
            out.append(f"PostgreSQL took {o} on {rel}; not predicted")
        else:
            assert p and o
            if lk.rank(held_modes.get(rel, "")) >= lk.rank(p) and lk.rank(o) < lk.rank(p):
                continue
            word = "stronger" if lk.rank(o) > lk.rank(p) else "weaker"
            out.append(f"predicted {p} on {rel}; PostgreSQL took {o} ({word})")
    observed_rw = {r for r in result.rewrites if existing.get(r) in _TABLE_KINDS}
    # A partitioned table has no storage to rewrite (its partitions are rewritten instead).
    predicted_rw = {r for r in info.rewrites if existing.get(r) in _TABLE_KINDS
                    and existing.get(r) != "p"}
    for rel in sorted(predicted_rw - observed_rw):
        out.append(f"predicted a rewrite of {rel}; PostgreSQL did not rewrite it")
    for rel in sorted(observed_rw - predicted_rw):
        out.append(f"PostgreSQL rewrote {rel}; not predicted")
    return out


# --------------------------------------------------------------------------------------------
# The replay


@dataclass
class _Replayer:
    sandbox: Sandbox
    config: Config
    notes: list[str] = field(default_factory=list)
    _available: frozenset[str] | None = None
    session: _Session | None = None
    clones: int = 0
    measure_blocking: bool = False
    parsed: dict[str, ParsedSection] = field(default_factory=dict)  # the lint's, by path
    starts_empty: bool = True  # no --setup: the replay starts from an empty database
    # ``measure_sizes``: each relation's size before the migration that runs now (``sizes``)
    # and after its last observed statement (``sizes_now``), read by the statement path
    # (a file then never goes as one message).
    measure_sizes: bool = False
    sizes: dict[int, tuple[str, str, int]] | None = None
    sizes_now: dict[int, tuple[str, str, int]] | None = None

    @property
    def server_version_num(self) -> int:
        return self.sandbox.server_version_num

    def open(self, dbname: str | None = None) -> _Session:
        conn = self.sandbox.connect(dbname)
        timeout = int(self.config.statement_timeout_ms)
        # A hung statement cannot hang the run. SET, not a startup option: the url engine may
        # sit behind a pooler that rejects startup options.
        conn.execute(f"SET statement_timeout = {timeout}")
        return _Session(self, conn, dbname)

    def sandbox_gap(self, node: Any) -> str | None:
        ext = _extension_name(node)
        if ext is None:
            return None
        if self._available is None:
            assert self.session is not None
            with self.sandbox.connect(self.session.dbname) as conn:
                self._available = frozenset(r[0] for r in conn.execute(q.AVAILABLE_EXTENSIONS))
        if ext in self._available:
            return None
        image = _EXTENSION_IMAGES.get(ext, f"postgres:{self.server_version_num // 10000}")
        where = f"the {self.sandbox.engine} PostgreSQL {self.sandbox.server_version} server"
        return (f"{where} does not have the {ext} extension; use --engine docker --image {image}"
                + (" or --engine local where it is installed" if self.sandbox.engine != "local"
                   else ""))

    # -- clones for checks that cannot roll back ----------------------------------------------

    def on_clone(self, work: Callable[[_Session], Any], base: Snapshot) -> Any:
        """Run ``work`` on a copy of the scratch database; the main replay never sees it.
        CREATE DATABASE ... TEMPLATE needs the template to have no other connections, so
        the main session (and its watcher) are closed around the copy and reopened after.
        ``base`` is the snapshot of the scratch database as it is copied."""
        assert self.session is not None
        known = self.session.known
        self.session.close()
        self.clones += 1
        name = f"clone{self.clones}"
        try:
            self.sandbox.create_database(name, template=self.sandbox.dbname)
            clone = self.open(name)
            try:
                clone.base = base
                # A copy keeps every relation's oid and file (CREATE DATABASE copies the
                # files, or their blocks under the same numbers): no catalog read needed.
                clone.known = dict(base.rels)
                return work(clone)
            finally:
                clone.close()
        finally:
            try:
                self.sandbox.drop_database(name)
            except SandboxError:
                pass
            self.session = self.open(None)
            self.session.known = known


def load_setup(sandbox: Sandbox, path: str, config: Config) -> None:
    """Apply a psql-like script (``pg_dump --schema-only`` output) before the first migration,
    statement by statement in autocommit, on its own connection (pg_dump scripts change session
    settings such as search_path that must not leak into the migrations)."""
    from ..model import Migration as M

    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as exc:
        raise SandboxError(f"cannot read --setup {path}: {exc.strerror}") from None
    section = Section(path, text)
    migration = M(path, path, "file", None, path, section)
    replayer = _Replayer(sandbox, config)
    session = replayer.open()
    replayer.session = session
    try:
        unit = _unit(migration, section, sandbox.server_version_num)
        _results, error, _ms = session.run_unit(unit, observe=False)
        if error is not None:
            raise SandboxError(f"--setup {path}:{error.line}: {error.message}")
    finally:
        session.close()


def dry_run(
    discovery: DiscoveryResult,
    config: Config,
    *,
    sandbox: Sandbox,
    lint_result: LintResult | None = None,
    setup: str | None = None,
    from_index: int = 0,
    check_idempotency: bool = True,
    check_down: bool = True,
    on_progress: ProgressCallback | None = None,
    sample_rows: int = 0,
    measure_blocking: bool = False,
    inject_failures: bool = False,
    estimate_stats: dict[str, Any] | None = None,
    estimate_sizes: Sequence[int] | None = None,
    measure_sizes: bool | None = None,
) -> DryRunResult:
    """Replay ``discovery.migrations`` in order on ``sandbox`` and observe each statement.

    ``from_index=N`` treats the first N migrations as already applied: they are replayed
    without observation and reported ``applied`` with ``pre_applied: true``. A failing
    migration stops the replay; the ones after it are ``skipped``.

    ``sample_rows=N`` fills every empty table with N synthetic rows before each migration
    (``sampledata.fill``); ``measure_blocking`` probes reads and writes of the tables each
    statement locked (``blocking``). ``inject_failures`` interrupts each migration after each
    statement and retries it (``inject``); ``estimate_stats`` (production row counts, see
    ``estimate``) replays at ``estimate_sizes`` and extrapolates. Both run on clones before
    the replay, while the scratch database holds the state before the first migration.
    ``measure_sizes`` (default: with ``sample_rows``) reads every relation's size on disk
    before each migration and after each of its statements (before its checks, whose
    rolled-back writes can grow a table too) and reports the ones each statement and the
    migration changed (``StatementResult.sizes``, ``MigrationResult.sizes``).
    """
    from . import estimate as est
    from . import inject

    if setup:
        load_setup(sandbox, setup, config)
    injected = inject.inject_failures(sandbox, discovery.migrations, sample_rows=sample_rows,
                                      from_index=from_index) if inject_failures else {}
    measured = None
    if estimate_stats is not None:
        measured = est.measure(sandbox, discovery.migrations, from_index=from_index,
                               sizes=estimate_sizes or est.DEFAULT_SIZES)
    predictions: dict[tuple[str, int], StatementInfo] = {}
    findings_by_path: dict[str, list[Any]] = {}
    if lint_result is not None:
        predictions = {(s.path, s.span.line): s for s in lint_result.statements}
        for f in lint_result.findings:
            findings_by_path.setdefault(f.path, []).append(f)
    replayer = _Replayer(sandbox, config, measure_blocking=measure_blocking,
                         starts_empty=not setup and not from_index)
    if lint_result is not None:
        replayer.parsed = {p.section.path: p for p in lint_result.parsed}
    started = time.perf_counter()
    replayer.session = replayer.open()
    migrations = discovery.migrations
    total = len(migrations)
    results: list[MigrationResult] = []
    try:
        snap = replayer.session.snapshot()
        replayer.session.known = dict(snap.rels)
        replayer.session.warm()
        ready = time.perf_counter()
        failed = False
        sizes = bool(sample_rows) if measure_sizes is None else measure_sizes
        replayer.measure_sizes = sizes
        ahead = not sample_rows and not measure_blocking and not sizes
        built: _Unit | None = None  # this migration's unit, built by the one before
        for index, migration in enumerate(migrations):
            findings = tuple(findings_by_path.get(migration.path, ()))
            if failed:
                res = MigrationResult(migration.path, migration.sha256, "skipped",
                                      findings=findings)
                results.append(res)
                if on_progress:
                    on_progress(index, total, migration, res)
                continue
            if on_progress:
                on_progress(index, total, migration, None)
            if sample_rows and index >= from_index:
                filled = sampledata.fill(replayer.session.conn, sample_rows)
                replayer.notes.extend(filled.notes)
            if sizes and index >= from_index:
                replayer.sizes = replayer.sizes_now = replayer.session.relation_sizes()
            # The next file's message may go to the server while this one's results are
            # worked out (``_Session.send_ahead``) when nothing else must run in between: no
            # sample rows before the next. (The checks' reruns go first: ``_replay_one``.)
            next_unit = None
            if ahead and index + 1 < total and index >= from_index:
                following = migrations[index + 1]
                next_unit = _unit(following, following.section, replayer.server_version_num,
                                  replayer.parsed.get(following.path))
            res, snap = _replay_one(replayer, migration, snap, predictions,
                                    pre_applied=index < from_index,
                                    check_idempotency=check_idempotency,
                                    check_down=check_down, unit=built, next_unit=next_unit)
            built = next_unit
            res = sampledata.with_explanation(replace(res, findings=findings))
            if index in injected:
                res = replace(res, extras={**res.extras, "failure_injection": injected[index]})
            failed = res.status == "failed"
            results.append(res)
            if on_progress:
                on_progress(index, total, migration, res)
        replayed = time.perf_counter()
        digest = snap.digest()
    finally:
        if replayer.session is not None:
            replayer.session.close()
    result = DryRunResult(
        server=ServerInfo(sandbox.engine, sandbox.server_version,
                          tuple(sandbox.settings.items())),
        migrations=tuple(results),
        lint=lint_result,
        schema_sha256=digest,
        startup_ms=sandbox.startup_ms,
        setup_ms=(ready - started) * 1000,
        replay_ms=(replayed - ready) * 1000,
        notes=tuple(dict.fromkeys(replayer.notes)),
    )
    if measured is not None and estimate_stats is not None:
        basis = {"sizes": list(measured.sizes), "notes": measured.notes}
        result = est.attach(result, est.estimate(measured, estimate_stats), basis)
    return result


def _replay_one(replayer: _Replayer, migration: Migration, before: Snapshot,
                predictions: dict[tuple[str, int], StatementInfo], *, pre_applied: bool,
                check_idempotency: bool, check_down: bool, unit: _Unit | None = None,
                next_unit: _Unit | None = None) -> tuple[MigrationResult, Snapshot]:
    """``unit``: the migration's, if built already; ``next_unit``: the next migration's, whose
    message may be sent once this one's schema is known (``_Session.send_ahead``)."""
    session = replayer.session
    assert session is not None
    if unit is None:
        unit = _unit(migration, migration.section, replayer.server_version_num,
                     replayer.parsed.get(migration.path))
    replayer.notes.extend(unit.notes)
    for line, what in _session_settings(unit.statements):
        replayer.notes.append(
            f"{migration.path}:{line}: SET {what} lasts for the session: the migrations after "
            "it see it here, as they do when one deploy runs them all on one connection, but "
            "not when a deploy starts after this migration (or runs each file in a session "
            "of its own): qualify names, or SET it in each migration that needs it")
    # A copy: the observation updates ``known`` from pg_locks, and the snapshot must stay what
    # the catalog said, as the base of the next incremental snapshot.
    session.known = dict(before.rels)
    session.base = before
    session.start_touched()
    # With a check the next file waits for the check's rerun (``finish_rerun`` sends it
    # then); otherwise it may go as soon as this file's answers are in.
    down_follows = check_down and migration.down is not None
    checked = (check_idempotency or down_follows) and not pre_applied
    session.next_unit = None if checked else next_unit
    try:
        statements, error, duration = session.run_unit(unit, observe=not pre_applied,
                                                       predictions=predictions, defer=True)
    finally:
        session.next_unit = None
    changes = None
    if replayer.sizes is not None and replayer.sizes_now is not None and error is None and \
            not pre_applied and not session.in_transaction:
        # The reading after its last statement is the one after the migration: taken before
        # the checks, which write too, even in blocks that are rolled back. (Not for a file
        # that leaves its transaction open, as the reading before the next one is not.)
        changes = size_changes(replayer.sizes, replayer.sizes_now)
    replayer.sizes = replayer.sizes_now = None
    # The idempotency check's rerun goes now, if it can, and runs while this client builds
    # the snapshot and the statements' observation.
    rerun = check_idempotency and checked and error is None and unit.tx_safe and \
        session.rerun_ahead(unit)
    after = session.snapshot(before)
    session.rebase_inflight(after)
    if next_unit is not None and error is None and not checked:
        session.send_ahead(next_unit, after)  # unless it went already
    session.finish_unit()  # the statements' observation, while the server runs the next
    session.known = dict(after.rels)
    diff = catalog_diff(before, after)
    if error is not None:
        return MigrationResult(migration.path, migration.sha256, "failed", duration,
                               statements=tuple(statements), error=error, catalog=diff), after
    if pre_applied:
        return MigrationResult(migration.path, migration.sha256, "applied", duration,
                               catalog=diff, extras={"pre_applied": True}), after
    idempotent: bool | None = None
    idem_error: str | None = None
    if check_idempotency:
        idempotent, idem_error = _check_idempotency(replayer, unit, after, rerun,
                                                    None if down_follows else next_unit)
    down = DownResult()
    if down_follows:
        down = _check_down(replayer, unit, before, after, next_unit)
    return MigrationResult(migration.path, migration.sha256, "applied", duration, idempotent,
                           idem_error, down, tuple(statements), None, diff,
                           sizes=changes), after


def _run_checked(session: _Session, units: Sequence[_Unit], in_rollback: bool, base: Snapshot,
                 ) -> tuple[int, StatementError | None, Snapshot]:
    """Run units one after another (unobserved); stop at the first error. Returns
    (index of the failing unit or -1, its error, the schema afterwards). ``base`` is the
    snapshot of the state the units start from."""
    if in_rollback:
        session.execute_control("BEGIN")
        session.start_touched()
    try:
        for i, unit in enumerate(units):
            if in_rollback:
                # Inside our block: run the statements bare, a failure aborts the block.
                try:
                    for stmt in unit.statements:
                        session.run_statement(unit, stmt, observe=False)
                except _Failed as failed:
                    return i, failed.error, Snapshot({}, {})
            else:
                _results, error, _ms = session.run_unit(unit, observe=False)
                if error is not None:
                    return i, error, session.snapshot(base)
        if in_rollback:
            session.touch_held()
        return -1, None, session.snapshot(base)
    finally:
        if in_rollback:
            session.rollback_if_open()


def _check_idempotency(replayer: _Replayer, unit: _Unit, after: Snapshot,
                       sent: bool = False, next_unit: _Unit | None = None,
                       ) -> tuple[bool, str | None]:
    """``sent``: the rerun's message went already (``_Session.rerun_ahead``).
    ``next_unit``: the file that runs next, sent as soon as the rerun's answers are in (when
    the rerun goes as one message)."""
    def check(session: _Session) -> tuple[bool, str | None]:
        if sent:
            once = session.finish_rerun(after, next_unit)
        else:
            once = session.rerun_in_one_message(unit, after, next_unit=next_unit) \
                if unit.tx_safe else None
        if once is not None:
            error, snap = once.error, once.snapshot
        else:
            _failed_at, error, snap = _run_checked(session, [unit], in_rollback=unit.tx_safe,
                                                 base=after)
        if error is not None:
            return False, f"line {error.line}: {error.message}"
        diffs = schema_differences(after, snap)
        if diffs:
            return False, "the second run changed the schema: " + "; ".join(diffs[:10])
        return True, None

    assert replayer.session is not None
    if unit.tx_safe:
        return check(replayer.session)
    return replayer.on_clone(check, after)


def _check_down(replayer: _Replayer, up: _Unit, before: Snapshot, after: Snapshot,
                next_unit: _Unit | None = None) -> DownResult:
    """``next_unit``: the file that runs next, sent as soon as the check's answers are in
    (when it goes as one message)."""
    migration = up.migration
    assert migration.down is not None
    down_migration = replace(migration, path=migration.down.path, section=migration.down.section)
    down = _unit(down_migration, migration.down.section, replayer.server_version_num)
    replayer.notes.extend(down.notes)
    safe = up.tx_safe and down.tx_safe

    def check(session: _Session) -> DownResult:
        once = session.rerun_in_one_message(down, after, then=up, next_unit=next_unit) \
            if safe else None
        if once is not None:
            if once.error is not None:
                return DownResult("failed", error=once.error)
            diffs = schema_differences(before, once.snapshot)
            if once.then_error is not None:
                diffs.append(f"up fails after down: line {once.then_error.line}: "
                             f"{once.then_error.message}")
            return DownResult("applied", restores_schema=not diffs, differences=tuple(diffs))
        if safe:
            session.execute_control("BEGIN")
            session.start_touched()
        try:
            if safe:
                try:
                    for stmt in down.statements:
                        session.run_statement(down, stmt, observe=False)
                except _Failed as failed:
                    return DownResult("failed", error=failed.error)
            else:
                _r, error, _ms = session.run_unit(down, observe=False)
                if error is not None:
                    return DownResult("failed", error=error)
            if safe:
                session.touch_held()
            diffs = schema_differences(before, session.snapshot(after))
            # Up again: a down that leaves something behind often makes the next up fail.
            if safe:
                try:
                    for stmt in up.statements:
                        session.run_statement(up, stmt, observe=False)
                except _Failed as failed:
                    diffs.append(f"up fails after down: line {failed.error.line}: "
                                 f"{failed.error.message}")
            else:
                _r, error, _ms = session.run_unit(up, observe=False)
                if error is not None:
                    diffs.append(f"up fails after down: line {error.line}: {error.message}")
            return DownResult("applied", restores_schema=not diffs, differences=tuple(diffs))
        finally:
            if safe:
                session.rollback_if_open()

    assert replayer.session is not None
    if safe:
        return check(replayer.session)
    return replayer.on_clone(check, after)
