"""Transaction rules: each test enables only the rule under test."""

from __future__ import annotations

from helpers import migrations

from sqlsafe._record import replace
from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import Finding

SETUP = ("CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text);\n"
         "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, status mood);\n")


def run(code: str, sql: str, *, tx: bool = False, layout: str = "file", pg: int = 15) -> list[Finding]:
    disc = migrations(SETUP, sql, layout=layout)
    # Only the migration under test runs in the tool's transaction.
    disc = replace(disc, migrations=(disc.migrations[0],
                                     replace(disc.migrations[1], in_transaction=tx)))
    result = lint(disc, Config(select=(code,), pg_version=pg))
    return [f for f in result.findings if f.code == code and f.path == "001_m.sql"]


def lines(code: str, sql: str, **kw: object) -> list[int]:
    return [f.span.line for f in run(code, sql, **kw)]  # type: ignore[arg-type]


CIC = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON accounts (email);"


def test_tx001_wrapped_err() -> None:
    assert lines("TX001", CIC, tx=True) == [1]
    assert lines("TX001", f"BEGIN;\n{CIC}\nCOMMIT;") == [2]


def test_tx001_implicit_multi_statement_message_err() -> None:
    (f,) = run("TX001", f"SELECT 1;\n{CIC}", tx=True, layout="golang-migrate")
    assert "multi-statement" in f.message


def test_tx001_autocommit_ok() -> None:
    assert lines("TX001", CIC) == []


def test_tx002_no_tx_statements_err() -> None:
    sql = ("VACUUM accounts;\nALTER SYSTEM SET work_mem = '8MB';\nCREATE DATABASE d;\nDROP DATABASE d;\n"
           "CREATE TABLESPACE t LOCATION '/x';\nDROP TABLESPACE t;\nREINDEX DATABASE d;")
    assert lines("TX002", sql, tx=True) == [1, 2, 3, 4, 5, 6, 7]


def test_tx002_outside_tx_or_analyze_ok() -> None:
    assert lines("TX002", "VACUUM accounts;\nALTER SYSTEM SET work_mem = '8MB';") == []
    assert lines("TX002", "ANALYZE accounts;\nREINDEX TABLE accounts;", tx=True) == []


def test_tx002_add_value_before_pg12_err() -> None:
    assert lines("TX002", "ALTER TYPE mood ADD VALUE 'c';", tx=True, pg=11) == [1]


def test_tx002_add_value_from_pg12_ok() -> None:
    assert lines("TX002", "ALTER TYPE mood ADD VALUE 'c';", tx=True, pg=12) == []


def test_tx002_add_value_type_created_in_same_tx_pg11_ok() -> None:
    assert lines("TX002", "CREATE TYPE t2 AS ENUM ('a');\nALTER TYPE t2 ADD VALUE 'b';", tx=True, pg=11) == []


USE = "ALTER TYPE mood ADD VALUE 'c';\nUPDATE orders SET status = 'c' WHERE id = 1;"


def test_tx003_value_used_in_same_tx_err() -> None:
    assert lines("TX003", USE, tx=True, pg=12) == [2]


def test_tx003_before_pg12_left_to_tx002_ok() -> None:
    assert lines("TX003", USE, tx=True, pg=11) == []


def test_tx003_autocommit_or_new_type_ok() -> None:
    assert lines("TX003", USE, pg=15) == []
    new_type = "CREATE TYPE t2 AS ENUM ('a');\nALTER TYPE t2 ADD VALUE 'b';\nSELECT 'b'::t2;"
    assert lines("TX003", new_type, tx=True) == []


def test_tx004_uncommitted_err() -> None:
    assert lines("TX004", "BEGIN;\nSELECT 1;\n") == [2]
    assert lines("TX004", "BEGIN;\nSELECT 1;\n", tx=True, layout="golang-migrate") == [2]


def test_tx004_committed_or_tool_wrapped_ok() -> None:
    assert lines("TX004", "BEGIN;\nSELECT 1;\nCOMMIT;\n") == []
    assert lines("TX004", "BEGIN;\nSELECT 1;\n", tx=True, layout="flyway") == []


def test_tx005_commit_without_begin_err() -> None:
    assert lines("TX005", "SELECT 1;\nCOMMIT;\nSAVEPOINT a;") == [2, 3]


def test_tx005_ok() -> None:
    assert lines("TX005", "BEGIN;\nSAVEPOINT a;\nRELEASE SAVEPOINT a;\nCOMMIT;") == []
    assert lines("TX005", "SELECT 1;\nCOMMIT;", tx=True, layout="golang-migrate") == []


def test_tx006_nested_begin_err() -> None:
    assert lines("TX006", "BEGIN;\nBEGIN;\nCOMMIT;") == [2]


def test_tx006_sequential_ok() -> None:
    assert lines("TX006", "BEGIN;\nCOMMIT;\nBEGIN;\nCOMMIT;") == []


def test_tx007_wrapped_err() -> None:
    assert lines("TX007", "BEGIN;\nSELECT 1;\nCOMMIT;", tx=True, layout="flyway") == [1, 3]
    assert lines("TX007", "SELECT 1;\nCOMMIT;\nSELECT 2;", tx=True, layout="prisma") == [2]


def test_tx007_implicit_begin_commit_ok() -> None:
    assert lines("TX007", "BEGIN;\nSELECT 1;\nCOMMIT;", tx=True, layout="golang-migrate") == []
    assert lines("TX007", "BEGIN;\nSELECT 1;\nCOMMIT;") == []
