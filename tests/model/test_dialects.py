"""Other dialects through sqlglot: the dialect-neutral rules apply, PostgreSQL lock rules don't."""

from __future__ import annotations

import pytest

from sqlsafe.config import Config, ConfigError, from_mapping
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section


def _lint(sql: str, dialect: str, select: tuple[str, ...] = ()) -> list[tuple[int, int, str]]:
    mig = Migration("001_x.sql", None, "file", "1", "x", Section("001_x.sql", sql))
    result = lint(DiscoveryResult((mig,)), Config(dialect=dialect, select=select))
    return [(f.span.line, f.span.column, f.code) for f in result.findings]


def test_mysql_destructive_and_compatibility_rules_err() -> None:
    sql = ("-- Änderung für 日本\n"
           "ALTER TABLE users ADD COLUMN age INT NOT NULL;\n"
           "  DROP TABLE old_sessions;\n")
    got = _lint(sql, "mysql", select=("DS001", "CP001"))
    assert got == [(2, 1, "CP001"), (3, 3, "DS001")]


def test_mysql_skips_postgres_lock_rules_ok() -> None:
    sql = "CREATE INDEX users_email ON users (email);\nALTER TABLE users ADD COLUMN x INT;\n"
    assert _lint(sql, "mysql", select=("LK001", "TO001")) == []
    # the same SQL as PostgreSQL is flagged
    assert {c for _, _, c in _lint(sql, "postgres", select=("LK001", "TO001"))} == {"LK001", "TO001"}


def test_sqlite_syntax_error_has_a_position_err() -> None:
    got = _lint("CREATE TABLE t (a int;\nDROP TABLE u;\n", "sqlite", select=("SX001", "DS001"))
    codes = [c for _, _, c in got]
    assert "DS001" in codes  # the statement after the broken one is still checked
    assert any(c == "SX001" and line == 1 for line, _, c in got)


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown dialect"):
        from_mapping({"dialect": "klingon"}, "pyproject.toml")
