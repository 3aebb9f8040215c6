"""The dry run names each lock by the relation's name when the statement ran, also after the
relation moved without being locked itself.

``ALTER TABLE t SET SCHEMA s`` moves the table's indexes and owned sequences along with it,
and ``ALTER SCHEMA a RENAME TO b`` renames every relation in the schema; neither locks those
relations, so the lock query does not show their new names. A later statement that drops one
must not be reported on its old name. Checked on embedded 18 and local 15, with each file
run statement by statement and as one wrapped transaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.config import Config
from sqlsafe.dryrun.result import DryRunResult
from sqlsafe.dryrun.sandbox import Sandbox

pytestmark = pytest.mark.postgres

FILES = {
    "001_create.sql": (
        "CREATE TABLE foo (id serial PRIMARY KEY, a int);\n"
        "CREATE INDEX foo_a ON foo (a);\n"
        "CREATE INDEX foo_id_a ON foo (id, a);\n"
    ),
    "002_move.sql": (
        "CREATE SCHEMA archive;\n"
        "ALTER TABLE foo SET SCHEMA archive;\n"
        "DROP INDEX archive.foo_a;\n"
        "ALTER SEQUENCE archive.foo_id_seq RESTART WITH 100;\n"
        "ALTER SCHEMA archive RENAME TO attic;\n"
        "DROP INDEX attic.foo_id_a;\n"
    ),
}


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _locks(result: DryRunResult, sql_start: str) -> set[str]:
    (st,) = [st for m in result.migrations for st in m.statements if st.sql.startswith(sql_start)]
    return {lock.relation for lock in st.locks}


@pytest.mark.parametrize("wrapped", [False, True], ids=["per-statement", "one-transaction"])
def test_locks_name_moved_relations_by_their_new_names(sandbox: Sandbox, tmp_path: Path,
                                                       wrapped: bool) -> None:
    root = write_tree(tmp_path, FILES)
    config = Config(pg_version=sandbox.server_version_num // 10000,
                    assume_in_transaction=wrapped)
    try:
        result = replay(sandbox, root, config, check_idempotency=False)
    finally:
        with sandbox.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS archive CASCADE")
            conn.execute("DROP SCHEMA IF EXISTS attic CASCADE")
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    # The statement that moves the table is reported on the table it named.
    assert "public.foo" in _locks(result, "ALTER TABLE foo SET SCHEMA")
    assert "archive.foo_a" in _locks(result, "DROP INDEX archive.foo_a")
    assert "archive.foo_id_seq" in _locks(result, "ALTER SEQUENCE archive.foo_id_seq")
    assert "attic.foo_id_a" in _locks(result, "DROP INDEX attic.foo_id_a")
    stale = {"public.foo_a", "public.foo_id_seq", "archive.foo_id_a"}
    after_move = [(st.sql, lock.relation) for st in result.migrations[1].statements[2:]
                  for lock in st.locks]
    assert after_move
    assert not [(sql, rel) for sql, rel in after_move if rel in stale]
