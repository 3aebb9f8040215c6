"""The WAL each observed statement writes, read from the server's insert position around it,
on every path a statement can take: a wrapped file sent as one message, a file run statement
by statement, and a statement that runs outside a transaction block (watched)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.dryrun.replay import wal_between
from sqlsafe.dryrun.result import StatementResult
from sqlsafe.dryrun.sandbox import Sandbox

pytestmark = pytest.mark.postgres

ROWS = 20_000  # a heap tuple of one int is ~30 bytes of WAL: well over 400 kB in all


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _statements(sandbox: Sandbox, tmp_path: Path, files: dict[str, str],
                ) -> list[StatementResult]:
    result = replay(sandbox, write_tree(tmp_path, files), check_idempotency=False,
                    check_down=False)
    assert all(m.status == "applied" for m in result.migrations), \
        [(m.path, m.error) for m in result.migrations]
    return [s for m in result.migrations for s in m.statements]


def _one(stmts: list[StatementResult], word: str) -> StatementResult:
    (found,) = [s for s in stmts if word in s.sql]
    return found


def test_wal_positions_parse() -> None:
    assert wal_between("0/16B3740", "0/16B3760") == 0x20
    assert wal_between("0/FFFFFFF0", "1/10") == 0x20  # across the 4 GB boundary
    assert wal_between(None, "0/10") is None
    assert wal_between("0/20", "0/10") == 0  # never negative


@pytest.mark.parametrize("wrapped", [True, False], ids=["one-message", "per-statement"])
def test_a_bulk_insert_writes_more_wal_than_a_comment(sandbox: Sandbox, tmp_path: Path,
                                                      wrapped: bool) -> None:
    # golang-migrate files run as one multi-statement query (one transaction: sent as one
    # message); plain numbered files are not wrapped (each statement on its own).
    body = (f"CREATE TABLE IF NOT EXISTS wal_t (a int);\n"
            f"INSERT INTO wal_t SELECT g FROM generate_series(1, {ROWS}) g;\n"
            "COMMENT ON TABLE wal_t IS 'note';\n")
    name = "1_wal.up.sql" if wrapped else "001_wal.sql"
    stmts = _statements(sandbox, tmp_path, {name: body})
    insert, comment = _one(stmts, "INSERT"), _one(stmts, "COMMENT")
    assert insert.in_transaction is wrapped
    assert insert.wal_bytes is not None and insert.wal_bytes > ROWS * 20
    assert comment.wal_bytes is not None and comment.wal_bytes < 20_000
    assert insert.to_json()["wal_bytes"] == insert.wal_bytes


def test_a_concurrent_index_build_is_measured_outside_a_transaction(
        sandbox: Sandbox, tmp_path: Path) -> None:
    stmts = _statements(sandbox, tmp_path, {
        "001_t.sql": (f"CREATE TABLE wal_c (a int);\n"
                      f"INSERT INTO wal_c SELECT g FROM generate_series(1, {ROWS}) g;\n"),
        "002_idx.sql": "CREATE INDEX CONCURRENTLY wal_c_a ON wal_c (a);\n",
    })
    build = _one(stmts, "CONCURRENTLY")
    assert build.in_transaction is False
    # An index over 20,000 ints is some 450 kB of pages, all WAL-logged.
    assert build.wal_bytes is not None and build.wal_bytes > 200_000
