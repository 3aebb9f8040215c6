"""Checks the report runs against the dry-run database, inside the sandbox's lifetime.

- ``run_queries``: the verification queries of ``plan.verification_queries``, each run on the
  database the migrations were replayed into; the observed value goes next to the expected one.
- ``check_backout``: rebuild the schema the set started from (setup + migrations before
  ``--from``) in one scratch database, copy the migrated database into another, run the
  generated rollback there, and compare the two schemas.

psycopg is imported here only; callers hold a ``Sandbox`` (``sqlsafe.dryrun.sandbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..model import DiscoveryResult
from .model import BackoutCheck, BackoutStep, VerifyQuery

if TYPE_CHECKING:
    import psycopg

    from ..dryrun.sandbox import Sandbox

# One named query per part of the schema; the snapshot is a set of lines, so two snapshots
# compare line by line and the differences read as "missing"/"extra" objects. OIDs never
# appear: they differ between databases holding the same schema.
_USER_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
                 "AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'")
SCHEMA_QUERIES: dict[str, str] = {
    "relation": f"""
        SELECT n.nspname || '.' || c.relname || ' (' || c.relkind::text || ')'
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "column": f"""
        SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' '
               || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "index": f"""
        SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_SCHEMAS}""",
    "constraint": f"""
        SELECT n.nspname || '.' || cl.relname || ' ' || co.conname || ' '
               || pg_get_constraintdef(co.oid)
               || CASE WHEN co.convalidated THEN '' ELSE ' NOT VALID' END
        FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE {_USER_SCHEMAS}""",
    "type": f"""
        SELECT n.nspname || '.' || t.typname || ' ' || t.typtype::text || coalesce(' ' || (
                 SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                 FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER_SCHEMAS} AND t.typtype IN ('e', 'd', 'r')
           OR ({_USER_SCHEMAS} AND t.typtype = 'c' AND EXISTS (
                 SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c'))""",
    "function": f"""
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
               || ')'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_USER_SCHEMAS} AND NOT EXISTS (
          SELECT 1 FROM pg_depend dep WHERE dep.objid = p.oid AND dep.deptype = 'e')""",
    "schema": """
        SELECT n.nspname FROM pg_namespace n
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'""",
    "extension": "SELECT extname FROM pg_extension",
}


def schema_snapshot(conn: psycopg.Connection[Any]) -> set[str]:
    out: set[str] = set()
    for kind, query in SCHEMA_QUERIES.items():
        for (line,) in conn.execute(query).fetchall():
            if line is not None:
                out.add(f"{kind} {line}")
    return out


def compare(before: set[str], after: set[str]) -> tuple[str, ...]:
    missing = [f"missing: {x}" for x in sorted(before - after)]
    extra = [f"extra: {x}" for x in sorted(after - before)]
    return tuple(missing + extra)


def run_queries(conn: psycopg.Connection[Any], queries: Sequence[VerifyQuery]) -> list[VerifyQuery]:
    """Each query with ``observed`` set to its first column as text ("error: ..." on failure)."""
    import psycopg

    out = []
    for q in queries:
        try:
            row = conn.execute(q.sql).fetchone()
            value = "" if row is None or row[0] is None else str(row[0])
        except psycopg.Error as exc:
            if not conn.autocommit:
                conn.rollback()
            value = f"error: {str(exc).strip().splitlines()[0]}"
        out.append(replace(q, observed=value))
    return out


def _execute_script(conn: psycopg.Connection[Any], sql: str) -> None:
    # One simple-protocol call per script, as psql -f would send statement by statement:
    # psycopg sends a parameterless string with several statements in one Query message.
    conn.execute(sql)


def check_backout(sandbox: Sandbox, discovery: DiscoveryResult, steps: Sequence[BackoutStep],
                  *, setup_path: str | None = None, config: Config | None = None,
                  from_index: int = 0, migrated_db: str | None = None) -> BackoutCheck:
    """Run the generated rollback on a copy of the migrated database and compare its schema
    with the schema before the set. The sandbox's own database is left untouched; nothing may
    be connected to it (CREATE DATABASE ... TEMPLATE needs that), so call this after the replay
    has returned."""
    import dataclasses

    import psycopg

    from ..dryrun.replay import load_setup
    from ..dryrun.sandbox import SandboxError

    if not any(s.sql for s in steps):
        return BackoutCheck("not-run", note="nothing to roll back was generated")
    try:
        sandbox.create_database("sqlsafe_backout_base")
        if setup_path:
            # The replay's own loader (psql-like scripts, statement by statement), pointed at
            # the base database through a copy of the sandbox whose default database it is.
            base = dataclasses.replace(sandbox, dbname=sandbox._resolve("sqlsafe_backout_base"))
            load_setup(base, setup_path, config or Config())
        with sandbox.connect("sqlsafe_backout_base") as conn:
            for m in discovery.migrations[:from_index]:
                _execute_script(conn, m.section.text)
            before = schema_snapshot(conn)
        sandbox.create_database("sqlsafe_backout_copy", template=migrated_db or sandbox.dbname)
        with sandbox.connect("sqlsafe_backout_copy") as conn:
            for step in steps:  # already in reverse apply order
                for statement in step.sql:
                    try:
                        conn.execute(statement)
                    except psycopg.Error as exc:
                        first = str(exc).strip().splitlines()[0]
                        return BackoutCheck("failed", error=f"{step.path}: {statement} — {first}")
            after = schema_snapshot(conn)
    except (psycopg.Error, SandboxError) as exc:
        return BackoutCheck("failed", error=str(exc).strip().splitlines()[0])
    finally:
        for name in ("sqlsafe_backout_copy", "sqlsafe_backout_base"):
            try:
                sandbox.drop_database(name)
            except Exception:  # not created, or already gone; cleanup is best effort
                pass
    diff = compare(before, after)
    return BackoutCheck("restored" if not diff else "differs", diff)
