"""Idempotency rules: each test enables only the rule under test."""

from __future__ import annotations

from helpers import run

SETUP = ("CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text, legacy text);\n"
         "CREATE INDEX IF NOT EXISTS accounts_email_idx ON accounts (email);\n")


def codes(code: str, *sqls: str, **kw: object) -> list[int]:
    return [f.span.line for f in run(code, *sqls, **kw) if f.path.endswith(f"{len(sqls) - 1:03d}_m.sql")]


def test_id001_create_table_err() -> None:
    assert codes("ID001", "CREATE TABLE t (id int);\nCREATE SCHEMA s;\nCREATE EXTENSION x;") == [1, 2, 3]


def test_id001_foreign_table_is_named_so() -> None:
    (f,) = run("ID001", "CREATE FOREIGN TABLE remote_orders (id bigint) SERVER shop;")
    assert "CREATE FOREIGN TABLE remote_orders" in f.message
    assert "CREATE FOREIGN TABLE IF NOT EXISTS" in f.help
    assert f.fix is not None


def test_id001_if_not_exists_ok() -> None:
    assert codes("ID001", "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE SCHEMA IF NOT EXISTS s;") == []


def test_id001_guarded_by_drop_if_exists_ok() -> None:
    assert codes("ID001", "DROP TABLE IF EXISTS t;\nCREATE TABLE t (id int);") == []


def test_id001_index_on_table_created_in_same_migration_ok() -> None:
    # Only the CREATE TABLE is reported: it is what a second run fails on.
    assert codes("ID001", "CREATE TABLE t (id int);\nCREATE INDEX t_i ON t (id);") == [1]


def test_id001_index_on_table_created_if_not_exists_err() -> None:
    assert codes("ID001", "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE INDEX t_i ON t (id);") == [2]


def test_id001_concurrent_index_left_to_id010_ok() -> None:
    assert codes("ID001", SETUP, "CREATE INDEX CONCURRENTLY i ON accounts (email);") == []


def test_id002_view_err() -> None:
    assert codes("ID002", "CREATE VIEW v AS SELECT 1;\nCREATE MATERIALIZED VIEW m AS SELECT 1;") == [1, 2]


def test_id002_view_ok() -> None:
    assert codes("ID002", "CREATE OR REPLACE VIEW v AS SELECT 1;\n"
                          "CREATE MATERIALIZED VIEW IF NOT EXISTS m AS SELECT 1;\n"
                          "DROP VIEW IF EXISTS w;\nCREATE VIEW w AS SELECT 1;") == []


def test_id003_add_column_err() -> None:
    found = run("ID003", SETUP, "ALTER TABLE accounts ADD COLUMN a int, ADD b int;")
    assert len(found) == 2
    assert all(f.fix is not None and f.fix.replacement == " IF NOT EXISTS" for f in found)


def test_id003_add_column_ok() -> None:
    assert codes("ID003", SETUP, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS a int;") == []


def test_id003_table_created_in_same_migration_ok() -> None:
    assert codes("ID003", "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN a int;") == []


def test_id004_drop_err() -> None:
    sql = ("DROP INDEX accounts_email_idx;\nALTER TABLE accounts DROP COLUMN legacy;\n"
           "ALTER TABLE accounts DROP CONSTRAINT c;\nDROP TYPE mood;")
    assert codes("ID004", SETUP, sql) == [1, 2, 3, 4]


def test_id004_drop_ok() -> None:
    sql = ("DROP INDEX IF EXISTS accounts_email_idx;\nALTER TABLE accounts DROP COLUMN IF EXISTS legacy;\n"
           "CREATE TABLE scratch (id int);\nDROP TABLE scratch;")
    assert codes("ID004", SETUP, sql) == []


def test_id005_function_err() -> None:
    assert codes("ID005", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1';") == [1]


def test_id005_function_ok() -> None:
    assert codes("ID005", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1';\n"
                          "DROP FUNCTION IF EXISTS g(int);\n"
                          "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql AS 'select 1';") == []


TRIGGER = "CREATE TRIGGER trg BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION f();"


def test_id006_trigger_pg14_fix_is_or_replace_err() -> None:
    (f,) = run("ID006", SETUP, TRIGGER, pg=14)
    assert f.fix is not None and f.fix.replacement == " OR REPLACE"


def test_id006_trigger_pg13_fix_is_drop_first_err() -> None:
    (f,) = run("ID006", SETUP, TRIGGER, pg=13)
    assert f.fix is not None and f.fix.replacement.startswith("DROP TRIGGER IF EXISTS trg ON accounts;")


def test_id006_trigger_ok() -> None:
    assert codes("ID006", SETUP, TRIGGER.replace("CREATE", "CREATE OR REPLACE"), pg=14) == []
    assert codes("ID006", SETUP, "DROP TRIGGER IF EXISTS trg ON accounts;\n" + TRIGGER, pg=13) == []


def test_id007_create_type_err() -> None:
    (f,) = run("ID007", "CREATE TYPE mood AS ENUM ('a');")
    assert f.fix is not None and "duplicate_object" in f.fix.replacement and not f.fix.safe


def test_id007_guarded_ok() -> None:
    do = "DO $$ BEGIN CREATE TYPE mood AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
    assert codes("ID007", do) == []
    assert codes("ID007", "DROP TYPE IF EXISTS mood;\nCREATE TYPE mood AS ENUM ('a');") == []


def test_id008_add_constraint_err() -> None:
    sql = "ALTER TABLE accounts ADD CONSTRAINT c CHECK (id > 0) NOT VALID;\nALTER TABLE accounts ADD CHECK (id > 0);"
    assert codes("ID008", SETUP, sql) == [1, 2]


def test_id008_guarded_ok() -> None:
    same = "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS c, ADD CONSTRAINT c CHECK (id > 0) NOT VALID;"
    earlier = "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS d;\nALTER TABLE accounts ADD CONSTRAINT d CHECK (id > 0);"
    new_table = "CREATE TABLE t (id int);\nALTER TABLE t ADD CONSTRAINT t_pk PRIMARY KEY (id);"
    assert codes("ID008", SETUP, same + "\n" + earlier + "\n" + new_table) == []


def test_id008_not_valid_then_validate_later_ok() -> None:
    # The VALIDATE and SET NOT NULL of the safe NOT NULL recipe are re-runnable as they are.
    assert codes("ID008", SETUP,
                 "ALTER TABLE accounts DROP CONSTRAINT IF EXISTS e_nn, ADD CONSTRAINT e_nn CHECK (email IS NOT NULL) NOT VALID;",
                 "ALTER TABLE accounts VALIDATE CONSTRAINT e_nn;",
                 "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;") == []


def test_id009_seed_err() -> None:
    assert codes("ID009", SETUP, "INSERT INTO accounts (id) VALUES (1), (2);") == [1]


def test_id009_seed_ok() -> None:
    sql = ("INSERT INTO accounts (id) VALUES (1) ON CONFLICT DO NOTHING;\n"
           "INSERT INTO accounts (id) SELECT 2 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE id = 2);\n"
           "CREATE TABLE plans (code text PRIMARY KEY);\nINSERT INTO plans VALUES ('free');")
    assert codes("ID009", SETUP, sql) == []


def test_id010_concurrent_index_err() -> None:
    assert codes("ID010", SETUP, "CREATE INDEX CONCURRENTLY i ON accounts (email);") == [1]


def test_id010_concurrent_index_ok() -> None:
    sql = ("DROP INDEX CONCURRENTLY IF EXISTS i;\nCREATE INDEX CONCURRENTLY i ON accounts (email);\n"
           "CREATE INDEX CONCURRENTLY IF NOT EXISTS j ON accounts (email);")
    assert codes("ID010", SETUP, sql) == []


def test_id011_add_value_err() -> None:
    assert codes("ID011", "SELECT 1;", "ALTER TYPE mood ADD VALUE 'c';") == [1]


def test_id011_add_value_ok() -> None:
    assert codes("ID011", "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'c';") == []
    assert codes("ID011", "CREATE TYPE mood AS ENUM ('a');\nALTER TYPE mood ADD VALUE 'b';") == []


def test_id_rules_inside_transaction_ok() -> None:
    # A failure rolls the whole transaction back: a retry starts from a clean slate.
    sql = ("CREATE TABLE t (id int);\nALTER TABLE accounts ADD COLUMN a int;\nDROP INDEX accounts_email_idx;\n"
           "CREATE TYPE m AS ENUM ('a');\nINSERT INTO accounts (id) VALUES (1);")
    for code in ("ID001", "ID003", "ID004", "ID007", "ID009"):
        assert codes(code, SETUP, sql, in_transaction=True) == [], code
    assert codes("ID001", f"BEGIN;\n{sql}\nCOMMIT;") == []


def test_id_rules_repeatable_migration_in_transaction_err() -> None:
    from helpers import migrations

    from sqlsafe._record import replace
    from sqlsafe.config import Config
    from sqlsafe.lint import lint

    disc = migrations("CREATE TABLE t (id int);", in_transaction=True, layout="flyway")
    disc = replace(disc, migrations=(replace(disc.migrations[0], kind="repeatable"),))
    result = lint(disc, Config(select=("ID001",)))
    assert [f.code for f in result.findings] == ["ID001"]


def test_id001_select_into_names_the_create_table_as_form() -> None:
    (f,) = run("ID001", "SELECT 1 AS a INTO n;")
    assert f.message.startswith("SELECT ... INTO n fails") and f.fix is None
    assert "CREATE TABLE IF NOT EXISTS n AS SELECT" in f.help
    assert run("ID001", "SELECT 1 AS a INTO TEMP n;") == []  # gone at the end of the session
