"""Compatibility rules: each test enables only the rule under test."""

from __future__ import annotations

from helpers import run

SETUP = ("CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email varchar(200), n bigint,\n"
         "  small int, amount numeric(12,4), bio text, plan text NOT NULL DEFAULT 'free', note text DEFAULT '',\n"
         "  at timestamptz(6));\n")


def lines(code: str, *sqls: str, **kw: object) -> list[int]:
    last = f"{len(sqls) - 1:03d}_m.sql"
    return [f.span.line for f in run(code, *sqls, **kw) if f.path == last]


def test_cp001_not_null_without_default_err() -> None:
    assert lines("CP001", SETUP, "ALTER TABLE accounts ADD COLUMN x text NOT NULL;") == [1]


def test_cp001_with_default_or_new_table_ok() -> None:
    assert lines("CP001", SETUP, "ALTER TABLE accounts ADD COLUMN x text NOT NULL DEFAULT '';") == []
    assert lines("CP001", "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN x text NOT NULL;") == []


def test_cp002_rename_column_err() -> None:
    assert lines("CP002", SETUP, "ALTER TABLE accounts RENAME COLUMN email TO mail;") == [1]


def test_cp002_new_column_ok() -> None:
    assert lines("CP002", SETUP, "ALTER TABLE accounts ADD COLUMN x int;\nALTER TABLE accounts RENAME COLUMN x TO y;") == []


def test_cp003_rename_table_err() -> None:
    assert lines("CP003", SETUP, "ALTER TABLE accounts RENAME TO users;") == [1]


def test_cp003_new_table_ok() -> None:
    assert lines("CP003", "CREATE TABLE t (id int);\nALTER TABLE t RENAME TO u;") == []


def test_cp004_rename_schema_err() -> None:
    assert lines("CP004", "ALTER SCHEMA a RENAME TO b;") == [1]


def test_cp004_other_rename_ok() -> None:
    assert lines("CP004", "ALTER INDEX a RENAME TO b;") == []


def test_cp005_narrowing_err() -> None:
    sql = "\n".join(f"ALTER TABLE accounts ALTER COLUMN {c} TYPE {t};" for c, t in (
        ("email", "varchar(100)"), ("n", "int"), ("small", "smallint"), ("amount", "numeric(12,2)"),
        ("amount", "numeric(8,4)"), ("bio", "varchar(10)"), ("at", "timestamptz(0)"), ("amount", "int")))
    assert lines("CP005", SETUP, sql) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_cp005_widening_ok() -> None:
    sql = "\n".join(f"ALTER TABLE accounts ALTER COLUMN {c} TYPE {t};" for c, t in (
        ("email", "varchar(300)"), ("small", "bigint"), ("amount", "numeric(14,4)"), ("bio", "text"),
        ("email", "text"), ("unknown_col", "varchar(5)")))
    assert lines("CP005", SETUP, sql) == []


def test_cp006_drop_default_err() -> None:
    assert lines("CP006", SETUP, "ALTER TABLE accounts ALTER COLUMN plan DROP DEFAULT;") == [1]


def test_cp006_nullable_column_ok() -> None:
    assert lines("CP006", SETUP, "ALTER TABLE accounts ALTER COLUMN note DROP DEFAULT;") == []


def test_cp007_rename_value_err() -> None:
    assert lines("CP007", "SELECT 1;", "ALTER TYPE mood RENAME VALUE 'a' TO 'b';") == [1]


def test_cp007_type_created_here_ok() -> None:
    assert lines("CP007", "CREATE TYPE mood AS ENUM ('a');\nALTER TYPE mood RENAME VALUE 'a' TO 'b';") == []


def test_cp008_drop_not_null_err() -> None:
    assert lines("CP008", SETUP, "ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL;") == [1]


def test_cp008_new_table_ok() -> None:
    assert lines("CP008", "CREATE TABLE t (a int NOT NULL);\nALTER TABLE t ALTER COLUMN a DROP NOT NULL;") == []


def test_cp008_is_opt_in_ok() -> None:
    from helpers import migrations

    from sqlsafe.config import Config
    from sqlsafe.lint import lint

    result = lint(migrations(SETUP, "ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL;"), Config())
    assert not [f for f in result.findings if f.code == "CP008"]


def test_cp006_same_statement_drops_not_null_ok() -> None:
    # Corpus (documenso): DROP NOT NULL and DROP DEFAULT together leave omitted values NULL.
    sql = "ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL,\n  ALTER COLUMN plan DROP DEFAULT;"
    assert lines("CP006", SETUP, sql) == []
