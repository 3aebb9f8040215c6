"""Destructive rules: each test enables only the rule under test."""

from __future__ import annotations

from helpers import run

SETUP = ("CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, legacy text, mood mood);\n"
         "CREATE TABLE IF NOT EXISTS sessions (id bigint, account_id bigint REFERENCES accounts (id));\n")


def lines(code: str, *sqls: str) -> list[int]:
    last = f"{len(sqls) - 1:03d}_m.sql"
    return [f.span.line for f in run(code, *sqls) if f.path == last]


def test_ds001_drop_table_err() -> None:
    assert lines("DS001", SETUP, "DROP TABLE sessions;") == [1]


def test_ds001_scratch_table_ok() -> None:
    assert lines("DS001", "CREATE TABLE s (id int);\nDROP TABLE s;") == []


def test_ds002_drop_column_err() -> None:
    assert lines("DS002", SETUP, "ALTER TABLE accounts DROP COLUMN legacy;") == [1]


def test_ds002_new_table_or_column_ok() -> None:
    assert lines("DS002", "CREATE TABLE s (id int, x int);\nALTER TABLE s DROP COLUMN x;") == []
    assert lines("DS002", SETUP, "ALTER TABLE accounts ADD COLUMN tmp int;\nALTER TABLE accounts DROP COLUMN tmp;") == []


def test_ds003_drop_schema_err() -> None:
    assert lines("DS003", "DROP SCHEMA reporting CASCADE;") == [1]


def test_ds003_no_schema_drop_ok() -> None:
    assert lines("DS003", "DROP VIEW IF EXISTS reporting.summary;") == []


def test_ds004_drop_database_err() -> None:
    assert lines("DS004", "DROP DATABASE staging;") == [1]


def test_ds004_other_statements_ok() -> None:
    assert lines("DS004", "REVOKE CONNECT ON DATABASE staging FROM PUBLIC;") == []


def test_ds005_cascade_err() -> None:
    assert lines("DS005", SETUP, "DROP TABLE accounts CASCADE;\nALTER TABLE accounts DROP COLUMN legacy CASCADE;") == [1, 2]


def test_ds005_drop_type_cascade_names_columns_err() -> None:
    (f,) = run("DS005", SETUP, "DROP TYPE mood CASCADE;")
    assert "public.accounts.mood" in f.message


def test_ds005_without_cascade_or_schema_ok() -> None:
    assert lines("DS005", SETUP, "DROP TABLE sessions;\nDROP SCHEMA s CASCADE;") == []


def test_ds005_cascade_on_a_constraint_nothing_can_depend_on_ok() -> None:
    # A foreign key or CHECK has no dependents: CASCADE drops nothing more. A primary key
    # does (the foreign keys that reference it).
    assert lines("DS005", SETUP,
                 "ALTER TABLE sessions DROP CONSTRAINT sessions_account_id_fkey CASCADE;\n"
                 "ALTER TABLE accounts DROP CONSTRAINT accounts_pkey CASCADE;") == [2]


def test_ds006_truncate_err() -> None:
    (f,) = run("DS006", SETUP, "TRUNCATE accounts CASCADE;")
    assert "public.sessions" in f.message


def test_ds006_new_table_ok() -> None:
    assert lines("DS006", "CREATE TABLE s (id int);\nTRUNCATE s;") == []


def test_ds007_delete_err() -> None:
    assert lines("DS007", SETUP, "DELETE FROM sessions;") == [1]


def test_ds007_delete_ok() -> None:
    assert lines("DS007", SETUP, "DELETE FROM sessions WHERE id < 10;") == []
