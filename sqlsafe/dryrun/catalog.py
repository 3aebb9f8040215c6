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
  "did it exist before" and "was it rewritten" bookkeeping.

Objects that belong to an extension (pg_depend deptype 'e') are left out: CREATE EXTENSION
citext would otherwise "create" dozens of functions the migration never names.
"""

from __future__ import annotations

# Schemas PostgreSQL owns; pg_toast_temp_N / pg_temp_N are per-session.
_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
)


def _not_ext(catalog: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass "
        f"AND d.objid = {oid} AND d.deptype = 'e')"
    )


# (oid, relfilenode, relkind, qualified name, mode), one row per held relation lock.
# LEFT JOIN: a relation the transaction dropped has no pg_class row any more but its lock is
# still held (relfilenode, relkind and name come back NULL; the replay names it from before).
LOCKS = f"""
SELECT l.relation, c.relfilenode, c.relkind, n.nspname || '.' || c.relname, l.mode
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
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

# Rows: (kind, name, detail, oid, relfilenode, relkind). oid/relfilenode/relkind are only set
# for relations. Definitions come from the server's own deparsers (pg_get_indexdef,
# pg_get_constraintdef, pg_get_viewdef, pg_get_expr) so "altered" means PostgreSQL sees a
# different definition, not that the text of a migration differs.
SCHEMA = f"""
SELECT 'schema', n.nspname, '', NULL::oid, NULL::oid, NULL::"char"
FROM pg_namespace n
WHERE {_USER_NS} AND n.nspname <> 'public' AND {_not_ext('pg_namespace', 'n.oid')}
UNION ALL
SELECT 'relation', n.nspname || '.' || c.relname,
       concat_ws('|', c.relkind, c.relpersistence, c.reloptions::text, c.relrowsecurity,
                 c.relforcerowsecurity, c.relispartition, c.reltablespace,
                 CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END,
                 CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                 CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                 (SELECT i.indisclustered::text || i.indisvalid::text FROM pg_index i
                  WHERE i.indexrelid = c.oid),
                 (SELECT string_agg(h.inhparent::regclass::text, ',') FROM pg_inherits h
                  WHERE h.inhrelid = c.oid)),
       c.oid, c.relfilenode, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND c.relkind IN ('r', 'p', 'i', 'I', 'm', 'S', 'v', 'f')
  AND {_not_ext('pg_class', 'c.oid')}
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
       concat_ws('|', format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                 a.attgenerated, a.attcollation, a.attstattarget,
                 pg_get_expr(ad.adbin, ad.adrelid)),
       NULL, NULL, NULL
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE {_USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
  AND NOT a.attisdropped AND {_not_ext('pg_class', 'c.oid')}
UNION ALL
SELECT 'constraint', n.nspname || '.' || coalesce(c.relname, t.typname) || '.' || k.conname,
       concat_ws('|', pg_get_constraintdef(k.oid), k.convalidated, k.condeferrable,
                 k.condeferred),
       NULL, NULL, NULL
FROM pg_constraint k
JOIN pg_namespace n ON n.oid = k.connamespace
LEFT JOIN pg_class c ON c.oid = k.conrelid
LEFT JOIN pg_type t ON t.oid = k.contypid
WHERE {_USER_NS} AND (c.oid IS NOT NULL OR t.oid IS NOT NULL)
  AND {_not_ext('pg_constraint', 'k.oid')}
UNION ALL
SELECT 'type', n.nspname || '.' || t.typname,
       concat_ws('|', t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                 (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                  FROM pg_enum e WHERE e.enumtypid = t.oid)),
       NULL, NULL, NULL
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE {_USER_NS} AND t.typtype IN ('e', 'd', 'r', 'm', 'c')
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {_not_ext('pg_type', 't.oid')}
UNION ALL
SELECT 'function', n.nspname || '.' || p.proname || '('
       || pg_get_function_identity_arguments(p.oid) || ')',
       concat_ws('|', p.prokind, md5(p.prosrc), p.provolatile, p.prosecdef, p.proconfig::text,
                 pg_get_function_result(p.oid)),
       NULL, NULL, NULL
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER_NS} AND {_not_ext('pg_proc', 'p.oid')}
UNION ALL
SELECT 'trigger', n.nspname || '.' || c.relname || '.' || g.tgname,
       concat_ws('|', pg_get_triggerdef(g.oid), g.tgenabled), NULL, NULL, NULL
FROM pg_trigger g
JOIN pg_class c ON c.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS} AND NOT g.tgisinternal
UNION ALL
SELECT 'policy', n.nspname || '.' || c.relname || '.' || p.polname,
       concat_ws('|', p.polcmd, p.polpermissive, pg_get_expr(p.polqual, p.polrelid),
                 pg_get_expr(p.polwithcheck, p.polrelid)),
       NULL, NULL, NULL
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_NS}
UNION ALL
SELECT 'extension', e.extname, e.extversion, NULL, NULL, NULL
FROM pg_extension e WHERE e.extname <> 'plpgsql'
"""

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
