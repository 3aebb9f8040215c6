"""The plans of the catalog queries the replay runs after every migration stay index probes.

The replay prepares its catalog queries once per session and PostgreSQL plans them generically
on their first run: in the replay's set-up for the reads after every statement and migration,
on a scratch database that may hold no user relation yet, and otherwise when it is nearly
empty. These tests plan them the same way, then grow the schema and look at the plan a
migration's snapshot then runs: it must reach the touched relations' rows by index (a
sequential scan of pg_constraint, say, costs time in proportion to the whole schema after
every migration), and it must not be compiled by JIT (a plan made without sequential scans
passes jit_above_cost before PostgreSQL 17).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from dryrun_helpers import reset_public

from sqlsafe.config import Config
from sqlsafe.dryrun import replay as replay_module
from sqlsafe.dryrun.sandbox import Sandbox

pytestmark = pytest.mark.postgres

_CATALOGS = ("pg_class", "pg_attribute", "pg_attrdef", "pg_constraint", "pg_trigger",
             "pg_policy", "pg_index", "pg_inherits", "pg_depend")

# The column that names the owning relation (or domain) in each catalog of sub-objects: a
# scan of one must be bounded by it, not by the schema or the oid range of its rows.
_OWNER_KEYS = {"pg_attribute": ("attrelid",), "pg_attrdef": ("adrelid",),
               "pg_constraint": ("conrelid", "contypid"), "pg_trigger": ("tgrelid",),
               "pg_policy": ("polrelid",), "pg_index": ("indexrelid",),
               "pg_inherits": ("inhrelid",),
               # extension members: by the extension (``ext``) or by the member (``own``)
               "pg_depend": ("refclassid", "classid")}
_SCAN = re.compile(r"Scan (?:using \S+ )?on (pg_\w+)")
# The first condition's column and operator. It must be an equality: a range such as
# attrelid >= 16384 reads every user relation's rows. Only the type fingerprint reads a range
# by its owner, every domain's constraints (a handful, however many tables there are).
_COND = re.compile(r"(?:Index|Recheck) Cond: \(+(\w+) (\S+) ")
_RANGED = {"contypid"}

# 150 tables, each with a primary key, a foreign key, a default and a check.
_TABLE = ("CREATE TABLE t{} (id int PRIMARY KEY, p int REFERENCES p, "
          "n text NOT NULL DEFAULT 'x' CHECK (n <> ''))")
_TABLES = 150
# All of them in one statement (and one transaction): the text above as a literal.
_LITERAL = "'" + _TABLE.format("%s").replace("'", "''") + "'"
_GROW = f"DO $$ BEGIN FOR i IN 1..{_TABLES} LOOP EXECUTE format({_LITERAL}, i); END LOOP; END $$"


def _plan(conn: Any, sql: str, pin: str = "saved") -> str:
    """The EXPLAIN of ``sql`` (inside a transaction) run under the keyed pin, as the replay
    runs it: ``_PIN_KEYED`` or the SET LOCAL statements of a read the COMMIT follows."""
    cur = conn.cursor()
    if pin == "saved":
        cur.execute(f"{replay_module._PIN_KEYED};EXPLAIN {sql};{replay_module._UNPIN_KEYED}")
        cur.nextset()
    else:
        for statement in replay_module._keyed_until_end(conn.info.server_version):
            cur.execute(statement)
        cur.execute(f"EXPLAIN {sql}")
    return "\n".join(row[0] for row in cur.fetchall())


def _unkeyed_scans(plan: str) -> list[str]:
    """The scans of a catalog of sub-objects whose first condition is not an equality on the
    owner."""
    lines = plan.splitlines()
    unkeyed = []
    for i, line in enumerate(lines):
        scan = _SCAN.search(line)
        if scan is None or scan.group(1) not in _OWNER_KEYS:
            continue
        conds = [m.groups() for m in map(_COND.search, lines[i + 1:i + 4]) if m]
        if (not conds or conds[0][0] not in _OWNER_KEYS[scan.group(1)]
                or (conds[0][1] != "=" and conds[0][0] not in _RANGED)):
            unkeyed.append(line.strip())
    return unkeyed


@pytest.mark.parametrize(("planned", "pin", "lean"), [
    ("empty", "saved", False), ("grown", "saved", False), ("empty", "until_end", False),
    ("empty", "until_end", True), ("grown", "until_end", True)])
def test_the_snapshot_after_a_migration_probes_the_touched_rows(
        each_major: Sandbox, planned: str, pin: str, lean: bool) -> None:
    """Planned on the catalog of a nearly empty database, or on a grown one (a ``--setup``
    schema; PostgreSQL also plans again after a migration's CREATE SCHEMA or CREATE
    EXTENSION); SCHEMA_HELD and its lean variant (``lean``).
    """
    with reset_public(each_major).connect() as conn:
        conn.autocommit = True
        conn.prepare_threshold = None
        conn.execute("CREATE TABLE p (id int PRIMARY KEY)")
        if planned == "grown":
            conn.execute(_GROW)
            conn.execute("ANALYZE")
        for name, params, sql in replay_module._Session._PREPARE:
            conn.execute(f"PREPARE {name}{params} AS {sql}")
        held = replay_module._schema_held(None, None, lean=lean)
        conn.execute("BEGIN")  # the first run plans it
        conn.execute("ALTER TABLE p ADD COLUMN a int")
        _plan(conn, held, pin)
        conn.execute("ROLLBACK")
        if planned == "empty":
            conn.execute(_GROW)
        conn.execute("BEGIN")
        conn.execute("ALTER TABLE t7 ADD COLUMN b int CHECK (b > 0)")
        plan = _plan(conn, held, pin)
        conn.execute("ROLLBACK")
    _assert_probes(plan)


@pytest.mark.parametrize("lean", [False, True])
def test_the_plans_made_in_the_set_up_probe_the_touched_rows(
        each_major: Sandbox, lean: bool) -> None:
    """The replay plans its reads in its set-up (``_Session.warm``), on a fresh scratch
    database that may hold no user relation at all, so no estimate there says how many a
    range of oids will hold. Those plans too must reach the touched relations' rows by
    index once the schema has grown."""
    name = f"plans{int(lean)}"
    each_major.create_database(name)
    try:
        session = replay_module._Replayer(each_major, Config(), starts_empty=True).open(name)
        try:
            session.snapshot()
            session.warm()
            conn = session.conn
            planned = {row[0] for row in conn.execute(
                "SELECT name FROM pg_prepared_statements WHERE generic_plans > 0")}
            assert {"sqlsafe_locks", "sqlsafe_schema_held", "sqlsafe_schema_lean"} <= planned
            conn.execute("CREATE TABLE p (id int PRIMARY KEY)")
            # One table per transaction, as migrations go: _GROW's single transaction sends
            # so many invalidations that the session starts afresh, cached plans included.
            for i in range(1, _TABLES + 1):
                conn.execute(_TABLE.format(i))
            conn.execute("BEGIN")
            conn.execute("ALTER TABLE t7 ADD COLUMN b int CHECK (b > 0)")
            plan = _plan(conn, replay_module._schema_held(None, None, lean=lean), "until_end")
            conn.execute("ROLLBACK")
        finally:
            session.close()
    finally:
        each_major.drop_database(name)
    _assert_probes(plan)


def _assert_probes(plan: str) -> None:
    scanned = [c for c in _CATALOGS if f"Seq Scan on {c} " in plan + " "]
    assert not scanned, plan
    assert "Hash Join" not in plan and "Merge Join" not in plan, plan
    assert "JIT" not in plan, plan
    assert not _unkeyed_scans(plan), plan
