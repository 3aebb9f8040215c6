"""The names the schema state gives unnamed constraints are the ones PostgreSQL gives them.

A later migration drops, validates or renames a constraint by the name the server chose
(`ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey`); the state must know it by
that name. Checked on a real server (embedded 18 and local 15), long names included.
"""

from __future__ import annotations

import pytest

from sqlsafe.dryrun.sandbox import Sandbox
from sqlsafe.model import Section
from sqlsafe.normalize import normalize
from sqlsafe.parse import parse_section
from sqlsafe.schema import SchemaState

pytestmark = pytest.mark.postgres

LONG_TABLE = "warehouse_inventory_adjustment_requests_by_supplier"
LONG_COLUMN = "replacement_supplier_identifier_for_backordered_items_long"
SQL = f"""
CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint REFERENCES customers (id),
    code text UNIQUE,
    qty int CHECK (qty > 0),
    a int, b int,
    UNIQUE (a, b),
    FOREIGN KEY (b) REFERENCES customers (id),
    CHECK (a < b),
    EXCLUDE USING btree (a WITH =)
);
CREATE TABLE {LONG_TABLE} (
    id bigint PRIMARY KEY,
    {LONG_COLUMN} bigint REFERENCES customers (id) UNIQUE
);
ALTER TABLE customers ADD CHECK (email <> '');
ALTER TABLE customers ADD FOREIGN KEY (id) REFERENCES orders (id) NOT VALID;
-- Taken names: PostgreSQL appends 1, 2, ... to the label.
ALTER TABLE customers ADD CHECK (email <> 'x');
ALTER TABLE customers ADD CHECK (length(email) > 3);
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE {LONG_TABLE} ADD FOREIGN KEY ({LONG_COLUMN}) REFERENCES customers (id);
CREATE TABLE clashes (a int, b int CHECK (b > 0), CHECK (b < 100));
CREATE UNIQUE INDEX clashes_a_key ON clashes (a);
ALTER TABLE clashes ADD UNIQUE (a);
CREATE TABLE clashes2_pkey (id int);
CREATE TABLE clashes2 (id int PRIMARY KEY);
-- A name is taken schema-wide: t3's check on a_b and t3_a's on b would both be t3_a_b_check.
CREATE TABLE t3 (a_b int CHECK (a_b > 0));
CREATE TABLE t3_a (b int CHECK (b > 0));
ALTER TABLE t3_a ADD CHECK (b < 10);
"""


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _state_names() -> dict[str, set[str]]:
    state = SchemaState()
    state.begin_migration("001.sql", 0, False)
    for stmt in parse_section(Section("001.sql", SQL)).statements:
        assert stmt.node is not None, stmt.error
        for action in normalize(stmt.node, state.functions):
            state.apply(action)
    state.end_migration()
    out = {}
    for table in ("customers", "orders", LONG_TABLE, "clashes", "clashes2", "t3", "t3_a"):
        t = state.table(f"public.{table}")
        assert t is not None
        out[table] = {name for name, c in t.constraints.items() if c.kind != "notnull"}
    return out


def test_unnamed_constraints_are_known_by_the_servers_names(sandbox: Sandbox) -> None:
    with sandbox.connect() as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        conn.execute(SQL)
        rows = conn.execute(
            "SELECT c.relname, k.conname FROM pg_constraint k JOIN pg_class c "
            "ON c.oid = k.conrelid WHERE c.relnamespace = 'public'::regnamespace "
            "AND k.contype <> 'n'").fetchall()
    server: dict[str, set[str]] = {}
    for table, name in rows:
        server.setdefault(table, set()).add(name)
    assert _state_names() == server
    # The long names really were cut, and taken names got their digits (so both are what is
    # checked).
    assert any(len(n) == 63 for n in server[LONG_TABLE])
    assert any(len(n) == 63 and n.endswith("_fkey1") for n in server[LONG_TABLE])
    assert {"customers_email_check1", "orders_customer_id_fkey1", "clashes_b_check1",
            "clashes_a_key1", "clashes2_pkey1", "t3_a_b_check1",
            "t3_a_b_check2"} <= set().union(*server.values())
