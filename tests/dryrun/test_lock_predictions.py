"""The static lock prediction (``sqlsafe.locks``) checked against PostgreSQL itself.

Every case runs one statement on a real server (embedded 18 and local 15) on a small fresh
schema, observed by the dry run's own code (pg_locks of the session inside the transaction, or
the watcher thread for statements that cannot run in a transaction block), and compared with
what ``sqlsafe.lint`` predicts for the same statement on the same schema and server version.
A discrepancy is a bug in the prediction: fix ``locks.py``, citing the PostgreSQL fact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dryrun_helpers import LOCAL_MAJOR
from dryrun_helpers import needs_local as local_needs
from pglast.parser import parse_sql

from sqlsafe.config import Config
from sqlsafe.dryrun.replay import cannot_run_in_transaction, dry_run
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section

ENGINES = [
    pytest.param(("embedded", None), id="pg18"),
    pytest.param(("local", LOCAL_MAJOR), id="pg15",
                 marks=local_needs()),
]

pytestmark = pytest.mark.postgres

SETUP = """\
CREATE TABLE parent (id bigint PRIMARY KEY, code text UNIQUE);
CREATE TABLE items (
    id bigint PRIMARY KEY,
    parent_id bigint,
    name varchar(20),
    price numeric(10, 2),
    qty int,
    note text
);
CREATE INDEX items_name_idx ON items (name);
CREATE UNIQUE INDEX items_id_qty_uidx ON items (id, qty);
INSERT INTO parent SELECT g, 'c' || g FROM generate_series(1, 10) g;
INSERT INTO items SELECT g, 1 + g % 10, 'n' || g, g, g, 'x' FROM generate_series(1, 100) g;
-- NOT VALID only means "not validated" when added by ALTER TABLE: CREATE TABLE marks its
-- constraints valid (the new table is empty).
ALTER TABLE items ADD CONSTRAINT items_qty_check CHECK (qty >= 0) NOT VALID;
ALTER TABLE items ADD CONSTRAINT items_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID;
CREATE UNLOGGED TABLE scratch_u (a int);
INSERT INTO scratch_u VALUES (1);
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2025 (id bigint NOT NULL, at date NOT NULL);
CREATE MATERIALIZED VIEW items_mv AS SELECT parent_id, count(*) AS n FROM items GROUP BY parent_id;
CREATE UNIQUE INDEX items_mv_uidx ON items_mv (parent_id);
CREATE TABLE base_t (a int);
CREATE POLICY items_owner ON items USING (true);
CREATE TABLE child_t (a int);
CREATE FUNCTION trg_fn() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER items_trg BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION trg_fn();
CREATE SEQUENCE items_seq;
CREATE SCHEMA archive;
"""

# (id, statement). Statements that cannot run in a transaction block are detected by the
# replay and run in autocommit with the watcher thread.
CASES: list[tuple[str, str]] = [
    ("add-column", "ALTER TABLE items ADD COLUMN c1 int"),
    ("add-column-const-default", "ALTER TABLE items ADD COLUMN c1 int DEFAULT 0"),
    ("add-column-volatile-default", "ALTER TABLE items ADD COLUMN c1 float8 DEFAULT random()"),
    ("add-column-not-null-default", "ALTER TABLE items ADD COLUMN c1 int NOT NULL DEFAULT 1"),
    ("add-column-identity", "ALTER TABLE items ADD COLUMN c1 bigint GENERATED ALWAYS AS IDENTITY"),
    ("add-column-stored-generated",
     "ALTER TABLE items ADD COLUMN c1 int GENERATED ALWAYS AS (qty * 2) STORED"),
    ("add-column-references", "ALTER TABLE items ADD COLUMN c1 bigint REFERENCES parent (id)"),
    ("add-column-check", "ALTER TABLE items ADD COLUMN c1 int CHECK (c1 > 0)"),
    ("drop-column", "ALTER TABLE items DROP COLUMN note"),
    ("type-rewrite-int-bigint", "ALTER TABLE items ALTER COLUMN qty TYPE bigint"),
    ("type-varchar-widen", "ALTER TABLE items ALTER COLUMN name TYPE varchar(50)"),
    ("type-varchar-to-text", "ALTER TABLE items ALTER COLUMN name TYPE text"),
    ("type-numeric-precision-up", "ALTER TABLE items ALTER COLUMN price TYPE numeric(12, 2)"),
    ("type-text-to-int-using",
     "ALTER TABLE items ALTER COLUMN note TYPE int USING length(note)"),
    ("set-not-null", "ALTER TABLE items ALTER COLUMN qty SET NOT NULL"),
    ("drop-not-null", "ALTER TABLE events_2025 ALTER COLUMN id DROP NOT NULL"),
    ("set-default", "ALTER TABLE items ALTER COLUMN qty SET DEFAULT 0"),
    ("drop-default", "ALTER TABLE items ALTER COLUMN qty DROP DEFAULT"),
    ("add-check", "ALTER TABLE items ADD CONSTRAINT c_price CHECK (price >= 0)"),
    ("add-check-not-valid", "ALTER TABLE items ADD CONSTRAINT c_price CHECK (price >= 0) NOT VALID"),
    ("add-fk", "ALTER TABLE items ADD CONSTRAINT fk2 FOREIGN KEY (parent_id) REFERENCES parent (id)"),
    ("add-fk-not-valid",
     "ALTER TABLE items ADD CONSTRAINT fk2 FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID"),
    ("add-unique", "ALTER TABLE items ADD CONSTRAINT u_name UNIQUE (name)"),
    ("add-pk", "ALTER TABLE child_t ADD PRIMARY KEY (a)"),
    ("add-unique-using-index",
     "ALTER TABLE items ADD CONSTRAINT u_id_qty UNIQUE USING INDEX items_id_qty_uidx"),
    ("add-exclude", "ALTER TABLE items ADD CONSTRAINT ex EXCLUDE USING btree (id WITH =)"),
    ("validate-check", "ALTER TABLE items VALIDATE CONSTRAINT items_qty_check"),
    ("validate-fk", "ALTER TABLE items VALIDATE CONSTRAINT items_parent_fk"),
    ("drop-check", "ALTER TABLE items DROP CONSTRAINT items_qty_check"),
    ("drop-fk", "ALTER TABLE items DROP CONSTRAINT items_parent_fk"),
    ("rename-column", "ALTER TABLE items RENAME COLUMN note TO remark"),
    ("rename-table", "ALTER TABLE items RENAME TO goods"),
    ("set-schema-table", "ALTER TABLE items SET SCHEMA archive"),
    ("create-table-as", "CREATE TABLE items_copy AS SELECT * FROM items"),
    ("select-into", "SELECT * INTO items_copy FROM items"),
    ("set-schema-matview", "ALTER MATERIALIZED VIEW items_mv SET SCHEMA archive"),
    ("set-schema-sequence", "ALTER SEQUENCE items_seq SET SCHEMA archive"),
    ("rename-constraint", "ALTER TABLE items RENAME CONSTRAINT items_qty_check TO qty_ok"),
    ("set-unlogged", "ALTER TABLE child_t SET UNLOGGED"),
    ("set-logged", "ALTER TABLE scratch_u SET LOGGED"),
    ("set-tablespace", "ALTER TABLE items SET TABLESPACE pg_default"),
    ("set-fillfactor", "ALTER TABLE items SET (fillfactor = 70)"),
    ("set-statistics", "ALTER TABLE items ALTER COLUMN qty SET STATISTICS 500"),
    ("cluster-on", "ALTER TABLE items CLUSTER ON items_name_idx"),
    ("disable-trigger", "ALTER TABLE items DISABLE TRIGGER items_trg"),
    ("enable-trigger", "ALTER TABLE items ENABLE TRIGGER items_trg"),
    ("enable-rls", "ALTER TABLE items ENABLE ROW LEVEL SECURITY"),
    ("owner-to", "ALTER TABLE items OWNER TO sqlsafe_owner"),
    ("attach-partition",
     "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"),
    ("detach-partition", "ALTER TABLE events DETACH PARTITION events_2023"),
    ("detach-partition-concurrently", "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY"),
    ("inherit", "ALTER TABLE child_t INHERIT base_t"),
    ("create-index", "CREATE INDEX i_qty ON items (qty)"),
    ("create-unique-index", "CREATE UNIQUE INDEX i_qty ON items (id, qty)"),
    ("create-partial-index", "CREATE INDEX i_qty ON items (qty) WHERE qty > 10"),
    ("create-index-concurrently", "CREATE INDEX CONCURRENTLY i_qty ON items (qty)"),
    ("drop-index", "DROP INDEX items_name_idx"),
    ("drop-index-concurrently", "DROP INDEX CONCURRENTLY items_name_idx"),
    ("reindex-index", "REINDEX INDEX items_name_idx"),
    ("reindex-table", "REINDEX TABLE items"),
    ("reindex-index-concurrently", "REINDEX INDEX CONCURRENTLY items_name_idx"),
    ("reindex-table-concurrently", "REINDEX TABLE CONCURRENTLY items"),
    ("create-table-fk", "CREATE TABLE notes (id int, item_id bigint REFERENCES items (id))"),
    ("create-trigger",
     "CREATE TRIGGER t2 AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION trg_fn()"),
    ("create-policy", "CREATE POLICY p ON items USING (qty > 0)"),
    ("alter-policy", "ALTER POLICY items_owner ON items USING (false)"),
    ("comment-table", "COMMENT ON TABLE items IS 'goods'"),
    ("comment-column", "COMMENT ON COLUMN items.qty IS 'how many'"),
    ("vacuum", "VACUUM items"),
    ("vacuum-full", "VACUUM FULL items"),
    ("analyze", "ANALYZE items"),
    ("cluster", "CLUSTER items USING items_name_idx"),
    ("refresh-matview", "REFRESH MATERIALIZED VIEW items_mv"),
    ("refresh-matview-concurrently", "REFRESH MATERIALIZED VIEW CONCURRENTLY items_mv"),
    ("truncate", "TRUNCATE child_t"),
    ("insert", "INSERT INTO parent VALUES (100, 'z')"),
    ("update", "UPDATE items SET qty = qty + 1 WHERE id < 5"),
    ("delete", "DELETE FROM items WHERE id = 1"),
    ("select", "SELECT count(*) FROM items"),
    ("lock-access-exclusive", "LOCK TABLE items IN ACCESS EXCLUSIVE MODE"),
    ("lock-share", "LOCK TABLE items IN SHARE MODE"),
    ("lock-row-exclusive", "LOCK TABLE items IN ROW EXCLUSIVE MODE"),
    ("lock-share-row-exclusive", "LOCK TABLE items IN SHARE ROW EXCLUSIVE MODE"),
    ("drop-table", "DROP TABLE child_t"),
    ("drop-table-referenced", "DROP TABLE parent CASCADE"),
    ("alter-index-rename", "ALTER INDEX items_name_idx RENAME TO items_name_idx2"),
    ("alter-sequence", "ALTER SEQUENCE items_seq RESTART WITH 10"),
    ("create-statistics", "CREATE STATISTICS items_stats ON id, qty FROM items"),
    ("create-rule", "CREATE RULE items_ignore AS ON INSERT TO items WHERE false DO INSTEAD NOTHING"),
    ("create-publication", "CREATE PUBLICATION sqlsafe_pub_items FOR TABLE items"),
    ("create-table-inherits", "CREATE TABLE items_child () INHERITS (items)"),
    ("copy-from-program", "COPY items (id) FROM PROGRAM 'true'"),
    ("copy-to-program", "COPY items TO PROGRAM 'cat > /dev/null'"),
    ("drop-trigger", "DROP TRIGGER items_trg ON items"),
    ("drop-policy", "DROP POLICY items_owner ON items"),
    ("rename-trigger", "ALTER TRIGGER items_trg ON items RENAME TO items_trg2"),
    ("rename-policy", "ALTER POLICY items_owner ON items RENAME TO items_owner2"),
    # A partitioned table: most ALTER TABLE sub-commands and CREATE INDEX repeat on each
    # partition in the same mode; the partitions hold the data a type change rewrites.
    ("partitioned-add-column", "ALTER TABLE events ADD COLUMN note text"),
    ("partitioned-type-rewrite", "ALTER TABLE events ALTER COLUMN id TYPE numeric"),
    ("partitioned-set-default", "ALTER TABLE events ALTER COLUMN id SET DEFAULT 1"),
    ("partitioned-create-index", "CREATE INDEX events_at_idx ON events (at)"),
    ("partitioned-create-index-only", "CREATE INDEX events_at_idx ON ONLY events (at)"),
    ("drop-partition", "DROP TABLE events_2023"),
    ("partitioned-row-trigger",
     "CREATE TRIGGER ev_trg BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION trg_fn()"),
    ("partitioned-set-statistics", "ALTER TABLE events ALTER COLUMN id SET STATISTICS 100"),
    ("partitioned-rename-column", "ALTER TABLE events RENAME COLUMN id TO id2"),
    ("partitioned-truncate", "TRUNCATE events"),
    ("partitioned-drop", "DROP TABLE events"),
    ("partitioned-lock", "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"),
    ("partitioned-set-not-null-already", "ALTER TABLE events ALTER COLUMN at SET NOT NULL"),
]


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    engine, version = request.param
    with open_sandbox(engine, pg_version=version) as sandbox:
        with sandbox.connect("postgres") as conn:
            conn.execute("DO $$BEGIN CREATE ROLE sqlsafe_owner; "
                         "EXCEPTION WHEN duplicate_object THEN NULL; END$$")
        yield sandbox


def _migration(path: str, text: str, in_transaction: bool) -> Migration:
    return Migration(path, None, "file", None, path, Section(path, text),
                     in_transaction=in_transaction)


def run_case(sandbox: Sandbox, statement: str) -> Any:
    """Reset the schema, lint setup + statement as two migrations, replay, return the
    statement's StatementResult."""
    with sandbox.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS archive CASCADE")
        conn.execute("CREATE SCHEMA public")
    # In a transaction where PostgreSQL allows it (observed on the session itself); the others
    # run in autocommit, observed by the watcher thread.
    in_tx = not cannot_run_in_transaction(parse_sql(statement)[0].stmt,
                                          sandbox.server_version_num)
    disc = DiscoveryResult((_migration("setup.sql", SETUP, False),
                            _migration("case.sql", statement + ";\n", in_tx)))
    config = Config(pg_version=sandbox.server_version_num // 10000)
    result = dry_run(disc, config, sandbox=sandbox, lint_result=lint(disc, config),
                     from_index=1, check_idempotency=False, check_down=False)
    case = result.migrations[1]
    assert case.status == "applied", case.error
    (stmt,) = case.statements
    return stmt


# Known gaps, each with its reason; strict=False because timing decides some of them.
KNOWN_GAPS = {
    "detach-partition-concurrently": "the partition's lock is taken after the watcher lets go of the parent and released within a millisecond; not yet observable",
    "drop-index-concurrently": "the index's lock is taken after the wait for older transactions and released within a millisecond; not yet observable",
    "reindex-index-concurrently": "the index's lock is taken after the waits; not always observable on a 100-row table",
}


def _param(name: str, sql: str) -> Any:
    marks = [pytest.mark.xfail(reason=KNOWN_GAPS[name], strict=False)] if name in KNOWN_GAPS else []
    return pytest.param(sql, id=name, marks=marks)


@pytest.mark.parametrize("statement", [_param(name, sql) for name, sql in CASES])
def test_prediction_matches_postgres(server: Sandbox, statement: str) -> None:
    stmt = run_case(server, statement)
    assert stmt.locks, "the observation saw no lock at all"
    assert not stmt.discrepancies, (
        f"PostgreSQL {server.server_version}: {statement}\n  observed "
        f"{[(lk.relation, lk.mode) for lk in stmt.locks]} rewrites {list(stmt.rewrites)}\n"
        f"  predicted {list(stmt.predicted_locks)} rewrites {list(stmt.predicted_rewrites)}\n  "
        + "\n  ".join(stmt.discrepancies)
    )


def test_enough_statement_kinds() -> None:
    assert len(CASES) >= 60
