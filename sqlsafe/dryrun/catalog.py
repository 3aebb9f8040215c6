"""Every catalog query the dry run sends, by name (STYLE item 9).

The replay observes with three kinds of query:

- ``LOCKS``: the relation locks the migration's own session holds right now, with each locked
  relation's current relfilenode (so one round trip after a statement gives both the new locks
  and the rewrites of the relations it locked: PostgreSQL only assigns a new relfilenode under a
  lock — ACCESS EXCLUSIVE for ALTER TABLE rewrites, VACUUM FULL, CLUSTER, TRUNCATE, REFRESH, and
  for REINDEX the index's lock).
- ``LOCKS_OF_PID``: the same for another backend, polled by the observer thread while a statement
  that cannot run in a transaction block (CREATE INDEX CONCURRENTLY ...) runs.
- ``SCHEMA``: one row per user object (schema, relation, column, constraint, index, type,
  function, trigger, policy, extension) with a text ``detail`` that changes when the object is
  altered; two snapshots give the catalog diff, the idempotency and down checks. The relation
  rows carry oid, relfilenode and relkind, so the same snapshot seeds the per-statement
  "did it exist before" and "was it rewritten" bookkeeping. ``SCHEMA_LOCKED`` (after
  observed statements) and ``SCHEMA_FINGERPRINT`` + ``SCHEMA_OF`` (after anything else) give
  the same rows incrementally (see there).

Objects that belong to an extension (pg_depend deptype 'e') are left out: CREATE EXTENSION
citext would otherwise "create" dozens of functions the migration never names.
"""

from __future__ import annotations

# Schemas PostgreSQL owns; pg_toast_temp_N / pg_temp_N are per-session. (A prefix by
# ``left`` rather than a regular expression: the test runs once per row of every part, and a
# regular expression match cost the dry run more than the rest of the filter.)
_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND left(n.nspname, 8) NOT IN ('pg_toast', 'pg_temp_')"
)


# Extension members: one scan of pg_depend per query, as a CTE (referenced several times, so
# materialized), then a hashed NOT IN per part. A correlated NOT EXISTS per row let the
# planner, with the few statistics a fresh database has on pg_depend, rescan all of a
# catalog's pg_depend rows for every row (18 ms for 344 constraints).
# Members depend on their extension (refclassid pg_extension): that prefix of pg_depend's
# reference index finds them without reading the whole catalog.
_EXT_CTE = ("ext AS (SELECT classid, objid FROM pg_depend "
            "WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e')")


def _not_ext(catalog: str, oid: str) -> str:
    return f"{oid} NOT IN (SELECT objid FROM ext WHERE classid = '{catalog}'::regclass)"


# (oid, relfilenode, relkind, qualified name, mode), one row per held relation lock.
# LEFT JOIN: a relation the transaction dropped has no pg_class row any more but its lock is
# still held (relfilenode, relkind and name come back NULL; the replay names it from before).
# No test of the database: a backend locks relations of its own database only, besides the
# shared catalogs (database 0), whose oids are below 16384. (Looking the database up by name
# was a sixth of the query's time, after every statement.)
LOCKS = f"""
SELECT l.relation, c.relfilenode, c.relkind, n.nspname || '.' || c.relname, l.mode
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND l.granted
  AND l.relation >= 16384
  AND (c.oid IS NULL OR ({_USER_NS}))
"""

# The same for the backend given as the parameter (the observer thread's query), with
# ``granted`` as the sixth column: a lock the backend waits for shows the mode it needs. The
# observer is connected to the same database, so pg_class resolves the oids.
LOCKS_OF_PID = f"""
SELECT l.relation, c.relfilenode, c.relkind, n.nspname || '.' || c.relname, l.mode, l.granted
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.pid = %s
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND {_USER_NS}
"""

# The current names of relations given by oid (after a statement that moved relations it did
# not lock: ``replay._moves_unlocked``).
RELATION_NAMES = """
SELECT c.oid, n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY(%s)
"""

# The on-disk size of every user relation with storage (``dry_run(measure_sizes=True)``), read
# before each migration and after each of its statements: (oid, qualified name, relkind,
# bytes). ``pg_table_size``: the relation's forks and its TOAST table, without its indexes,
# which are relations of their own here, so a sum over the rows counts each byte once. It takes
# and releases ACCESS SHARE on each relation (after a statement, inside the migration's own
# transaction, whose locks do not conflict with it); NULL for a relation dropped meanwhile.
RELATION_SIZES = f"""
SELECT c.oid, n.nspname || '.' || c.relname, c.relkind, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND c.relkind IN ('r', 'i', 'm', 'S') AND c.oid >= 16384
"""

# The same for the relations given by oid (parameter ``oids``) and their indexes: after a
# statement whose locks were read, only those can have changed size. PostgreSQL writes a
# table's files (its TOAST table's too) only under a lock on the table, held to the end of
# the transaction; an index is written under a lock of its own, which an INSERT releases
# when the statement ends, so the indexes come from pg_index instead.
RELATION_SIZES_OF = RELATION_SIZES + """  AND c.oid = ANY(ARRAY(
    SELECT unnest(%(oids)s::oid[])
    UNION SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%(oids)s)))
"""

# The watcher's hold: a transaction with a snapshot, and SHARE UPDATE EXCLUSIVE on the tables
# the statement is expected to lock, so a statement that needs a conflicting lock (or, like
# CREATE INDEX CONCURRENTLY, waits for older snapshots) waits where the watcher can see it.
WATCH_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ"
WATCH_SNAPSHOT = "SELECT 1"
WATCH_HOLD = "LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE NOWAIT"

BACKEND_PID = "SELECT pg_backend_pid()"

# Whether the backend waits for any lock (relation, virtualxid, transactionid ...).
WAITING = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)"

AVAILABLE_EXTENSIONS = "SELECT name FROM pg_available_extensions"

# The parts of ``_schema`` that hold a relation's own rows and those of its sub-objects.
_RELATION_PARTS = ("relation", "column", "constraint", "trigger", "policy")

# Rows: (kind, name, detail, oid, relfilenode, relkind, owner). oid/relfilenode/relkind are
# only set for relations. ``owner`` says which incremental unit a row belongs to: 'c<oid>' for
# a relation and its columns, constraints, triggers and policies, 't<oid>' for a type and its
# domain constraints, NULL for the small global parts (schemas, functions, extensions) that
# every snapshot recomputes. Definitions come from the server's own deparsers (pg_get_indexdef,
# pg_get_constraintdef, pg_get_viewdef, pg_get_expr) so "altered" means PostgreSQL sees a
# different definition, not that the text of a migration differs.
def _schema(rel_filter: str, type_filter: str, global_filter: str = "TRUE", *,
            own_rel_filter: str | None = None, relations_only: bool = False,
            since: str | None = None) -> str:
    # The filters are templates: ``{}`` becomes the column that holds the owning relation's
    # (or type's) oid in each part, so an owner filter can be an index key of that catalog.
    # ``global_filter`` gates the global parts (schemas, functions, extensions) as a whole.
    # ``own_rel_filter``: the relation and column parts' filter instead, over owners that are
    # known to belong to no extension (``_NOT_MEMBER``), so those parts need no test of their
    # own. ``relations_only``: the relation parts alone, without the types and global parts.
    # ``since``: a scalar expression, the age() of the horizon of the snapshot before (see
    # SCHEMA_HELD); a column or constraint row no newer than that gets NULL for its text.
    not_ext = _not_ext
    members = not_ext("pg_class", "c.oid")
    own = rel_filter
    if own_rel_filter is not None:
        members, own = "TRUE", own_rel_filter
    # (A constraint is never an extension's member itself: PostgreSQL records membership for
    # the objects an extension script creates at the top level, a table but not its
    # constraints. The test by its own oid finds nothing, and goes with ``own_rel_filter``.)
    con_members = "TRUE" if own_rel_filter is not None else not_ext("pg_constraint", "k.oid")
    column_text = """concat_ws('|', format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                 a.attgenerated, a.attcollation, a.attstattarget,
                 pg_get_expr(ad.adbin, ad.adrelid))"""
    constraint_text = """concat_ws('|', pg_get_constraintdef(k.oid), k.convalidated, k.condeferrable,
                 k.condeferred)"""
    table_constraint_text = constraint_text
    if since is not None:
        # A default is a row of its own (pg_attrdef; PostgreSQL also updates the column's
        # row when it adds or drops one, but the text does not rely on that). Two constraints
        # of one table sharing a name (the caller keeps the greater text; PostgreSQL 15 and
        # 18 refuse it, older versions took it) are always deparsed.
        column_text = (f"CASE WHEN age(a.xmin) <= {since} OR age(ad.xmin) <= {since} "
                       f"THEN {column_text} END")
        table_constraint_text = (
            f"CASE WHEN age(k.xmin) <= {since} OR EXISTS ("
            "SELECT 1 FROM pg_constraint d WHERE d.conrelid = k.conrelid AND d.contypid = 0 "
            f"AND d.conname = k.conname AND d.oid <> k.oid) THEN {constraint_text} END")

    def after_initdb(oid: str, owner_filter: str) -> str:
        # ``oid >= 16384`` skips the built-in rows by the catalog's oid index. Under an owner
        # filter it says nothing more (every sub-object of a user relation or type was made
        # after initdb) and would make the planner walk that oid index over every user
        # constraint or trigger, filtering on the owner: a cost that grows with the schema,
        # paid after every migration. Without it the owner's own index is used.
        return "TRUE" if "{}" in owner_filter else f"{oid} >= 16384"

    # ``::text``: the first part's column types are the union's, and ``name`` would cut every
    # qualified name after it at 63 bytes ("public.long_table.long_column").
    parts = {
        "schema": f"""
SELECT 'schema', n.nspname::text, '', NULL::oid, NULL::oid, NULL::"char", NULL::text
FROM pg_namespace n
WHERE {_USER_NS} AND n.nspname <> 'public' AND n.oid >= 16384
  AND {not_ext('pg_namespace', 'n.oid')} AND {global_filter}
""",
        "relation": f"""
SELECT 'relation', n.nspname || '.' || c.relname,
       concat_ws('|', c.relkind, c.relpersistence, c.reloptions::text, c.relrowsecurity,
                 c.relforcerowsecurity, c.relispartition, c.reltablespace,
                 CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END,
                 CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                 CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                 CASE WHEN c.relkind IN ('i', 'I') THEN
                   (SELECT i.indisclustered::text || i.indisvalid::text FROM pg_index i
                    WHERE i.indexrelid = c.oid) END,
                 (SELECT string_agg(h.inhparent::regclass::text, ',') FROM pg_inherits h
                  WHERE h.inhrelid = c.oid)),
       c.oid, c.relfilenode, c.relkind, 'c' || c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND c.relkind IN ('r', 'p', 'i', 'I', 'm', 'S', 'v', 'f') AND c.oid >= 16384
  AND {members} AND {own.format('c.oid')}
""",
        "column": f"""
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
       {column_text},
       NULL, NULL, NULL, 'c' || c.oid
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE {_USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
  AND c.oid >= 16384 AND {after_initdb('a.attrelid', own)}
  AND NOT a.attisdropped AND {members}
  -- On c.oid, not a.attrelid: then each dirty relation's columns are an index scan of
  -- pg_attribute by c.oid; filtered on a.attrelid the generic plan rescanned the dirty
  -- relations per column row (6 ms for 173 columns instead of 2).
  AND {own.format('c.oid')}
""",
        "constraint": f"""
SELECT 'constraint', n.nspname || '.' || c.relname || '.' || k.conname,
       {table_constraint_text},
       NULL, NULL, NULL, 'c' || c.oid
FROM pg_constraint k
JOIN pg_namespace n ON n.oid = k.connamespace
JOIN pg_class c ON c.oid = k.conrelid
WHERE {_USER_NS} AND {after_initdb('k.oid', rel_filter)} AND {con_members}
  AND {rel_filter.format('c.oid')} AND {rel_filter.format('k.conrelid')}
""",
        "domain_constraint": f"""
SELECT 'constraint', n.nspname || '.' || t.typname || '.' || k.conname,
       {constraint_text},
       NULL, NULL, NULL, 't' || t.oid
FROM pg_constraint k
JOIN pg_namespace n ON n.oid = k.connamespace
JOIN pg_type t ON t.oid = k.contypid
WHERE {_USER_NS} AND {after_initdb('k.oid', type_filter)} AND k.conrelid = 0
  AND k.contypid >= 16384
  AND {not_ext('pg_constraint', 'k.oid')} AND {type_filter.format('k.contypid')}
""",
        "type": f"""
SELECT 'type', n.nspname || '.' || t.typname,
       concat_ws('|', t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                 (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                  FROM pg_enum e WHERE e.enumtypid = t.oid)),
       NULL, NULL, NULL, 't' || t.oid
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE {_USER_NS} AND t.typtype IN ('e', 'd', 'r', 'm', 'c') AND t.oid >= 16384
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {not_ext('pg_type', 't.oid')} AND {type_filter.format('t.oid')}
""",
        "function": f"""
SELECT 'function', n.nspname || '.' || p.proname || '('
       || pg_get_function_identity_arguments(p.oid) || ')',
       concat_ws('|', p.prokind, md5(p.prosrc), p.provolatile, p.prosecdef, p.proconfig::text,
                 pg_get_function_result(p.oid)),
       NULL, NULL, NULL, NULL
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER_NS} AND p.oid >= 16384 AND {not_ext('pg_proc', 'p.oid')} AND {global_filter}
""",
        "trigger": f"""
SELECT 'trigger', n.nspname || '.' || c.relname || '.' || g.tgname,
       concat_ws('|', pg_get_triggerdef(g.oid), g.tgenabled), NULL, NULL, NULL, 'c' || c.oid
FROM pg_trigger g
JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND NOT g.tgisinternal AND {after_initdb('g.oid', rel_filter)}
  AND {rel_filter.format('c.oid')} AND {rel_filter.format('g.tgrelid')}
""",
        "policy": f"""
SELECT 'policy', n.nspname || '.' || c.relname || '.' || p.polname,
       concat_ws('|', p.polcmd, p.polpermissive, pg_get_expr(p.polqual, p.polrelid),
                 pg_get_expr(p.polwithcheck, p.polrelid)),
       NULL, NULL, NULL, 'c' || c.oid
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND {rel_filter.format('c.oid')} AND {rel_filter.format('p.polrelid')}
""",
        "extension": f"""
SELECT 'extension', e.extname, e.extversion, NULL, NULL, NULL, NULL
FROM pg_extension e WHERE e.extname <> 'plpgsql' AND {global_filter}
""",
    }
    if relations_only:
        parts = {k: v for k, v in parts.items() if k in _RELATION_PARTS}
    return "UNION ALL\n".join(parts.values())

# (The ``oid >= 16384`` conditions are FirstNormalObjectId: every object in a user schema was
# created after initdb, and OIDs wrap around to that value, never below. They let the planner
# skip the thousands of built-in functions, types and constraints by index.)


SCHEMA = f"WITH {_EXT_CTE}" + _schema("TRUE", "TRUE")

# Incremental snapshots (``SCHEMA_FINGERPRINT`` + ``SCHEMA_OF``): deparsing every relation,
# column and constraint after every migration was half of the dry run, though a migration
# touches a few tables. A catalog row that is inserted or updated gets the writing
# transaction's xid as xmin; a deleted one disappears. So per owning object (a relation with
# its columns, defaults, constraints, index, inheritance, triggers, policies and rewrite rules;
# a type with its enum labels and domain constraints; a function, schema, extension,
# collation, operator, operator class), (row count, sum of xmin, index state) is a fingerprint:
# between two snapshots of one linear history every row that differs on the newer side was
# written by a later transaction than any row that differs on the older side, so with an equal
# count the sum strictly grows. In-place updates (VACUUM's relpages, some index state flags)
# keep xmin; the one such field the snapshot shows (pg_index state) is in the fingerprint.
# Only objects with oid >= 16384 (FirstNormalObjectId: created after initdb) and every schema.
# Rows: (classid, objid, count, sum of xmin, index state).
SCHEMA_FINGERPRINT = """
WITH r(classid, objid, x, st) AS (
  SELECT 'pg_class'::regclass::oid, oid, xmin, 0 FROM pg_class WHERE oid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, attrelid, xmin, 0 FROM pg_attribute
    WHERE attrelid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, adrelid, xmin, 0 FROM pg_attrdef
    WHERE adrelid >= 16384
  UNION ALL SELECT CASE WHEN conrelid <> 0 THEN 'pg_class'::regclass::oid
                        ELSE 'pg_type'::regclass::oid END,
                   CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END, xmin, 0
    FROM pg_constraint WHERE oid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, indexrelid, xmin,
                   indisvalid::int + 2 * indisready::int + 4 * indislive::int
                   + 8 * indisclustered::int
    FROM pg_index WHERE indexrelid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, inhrelid, xmin, 0 FROM pg_inherits
    WHERE inhrelid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, tgrelid, xmin, 0 FROM pg_trigger
    WHERE oid >= 16384
  UNION ALL SELECT 'pg_class'::regclass::oid, polrelid, xmin, 0 FROM pg_policy
  UNION ALL SELECT 'pg_class'::regclass::oid, ev_class, xmin, 0 FROM pg_rewrite
    WHERE oid >= 16384
  UNION ALL SELECT 'pg_type'::regclass::oid, oid, xmin, 0 FROM pg_type WHERE oid >= 16384
  UNION ALL SELECT 'pg_type'::regclass::oid, enumtypid, xmin, 0 FROM pg_enum
    WHERE enumtypid >= 16384
  UNION ALL SELECT 'pg_proc'::regclass::oid, oid, xmin, 0 FROM pg_proc WHERE oid >= 16384
  UNION ALL SELECT 'pg_namespace'::regclass::oid, oid, xmin, 0 FROM pg_namespace
  UNION ALL SELECT 'pg_extension'::regclass::oid, oid, xmin, 0 FROM pg_extension
  UNION ALL SELECT 'pg_collation'::regclass::oid, oid, xmin, 0 FROM pg_collation
    WHERE oid >= 16384
  UNION ALL SELECT 'pg_operator'::regclass::oid, oid, xmin, 0 FROM pg_operator
    WHERE oid >= 16384
  UNION ALL SELECT 'pg_opclass'::regclass::oid, oid, xmin, 0 FROM pg_opclass
    WHERE oid >= 16384
  -- Extension membership decides whether an object is shown at all.
  UNION ALL SELECT classid, objid, xmin, 0 FROM pg_depend WHERE deptype = 'e'
    AND objid >= 16384
)
SELECT classid, objid, count(*), sum(x::text::bigint)::bigint, sum(st)::bigint
FROM r GROUP BY classid, objid
"""

# The owner filters of SCHEMA_OF / SCHEMA_OWN, on each part's own owner column (``_schema``).
# ``= ANY(ARRAY(...))`` rather than ``c.oid IN (SELECT ...)``: the array is an InitPlan the
# planner uses as an index key, so each part reads only the dirty owners' rows; with ``IN``
# over the materialized CTE it scanned every user relation (and its namespace) and
# semi-joined afterwards (1.4 of 2.1 ms for one table).
_IN_RELS = "{} = ANY(ARRAY(SELECT objid FROM rels))"
_IN_TYPES = "{} = ANY(ARRAY(SELECT objid FROM types))"

# The objects whose rows must be recomputed: the changed ones (parameters: classids, objids)
# and, transitively through pg_depend, everything whose deparsed text can name them (a view
# or index on a renamed column, a foreign key to a renamed table, a column of a renamed type,
# everything in a renamed schema). The walk follows pg_depend object by object (a primary
# key's index depends on the constraint, not on the table) and maps sub-objects to their
# owner at the end.
_DIRTY = f"""
WITH RECURSIVE {_EXT_CTE}, sub(classid, objid, oclass, oobj) AS (
  SELECT 'pg_constraint'::regclass::oid, oid,
         CASE WHEN conrelid <> 0 THEN 'pg_class'::regclass::oid ELSE 'pg_type'::regclass::oid END,
         CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END
  FROM pg_constraint WHERE oid >= 16384
  UNION ALL SELECT 'pg_rewrite'::regclass::oid, oid, 'pg_class'::regclass::oid, ev_class
    FROM pg_rewrite WHERE oid >= 16384
  UNION ALL SELECT 'pg_attrdef'::regclass::oid, oid, 'pg_class'::regclass::oid, adrelid
    FROM pg_attrdef WHERE oid >= 16384
  UNION ALL SELECT 'pg_trigger'::regclass::oid, oid, 'pg_class'::regclass::oid, tgrelid
    FROM pg_trigger WHERE oid >= 16384
  UNION ALL SELECT 'pg_policy'::regclass::oid, oid, 'pg_class'::regclass::oid, polrelid
    FROM pg_policy
), walk(classid, objid) AS (
  SELECT * FROM unnest($1::oid[], $2::oid[])
  UNION
  SELECT d.classid, d.objid
  FROM walk x
  JOIN pg_depend d ON d.refclassid = x.classid AND d.refobjid = x.objid
), dirty(classid, objid) AS (
  SELECT DISTINCT coalesce(s.oclass, w.classid), coalesce(s.oobj, w.objid)
  FROM walk w LEFT JOIN sub s ON s.classid = w.classid AND s.objid = w.objid
), rels AS (
  SELECT objid FROM dirty WHERE classid = 'pg_class'::regclass::oid
), types AS (
  SELECT objid FROM dirty WHERE classid = 'pg_type'::regclass::oid
)
"""

# The SCHEMA rows of the dirty relations and types plus the global parts, then one row
# ('owner', ...) per dirty relation or type so the caller knows which old rows to replace
# (a dirty object may have no rows any more).
SCHEMA_OF = (
    _DIRTY
    + _schema(_IN_RELS, _IN_TYPES)
    + """UNION ALL
SELECT 'owner', '', '', NULL, NULL, NULL, 'c' || objid FROM rels
UNION ALL
SELECT 'owner', '', '', NULL, NULL, NULL, 't' || objid FROM types
"""
)

# The same rows for exactly the given owners (parameters: classids, objids, as the fingerprint
# names them), without following pg_depend: most migrations rename nothing, and then no other
# object's text can have changed (see ``_Session.snapshot``), so the walk above is wasted.
SCHEMA_OWN = (
    f"""
WITH {_EXT_CTE}, dirty(classid, objid) AS (
  SELECT * FROM unnest($1::oid[], $2::oid[])
), rels AS (
  SELECT objid FROM dirty WHERE classid = 'pg_class'::regclass::oid
), types AS (
  SELECT objid FROM dirty WHERE classid = 'pg_type'::regclass::oid
)
"""
    + _schema(_IN_RELS, _IN_TYPES)
    + """UNION ALL
SELECT 'owner', '', '', NULL, NULL, NULL, 'c' || objid FROM rels
UNION ALL
SELECT 'owner', '', '', NULL, NULL, NULL, 't' || objid FROM types
"""
)

# The rows after a migration whose every statement was observed (``_Session.snapshot``):
# PostgreSQL changes a relation's catalog rows (its columns, defaults, constraints, indexes,
# triggers, policies, rules, storage) only under a lock on that relation, held until the
# transaction ends, and the lock query after each statement already names those relations. So
# the relations to read again are known without the fingerprint (parameter: their oids), and
# only the parts no relation lock covers are read whole: the global parts and every type (a
# handful of rows; CREATE TYPE and ALTER TYPE ... ADD VALUE take no relation lock). Each only
# when its fingerprint (row count and xmin sum, as SCHEMA_FINGERPRINT's) differs from the
# previous one (parameters 2 and 3, NULL: unknown): for the types, over the enum, domain,
# range and multirange types, enum labels and domain constraints (a composite type's changes
# lock its relation, which the replay sees); for the globals, over schemas, functions and
# extensions. The last two rows, ('typefp' | 'globalfp', '', fingerprint, ..., 'read' or
# NULL), give the new fingerprints and whether those parts were read (SCHEMA_HELD_LEAN:
# 'unread', changed but left out).
def _gate(fp: str, read: str, param: int, xmins: str) -> str:
    """Two CTEs: ``fp(v)``, the row count and xmin sum of the ``xmins`` rows, and
    ``read(yes)``, whether that differs from the fingerprint given as parameter ``param``."""
    return f"""
{fp}(v) AS (
  SELECT count(*) || ':' || coalesce(sum(x::text::bigint), 0) FROM ({xmins}) s
), {read}(yes) AS (SELECT (SELECT v FROM {fp}) IS DISTINCT FROM ${param}::text)"""


_PART_FINGERPRINTS = (
    _gate("tfp", "retype", 2, """
    SELECT xmin AS x FROM pg_type WHERE oid >= 16384 AND typtype IN ('e', 'd', 'r', 'm')
    UNION ALL SELECT xmin FROM pg_enum WHERE enumtypid >= 16384
    UNION ALL SELECT xmin FROM pg_constraint WHERE contypid >= 16384""")
    + ","
    + _gate("gfp", "reglobal", 3, """
    SELECT xmin AS x FROM pg_namespace
    UNION ALL SELECT xmin FROM pg_proc WHERE oid >= 16384
    UNION ALL SELECT xmin FROM pg_extension""")
)
# Lock modes of reads and DML: no catalog row of the relation changes under them.
DML_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock")


def _schema_locked(rels: str, ctes: str = "", first: str = "", lean: bool = False,
                   gated: bool = False) -> str:
    if gated:
        ctes += "horizon(h) AS (SELECT coalesce(age($4::xid), 2147483647)), "
    since = "(SELECT h FROM horizon)" if gated else None
    if lean:
        head = f"{ctes}rels(objid) AS ({rels}), own(objid) AS ({_NOT_MEMBER}), "
        body = _schema(_IN_RELS, "FALSE", "FALSE", own_rel_filter=_IN_OWN,
                       relations_only=True, since=since)
    else:
        head = f"{_EXT_CTE}, {ctes}rels(objid) AS ({rels}), "
        body = _schema(_IN_RELS, "(SELECT yes FROM retype)", "(SELECT yes FROM reglobal)",
                       since=since)
    return (f"\nWITH {head}{_PART_FINGERPRINTS}\n{first}" + body
            + _LOCKED_TAIL.format(changed="unread" if lean else "read"))


# The owner rows, then the fingerprint rows; ``changed``: what the last column says of parts
# whose fingerprint changed. The type fingerprint's row carries the read's horizon as its
# name: the transaction id from which on a catalog row was written after this read (the
# reading transaction's own plus one, or the next one to be assigned), for the next
# SCHEMA_HELD to tell which rows it can take from this snapshot (epoch dropped: an xid).
_LOCKED_TAIL = """UNION ALL
SELECT 'owner', '', '', NULL, NULL, NULL, 'c' || objid FROM rels
UNION ALL
SELECT 'typefp',
       (coalesce(txid_current_if_assigned() + 1, txid_snapshot_xmax(txid_current_snapshot()))
        % 4294967296)::text,
       (SELECT v FROM tfp), NULL, NULL, NULL,
       CASE WHEN (SELECT yes FROM retype) THEN '{changed}' END
UNION ALL
SELECT 'globalfp', '', (SELECT v FROM gfp), NULL, NULL, NULL,
       CASE WHEN (SELECT yes FROM reglobal) THEN '{changed}' END
"""

# The relations of ``rels`` that belong to no extension, each by a probe of pg_depend's
# depender index: for a few owners cheaper than the ``ext`` CTE, one scan of every
# extension's members that each part then tests its rows against.
_NOT_MEMBER = """SELECT objid FROM rels r WHERE NOT EXISTS (
    SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = r.objid
      AND d.deptype = 'e')"""
_IN_OWN = "{} = ANY(ARRAY(SELECT objid FROM own))"


SCHEMA_LOCKED = _schema_locked("SELECT unnest($1::oid[])")

# The same with the relations read from the session's own locks when it runs (parameter 1 is
# not used): what the lock query after each statement names, less the modes that change no
# catalog row and the TOAST tables (``replay._Session._touch``). Parameter 4 is the horizon of
# the snapshot before (``replay.Snapshot.horizon``): a column or constraint row of a touched
# relation not written since comes back with NULL for its text, which the replay takes from
# that snapshot, so only what the migration wrote is deparsed again. Run in a migration's
# transaction before its COMMIT, it needs nothing from the client, so it goes in the message
# that runs the migration's statements; and it stands in for the lock query after the last
# statement: its first rows are LOCKS's, as ('lock', name, mode, oid, relfilenode, relkind,
# NULL). (The parts of a UNION ALL run in order: the locks are read before any of the
# snapshot's parts runs.)
_HELD_RELS = f"""SELECT DISTINCT relation FROM held
  WHERE mode NOT IN ({", ".join(f"'{m}'" for m in DML_MODES)})
    AND relkind IS DISTINCT FROM 't'"""
_HELD_CTE = f"held(relation, relfilenode, relkind, name, mode) AS ({LOCKS}), "
_HELD_FIRST = """SELECT 'lock', name, mode, relation, relfilenode, relkind, NULL::text FROM held
UNION ALL"""
SCHEMA_HELD = _schema_locked(_HELD_RELS, ctes=_HELD_CTE, first=_HELD_FIRST, gated=True)

# SCHEMA_HELD without the types and global parts, for a migration that is not expected to
# change them (``replay._lean_will_do``): about a quarter of the read's cost, after nearly
# every migration. Their fingerprints are still taken; when one changed after all, its row
# says 'unread' instead of 'read', and the replay reads those parts in a query of their own
# (SCHEMA_LOCKED for no relation) before the next migration runs. The relation and column
# parts test the relations' membership of an extension once (``_NOT_MEMBER``), not per row.
SCHEMA_HELD_LEAN = _schema_locked(_HELD_RELS, ctes=_HELD_CTE, first=_HELD_FIRST, lean=True,
                                  gated=True)

# Readable kinds for relation rows (pg_class.relkind).
RELKIND_NAMES = {
    "r": "table",
    "p": "partitioned table",
    "i": "index",
    "I": "partitioned index",
    "m": "materialized view",
    "S": "sequence",
    "v": "view",
    "f": "foreign table",
}
