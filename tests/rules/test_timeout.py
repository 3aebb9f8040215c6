"""Timeout rules: each test enables only the rule under test; `_ok` and `_err` side by side."""

from __future__ import annotations

from helpers import run

T = "CREATE TABLE t (id bigint PRIMARY KEY, a int);\nCREATE TABLE u (id bigint PRIMARY KEY);\n"


def codes(code: str, *sqls: str, **kw: object) -> list[int]:
    return [f.span.line for f in run(code, *sqls, **kw)]  # type: ignore[arg-type]


def test_to001_access_exclusive_err() -> None:
    f = run("TO001", T, "ALTER TABLE t ADD COLUMN d int;")
    assert len(f) == 1 and "every new read and write" in f[0].message


def test_to001_share_row_exclusive_says_writes_err() -> None:
    f = run("TO001", T, "CREATE TRIGGER trg BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();")
    assert len(f) == 1 and "every new write" in f[0].message and "read and write" not in f[0].message


def test_to001_timeout_set_or_new_table_ok() -> None:
    assert codes("TO001", T, "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN d int;") == []
    assert codes("TO001", "CREATE TABLE x (a int);\nALTER TABLE x ADD COLUMN d int;") == []


def test_to001_too_long_timeout_counts_as_none_err() -> None:
    assert codes("TO001", T, "SET lock_timeout = '1min';\nALTER TABLE t ADD COLUMN d int;") == [2]
    assert codes("TO001", T, "SET lock_timeout = '1min';\nALTER TABLE t ADD COLUMN d int;",
                 lock_timeout_max_ms=120_000) == []


def test_to002_slow_blocking_statement_err() -> None:
    assert codes("TO002", T, "ALTER TABLE t ALTER COLUMN a TYPE bigint;") == [1]
    assert codes("TO002", T, "UPDATE t SET a = 0;") == [1]


def test_to002_statement_timeout_or_concurrent_ok() -> None:
    assert codes("TO002", T, "SET statement_timeout = '60s';\nALTER TABLE t ALTER COLUMN a TYPE bigint;") == []
    assert codes("TO002", T, "CREATE INDEX CONCURRENTLY t_a ON t (a);") == []
    assert codes("TO002", T, "UPDATE t SET a = 0 WHERE id = 7;") == []


def test_to003_too_long_err() -> None:
    assert codes("TO003", "SET lock_timeout = '30s';") == [1]
    assert codes("TO003", "SET lock_timeout = 0;") == [1]
    assert codes("TO003", "SELECT set_config('lock_timeout', '1h', false);") == [1]


def test_to003_short_ok() -> None:
    assert codes("TO003", "SET lock_timeout = '2s';") == []
    assert codes("TO003", "SET lock_timeout = '30s';", lock_timeout_max_ms=60_000) == []


def test_to004_session_set_in_transaction_err() -> None:
    f = run("TO004", "SET lock_timeout = '2s';", in_transaction=True)
    assert len(f) == 1 and f[0].fix is not None and f[0].fix.replacement == " LOCAL"


def test_to004_local_or_no_transaction_ok() -> None:
    assert codes("TO004", "SET LOCAL lock_timeout = '2s';", in_transaction=True) == []
    assert codes("TO004", "SET lock_timeout = '2s';") == []


def test_to005_concurrent_build_under_timeout_err() -> None:
    assert codes("TO005", T, "SET statement_timeout = '30s';\nCREATE INDEX CONCURRENTLY t_a ON t (a);") == [2]


def test_to005_no_timeout_ok() -> None:
    assert codes("TO005", T, "SET statement_timeout = 0;\nCREATE INDEX CONCURRENTLY t_a ON t (a);") == []
    assert codes("TO005", T, "CREATE INDEX CONCURRENTLY t_a ON t (a);") == []
