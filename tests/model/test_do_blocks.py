"""Statements inside DO blocks are linted where they stand (peers skip them: squawk#528)."""

from __future__ import annotations

from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section

SQL = """DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'users_email_idx') THEN
    CREATE INDEX users_email_idx ON users (email);
  END IF;
  EXECUTE 'ALTER TABLE users ADD COLUMN nickname text NOT NULL';
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
"""


def _lint(sql: str, select: tuple[str, ...]):
    mig = Migration("001_do.sql", None, "file", "1", "do", Section("001_do.sql", sql))
    return lint(DiscoveryResult((mig,)), Config(select=select))


def test_ddl_inside_do_block_err() -> None:
    result = _lint(SQL, ("LK001", "CP001"))
    got = sorted((f.span.line, f.span.column, f.code) for f in result.findings)
    assert got == [(4, 5, "LK001"), (6, 12, "CP001")]
    assert all(f.fix is None for f in result.findings)
    # the DO statement carries the inner statements' locks
    [info] = result.statements
    assert {(lk.relation, lk.mode) for lk in info.locks} == {("public.users", "AccessExclusiveLock")}


def test_guarded_do_block_is_not_an_idempotency_problem_ok() -> None:
    result = _lint(SQL, ("ID001", "ID003"))
    assert result.findings == ()


def test_table_created_inside_do_block_is_new_ok() -> None:
    sql = ("DO $$ BEGIN CREATE TABLE jobs (id bigint); CREATE INDEX jobs_id ON jobs (id); END $$;\n")
    assert _lint(sql, ("LK001",)).findings == ()
