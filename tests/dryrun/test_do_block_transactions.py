"""A DO block's transaction, as the linter models it, checked against PostgreSQL itself.

Outside a transaction block a DO block is one transaction of its own: a lock one of its
statements takes is held while the next ones run (LK021 flags a slow statement after it) until
the block ends or COMMITs (PostgreSQL 11+), after which the block goes on in a new transaction
without it. Inside a transaction block (the migration tool's) COMMIT in a DO block is refused
('invalid transaction termination', SQLSTATE 2D000): TX002 says the migration will fail, and
the replay runs such a block outside the migration's transaction where production does.
Run on embedded 18 and local 15.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.config import Config
from sqlsafe.dryrun.sandbox import Sandbox
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section

pytestmark = pytest.mark.postgres

PROBE = ("SELECT count(*) INTO n FROM pg_locks WHERE pid = pg_backend_pid() "
         "AND relation = 'items'::regclass AND mode = 'AccessExclusiveLock';")


def _block(with_commit: bool, probes: bool) -> str:
    probe_before = f"  {PROBE}\n  INSERT INTO lock_log VALUES ('before', n);\n" if probes else ""
    probe_after = f"  {PROBE}\n  INSERT INTO lock_log VALUES ('after', n);\n" if probes else ""
    return ("DO $$\nDECLARE n int;\nBEGIN\n"
            "  ALTER TABLE items ADD COLUMN archived boolean;\n"
            + probe_before
            + ("  COMMIT;\n" if with_commit else "")
            + probe_after
            + "  CREATE INDEX items_archived_idx ON items (archived);\nEND\n$$;\n")


def _codes(sql: str, *, wrapped: bool) -> set[str]:
    migration = Migration("001.sql", None, "file", None, "001.sql", Section("001.sql", sql),
                          in_transaction=wrapped)
    result = lint(DiscoveryResult((migration,)), Config(select=("LK021", "TX002", "TX007")))
    return {f.code for f in result.findings}


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _reset(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE IF EXISTS items, lock_log")
    conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
    conn.execute("CREATE TABLE lock_log (phase text, held int)")


@pytest.mark.parametrize("with_commit", [False, True], ids=["one-transaction", "commit"])
def test_locks_held_across_a_do_block_until_it_commits(sandbox: Sandbox,
                                                       with_commit: bool) -> None:
    with sandbox.connect() as conn:  # autocommit: the block runs outside a transaction block
        _reset(conn)
        conn.execute(_block(with_commit, probes=True))
        held = dict(conn.execute("SELECT phase, held FROM lock_log").fetchall())
    assert held["before"] == 1
    assert held["after"] == (0 if with_commit else 1)
    # LK021: the index build runs while ADD COLUMN's lock is still held, or it does not.
    assert ("LK021" in _codes(_block(with_commit, probes=False), wrapped=False)) \
        == bool(held["after"])


def test_commit_in_a_do_block_inside_a_transaction_fails(sandbox: Sandbox) -> None:
    sql = _block(with_commit=True, probes=False)
    with sandbox.connect() as conn:
        _reset(conn)
        conn.execute("BEGIN")
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql)
        conn.execute("ROLLBACK")
    assert raised.value.sqlstate == "2D000"  # invalid_transaction_termination
    assert _codes(sql, wrapped=True) == {"TX002"}  # the DO statement, not its COMMIT
    assert _codes(_block(with_commit=False, probes=False), wrapped=True) == {"LK021"}


def test_replay_runs_a_committing_block_as_production_does(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    # psql runs a plain file statement by statement: the block commits and goes on. The dry
    # run must not wrap it in the transaction it observes other statements in.
    with sandbox.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS items, lock_log")
    root = write_tree(tmp_path, {
        "001_items.sql": "CREATE TABLE items (id int PRIMARY KEY);\n",
        "002_block.sql": _block(with_commit=True, probes=False),
    })
    result = replay(sandbox, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    (block,) = result.migrations[1].statements
    assert ("public.items", "AccessExclusiveLock") in {(lk.relation, lk.mode)
                                                      for lk in block.locks}


def test_replay_runs_a_committing_procedure_as_production_does(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    # Nothing in `CALL archive()` says the procedure commits: the replay learns it from the
    # server (2D000 in the transaction it opened to observe the statement) and runs the call
    # again outside one.
    with sandbox.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS items, lock_log, items_archive")
        conn.execute("DROP PROCEDURE IF EXISTS archive()")
    root = write_tree(tmp_path, {
        "001_items.sql": "CREATE TABLE items (id int PRIMARY KEY);\n"
                         "CREATE PROCEDURE archive() LANGUAGE plpgsql AS $$\n"
                         "BEGIN\n"
                         "  CREATE TABLE items_archive (id int);\n"
                         "  COMMIT;\n"
                         "  ALTER TABLE items ADD COLUMN archived boolean;\n"
                         "END\n$$;\n",
        "002_call.sql": "CALL archive();\n",
    })
    result = replay(sandbox, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"], \
        [m.error for m in result.migrations]
    with sandbox.connect() as conn:
        conn.execute("DROP PROCEDURE IF EXISTS archive()")


PROCEDURES = {
    "commits": "CREATE PROCEDURE archive() LANGUAGE plpgsql AS $$\nBEGIN\n"
               "  CREATE TABLE IF NOT EXISTS items_archive (id int);\n  COMMIT;\nEND\n$$;\n",
    "rolls-back": "CREATE PROCEDURE archive() LANGUAGE plpgsql AS $$\nBEGIN\n"
                  "  ROLLBACK;\nEND\n$$;\n",
    "plain": "CREATE PROCEDURE archive() LANGUAGE plpgsql AS $$\nBEGIN\n"
             "  CREATE TABLE IF NOT EXISTS items_archive (id int);\nEND\n$$;\n",
    "sql": "CREATE PROCEDURE archive() LANGUAGE sql AS $$ SELECT 1 $$;\n",
}


@pytest.mark.parametrize("kind", list(PROCEDURES))
def test_call_in_a_transaction_flagged_exactly_when_the_server_refuses_it(
        sandbox: Sandbox, kind: str) -> None:
    with sandbox.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS items_archive")
        conn.execute("DROP PROCEDURE IF EXISTS archive()")
        conn.execute(PROCEDURES[kind])
        conn.execute("BEGIN")
        try:
            conn.execute("CALL archive()")
            refused = False
        except psycopg.Error as exc:
            assert exc.sqlstate == "2D000", exc
            refused = True
        conn.execute("ROLLBACK")
        conn.execute("DROP PROCEDURE archive()")
    created = Migration("001.sql", None, "file", None, "001.sql",
                        Section("001.sql", PROCEDURES[kind]))
    call = Migration("002.sql", None, "file", None, "002.sql", Section("002.sql", "CALL archive();\n"),
                     in_transaction=True)
    result = lint(DiscoveryResult((created, call)), Config(select=("TX002",)))
    assert any(f.code == "TX002" and f.path == "002.sql" for f in result.findings) == refused


@pytest.mark.parametrize(("inner", "code"), [
    ("CREATE INDEX CONCURRENTLY items_id_idx ON items (id);", "TX001"),
    ("VACUUM items;", "TX002"),
])
def test_statements_refused_in_any_do_block_are_flagged_in_any_file(
        sandbox: Sandbox, inner: str, code: str) -> None:
    sql = f"DO $$\nBEGIN\n  {inner}\nEND\n$$;\n"
    with sandbox.connect() as conn:  # autocommit: not even a transaction block around it
        _reset(conn)
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql)
    assert raised.value.sqlstate == "25001"
    assert "from a function" in str(raised.value)
    migration = Migration("001.sql", None, "file", None, "001.sql", Section("001.sql", sql))
    (finding,) = lint(DiscoveryResult((migration,)), Config(select=(code,))).findings
    assert finding.span.line == 3 and "DO block" in finding.message


def test_a_lock_the_watcher_may_miss_is_no_discrepancy(sandbox: Sandbox, tmp_path: Path) -> None:
    # The committing block runs outside a transaction, watched by polls: the INSERT's ROW
    # EXCLUSIVE on events after the COMMIT lasts too briefly to be seen. Missing it
    # contradicts nothing.
    with sandbox.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS items, lock_log, events")
    root = write_tree(tmp_path, {
        "001_items.sql": "CREATE TABLE items (id int PRIMARY KEY);\n"
                         "CREATE TABLE events (id int);\n",
        "002_block.sql": "DO $$\nBEGIN\n  ALTER TABLE items ADD COLUMN note text;\n  COMMIT;\n"
                         "  INSERT INTO events VALUES (1);\nEND\n$$;\n",
    })
    result = replay(sandbox, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    (block,) = result.migrations[1].statements
    assert ("public.events", "RowExclusiveLock") in block.predicted_locks
    assert not [d for d in block.discrepancies if "took no new lock" in d], block.discrepancies
    # The ALTER's lock, which the watcher makes wait where it can see it, was seen.
    assert ("public.items", "AccessExclusiveLock") in {(lk.relation, lk.mode)
                                                      for lk in block.locks}
