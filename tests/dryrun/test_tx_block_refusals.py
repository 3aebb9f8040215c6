"""Which statements refuse a transaction block, checked against PostgreSQL itself.

The replay (``cannot_run_in_transaction``: run the statement outside the migration's
transaction) and the lint (TX001 / TX002: the statement will fail where the tool wraps the file
in a transaction) each keep a list of such statements. Every case here runs on a real server
(embedded 18 and local 15) inside BEGIN ... ROLLBACK, and both lists must say what the server
says: refused with SQLSTATE 25001 (active_sql_transaction), or accepted.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pglast.parser import parse_sql

from sqlsafe.config import Config
from sqlsafe.dryrun.replay import cannot_run_in_transaction
from sqlsafe.dryrun.sandbox import Sandbox
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section

pytestmark = pytest.mark.postgres

SETUP = """\
CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int);
CREATE INDEX items_name_idx ON items (name);
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TYPE mood AS ENUM ('sad', 'happy');
"""

# (id, statement; {db} is the scratch database's name).
CASES = [
    ("create-index", "CREATE INDEX items_qty_idx ON items (qty)"),
    ("create-index-concurrently", "CREATE INDEX CONCURRENTLY items_qty_idx ON items (qty)"),
    ("drop-index", "DROP INDEX items_name_idx"),
    ("drop-index-concurrently", "DROP INDEX CONCURRENTLY items_name_idx"),
    ("reindex-index", "REINDEX INDEX items_name_idx"),
    ("reindex-index-concurrently", "REINDEX INDEX CONCURRENTLY items_name_idx"),
    ("reindex-table", "REINDEX TABLE items"),
    ("reindex-table-concurrently", "REINDEX TABLE CONCURRENTLY items"),
    ("reindex-schema", "REINDEX SCHEMA public"),
    ("reindex-database", "REINDEX DATABASE {db}"),
    ("reindex-system", "REINDEX SYSTEM {db}"),
    ("vacuum", "VACUUM items"),
    ("vacuum-full", "VACUUM FULL items"),
    ("vacuum-analyze", "VACUUM (ANALYZE) items"),
    ("analyze", "ANALYZE items"),
    ("cluster-table", "CLUSTER items USING items_name_idx"),
    ("cluster-all", "CLUSTER"),
    ("detach-partition", "ALTER TABLE events DETACH PARTITION events_2023"),
    ("detach-partition-concurrently",
     "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY"),
    ("add-enum-value", "ALTER TYPE mood ADD VALUE 'meh'"),
    ("alter-system", "ALTER SYSTEM SET work_mem = '8MB'"),
    ("create-database", "CREATE DATABASE sqlsafe_tx_probe"),
    ("drop-database", "DROP DATABASE IF EXISTS sqlsafe_tx_probe_absent"),
    ("create-tablespace", "CREATE TABLESPACE sqlsafe_tx_ts LOCATION '/nonexistent/sqlsafe'"),
    ("drop-tablespace", "DROP TABLESPACE IF EXISTS sqlsafe_tx_ts_absent"),
    # A subscription refuses a transaction block only when it creates its replication slot,
    # which it does by default; connect = false implies create_slot = false.
    ("do-commit", "DO $$ BEGIN PERFORM 1; COMMIT; END $$"),
    ("do-rollback", "DO $$ BEGIN PERFORM 1; ROLLBACK; END $$"),
    ("do-no-commit", "DO $$ BEGIN PERFORM 1; END $$"),
    ("do-commit-text", "DO $$ BEGIN RAISE NOTICE 'commit later'; END $$"),
    ("create-subscription",
     "CREATE SUBSCRIPTION sqlsafe_sub CONNECTION 'dbname=none' PUBLICATION p"),
    ("create-subscription-no-connect",
     "CREATE SUBSCRIPTION sqlsafe_sub CONNECTION 'dbname=none' PUBLICATION p "
     "WITH (connect = false)"),
    ("create-subscription-no-slot",
     "CREATE SUBSCRIPTION sqlsafe_sub CONNECTION 'dbname=none' PUBLICATION p "
     "WITH (connect = false, create_slot = false, enabled = false, slot_name = NONE)"),
]


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    with each_major.connect() as conn:
        conn.execute(SETUP)
    return each_major


def _server_refuses(sandbox: Sandbox, sql: str) -> bool:
    with psycopg.connect(sandbox.dsn) as conn:  # not autocommit: psycopg sends BEGIN
        try:
            conn.execute(sql)
        except psycopg.Error as exc:
            # 25001 active_sql_transaction; 2D000 invalid_transaction_termination (a DO
            # block's COMMIT)
            if exc.sqlstate in ("25001", "2D000"):
                return True
            pytest.fail(f"{sql}: failed in the transaction for another reason: {exc}")
        finally:
            conn.rollback()
    return False


def _lint_flags(sql: str, major: int) -> set[str]:
    m = Migration("001_case.sql", None, "file", "1", "case", Section("001_case.sql", sql + ";\n"),
                  in_transaction=True)
    result = lint(DiscoveryResult((m,)), Config(pg_version=major, select=("TX001", "TX002")))
    return {f.code for f in result.findings}


@pytest.mark.parametrize(("case", "template"), CASES, ids=[c[0] for c in CASES])
def test_lint_and_replay_know_what_the_server_refuses(sandbox: Sandbox, case: str,
                                                      template: str) -> None:
    with sandbox.connect() as conn:
        db = conn.execute("SELECT current_database()").fetchone()[0]
    sql = template.format(db=db)
    refused = _server_refuses(sandbox, sql)
    node: Any = parse_sql(sql)[0].stmt
    assert cannot_run_in_transaction(node, sandbox.server_version_num) == refused, \
        f"replay: {sql} ({'refused' if refused else 'accepted'} by the server)"
    flagged = _lint_flags(sql, sandbox.server_version_num // 10000)
    assert bool(flagged) == refused, \
        f"lint: {sql} ({'refused' if refused else 'accepted'} by the server), got {flagged}"


def test_the_cases_cover_both_answers() -> None:
    # A list where every statement is refused (or none) would prove nothing about the other.
    ids = {c[0] for c in CASES}
    assert {"create-index", "create-index-concurrently", "vacuum", "analyze"} <= ids


@pytest.mark.parametrize("version", [110000, 180000])
def test_every_refused_kind_is_listed(version: int) -> None:
    """TX002 asks for a statement's node only when its kind is in MAY_REFUSE (a statement a
    parse worker shipped has no node until asked): a kind that can be refused and is missing
    there would never be flagged."""
    from sqlsafe.txblock import MAY_REFUSE, refuses_transaction_block

    refused = set()
    for _case, template in CASES:
        node: Any = parse_sql(template.format(db="d"))[0].stmt
        if refuses_transaction_block(node, version):
            refused.add(type(node).__name__)
            assert type(node).__name__ in MAY_REFUSE, template
    assert len(refused) >= 10
