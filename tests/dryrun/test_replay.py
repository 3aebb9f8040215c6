"""The replay on real PostgreSQL: statuses, error lines, transaction semantics per layout,
observed locks, idempotency and down round trips. Never mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        yield sb


def test_failure_in_the_middle_stops_with_line_and_skips_the_rest(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\n",
        "002_b.sql": "CREATE TABLE b (id int);\n\nINSERT INTO b (id)\n  VALUES (nope);\n",
        "003_c.sql": "CREATE TABLE c (id int);\n",
    })
    result = replay(fresh, root)
    assert [m.status for m in result.migrations] == ["applied", "failed", "skipped"]
    failed = result.migrations[1]
    assert failed.error is not None and failed.error.line == 4
    assert 'column "nope" does not exist' in failed.error.message  # line from the position
    assert failed.error.sqlstate == "42703"
    assert result.to_json()["migrations"][1]["error"]["line"] == 4


def test_failing_wrapped_migration_runs_once(fresh: Sandbox, tmp_path: Path) -> None:
    # A wrapped file goes to the server as one message; when a statement fails, what ran
    # before it is reported from that message, not run a second time. A sequence is not
    # rolled back, so it counts the runs.
    root = write_tree(tmp_path, {
        "prisma/migrations/20240101000000_a/migration.sql":
            "CREATE SEQUENCE runs;\nCREATE TABLE t (id int);\n",
        "prisma/migrations/20240102000000_b/migration.sql":
            "SELECT nextval('runs');\nINSERT INTO t VALUES (1);\n\n"
            "INSERT INTO t (id)\n  VALUES (nope);\n",
        "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    })
    result = replay(fresh, root / "prisma" / "migrations")
    assert [m.status for m in result.migrations] == ["applied", "failed"]
    failed = result.migrations[1]
    assert failed.error is not None and failed.error.line == 5  # from the error's position
    assert failed.error.sqlstate == "42703"
    ran = failed.statements
    assert [s.line for s in ran] == [1, 2, 4] and [s.error is None for s in ran] == [True, True, False]
    assert ran[1].rows == 1 and ("public.t", "RowExclusiveLock") in {(lk.relation, lk.mode) for lk in ran[1].locks}
    with fresh.connect() as conn:
        assert conn.execute("SELECT last_value, is_called FROM runs").fetchone() == (1, True)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_observed_locks_add_column_index_fk_type_validate(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_setup.sql": "CREATE TABLE p (id int PRIMARY KEY);\nCREATE TABLE t (id int, pid int, v varchar(5));\n",
        "002_ops.sql": (
            "ALTER TABLE t ADD COLUMN c int;\n"
            "CREATE INDEX t_id ON t (id);\n"
            "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (pid) REFERENCES p (id) NOT VALID;\n"
            "ALTER TABLE t ALTER COLUMN id TYPE bigint;\n"
            "ALTER TABLE t VALIDATE CONSTRAINT t_fk;\n"
        ),
    })
    result = replay(fresh, root, check_idempotency=False)
    stmts = result.migrations[1].statements
    strongest = [{(lk.relation, lk.mode) for lk in s.locks} for s in stmts]
    assert ("public.t", "AccessExclusiveLock") in strongest[0]
    assert ("public.t", "ShareLock") in strongest[1]
    assert {("public.t", "ShareRowExclusiveLock"), ("public.p", "ShareRowExclusiveLock")} <= strongest[2]
    assert "public.t" in stmts[3].rewrites  # int -> bigint rewrites
    assert ("public.t", "ShareUpdateExclusiveLock") in strongest[4]
    assert all(not s.discrepancies for s in stmts), [s.discrepancies for s in stmts]


def test_create_index_concurrently_seen_by_the_watcher(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_t.sql": "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 1000);\n",
        "002_i.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    })
    result = replay(fresh, root, check_idempotency=False)
    (stmt,) = result.migrations[1].statements
    assert stmt.in_transaction is False
    assert ("public.t", "ShareUpdateExclusiveLock") in {(lk.relation, lk.mode) for lk in stmt.locks}


def test_prisma_cic_fails_where_dbmate_no_transaction_succeeds(fresh: Sandbox, tmp_path: Path) -> None:
    # Prisma sends migration.sql as one simple query: with two statements that is an implicit
    # transaction block and CONCURRENTLY fails; alone in its file it runs (migration 3).
    prisma = write_tree(tmp_path / "p", {
        "prisma/migrations/20240101000000_init/migration.sql": "CREATE TABLE t (id int);\n",
        "prisma/migrations/20240102000000_idx/migration.sql":
            "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    })
    result = replay(fresh, prisma / "prisma" / "migrations", check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "failed"]
    assert "cannot run inside a transaction block" in (result.migrations[1].error.message or "")
    with fresh.connect() as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    dbmate = write_tree(tmp_path / "d", {
        "db/migrations/20240101000000_init.sql": "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n",
        "db/migrations/20240102000000_idx.sql": "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n-- migrate:down\nDROP INDEX t_id;\n",
    })
    result = replay(fresh, dbmate / "db" / "migrations", check_idempotency=False, check_down=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"], result.migrations[1].error
    with fresh.connect() as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    alone = write_tree(tmp_path / "a", {
        "prisma/migrations/20240101000000_init/migration.sql": "CREATE TABLE t (id int);\n",
        "prisma/migrations/20240102000000_idx/migration.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    })
    result = replay(fresh, alone / "prisma" / "migrations", check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"], result.migrations[1].error


def test_search_path_set_by_a_migration_changes_no_definition(fresh: Sandbox,
                                                              tmp_path: Path) -> None:
    # A default's text names the sequence without its schema once that schema is on the
    # search_path. A migration that sets the session's search_path must not make an untouched
    # default look altered when a later migration reads its table again, and the down check
    # (which reads the catalog between the down and the up again, in one transaction) must
    # leave the migration's own search_path to the statements after it.
    root = write_tree(tmp_path, {
        "db/migrations/001_init.sql":
            "-- migrate:up\nCREATE SCHEMA app;\nCREATE SEQUENCE app.seq;\n"
            "CREATE TABLE app.t (id bigint DEFAULT nextval('app.seq'), v int);\n"
            "-- migrate:down\nDROP SCHEMA app CASCADE;\n",
        "db/migrations/002_path.sql":
            "-- migrate:up\nSET search_path = app, public;\n"
            "-- migrate:down\nRESET search_path;\n",
        "db/migrations/003_column.sql":
            "-- migrate:up\nALTER TABLE t ADD COLUMN w int;\n"
            "-- migrate:down\nALTER TABLE t DROP COLUMN w;\n",
    })
    try:
        result = replay(fresh, root / "db" / "migrations")
        assert [m.status for m in result.migrations] == ["applied"] * 3
        third = result.migrations[2]
        assert third.catalog.created == ("column app.t.w",) and third.catalog.altered == ()
        assert third.down.status == "applied" and third.down.restores_schema, third.down
        # 003 leans on 002's search_path: fine in one run, not in a deploy that starts at 003.
        notes = [n for n in result.notes if "SET search_path lasts for the session" in n]
        assert len(notes) == 1 and "002_path.sql:2:" in notes[0], result.notes
    finally:
        with fresh.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS app CASCADE")


def test_catalog_reads_leave_the_sessions_plan_cache_mode(fresh: Sandbox,
                                                         tmp_path: Path) -> None:
    # The replay reads the catalog with plan_cache_mode forced to generic plans, as a local
    # setting of its own messages: each migration, its re-run and its down check (which reads
    # the catalog inside the down's transaction) must see the session's value, its own SET
    # included.
    def expect(mode: str) -> str:
        return ("DO $$ BEGIN IF current_setting('plan_cache_mode') <> '" + mode + "' THEN "
                "RAISE EXCEPTION 'plan_cache_mode is %', current_setting('plan_cache_mode'); "
                "END IF; END $$;\n")

    root = write_tree(tmp_path, {
        "db/migrations/001_init.sql":
            "-- migrate:up\nCREATE TABLE IF NOT EXISTS t (id int);\n" + expect("auto")
            + "CREATE INDEX IF NOT EXISTS t_id ON t (id);\n" + expect("auto")
            + "-- migrate:down\n" + expect("auto") + "DROP TABLE t;\n" + expect("auto"),
        "db/migrations/002_mode.sql":
            "-- migrate:up\nSET plan_cache_mode = force_custom_plan;\n"
            "ALTER TABLE t ADD COLUMN IF NOT EXISTS v int;\n" + expect("force_custom_plan")
            + "-- migrate:down\nALTER TABLE t DROP COLUMN v;\n" + expect("force_custom_plan"),
        "db/migrations/003_after.sql":
            "-- migrate:up\n" + expect("force_custom_plan")
            + "ALTER TABLE t ADD COLUMN IF NOT EXISTS w int;\n" + expect("force_custom_plan")
            + "-- migrate:down\nALTER TABLE t DROP COLUMN w;\n" + expect("force_custom_plan"),
    })
    try:
        result = replay(fresh, root / "db" / "migrations")
        assert [m.status for m in result.migrations] == ["applied"] * 3, \
            [m.error for m in result.migrations]
        assert [m.idempotent for m in result.migrations] == [True] * 3, \
            [m.idempotency_error for m in result.migrations]
        downs = [m.down for m in result.migrations]
        assert all(d is not None and d.status == "applied" and d.restores_schema
                   for d in downs), downs
    finally:
        with fresh.connect() as conn:
            conn.execute("DROP TABLE IF EXISTS t")


def test_idempotency_true_and_false(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id int);\n",
        "002_b.sql": "CREATE TABLE b (id int);\n",
        "003_c.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS b_id ON b (id);\n",
    })
    result = replay(fresh, root)
    assert [m.idempotent for m in result.migrations] == [True, False, True]
    assert 'relation "b" already exists' in (result.migrations[1].idempotency_error or "")
    # the checks did not disturb the replay
    assert "table public.b" in result.migrations[1].catalog.created


def test_down_that_does_not_restore_the_schema_is_caught(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_t.up.sql": "CREATE TABLE t (id int);\n",
        "001_t.down.sql": "DROP TABLE t;\n",
        "002_c.up.sql": "ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX t_c ON t (c);\n",
        "002_c.down.sql": "DROP INDEX t_c;\n",
    })
    result = replay(fresh, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    assert result.migrations[0].down.status == "applied"
    assert result.migrations[0].down.restores_schema is True
    down = result.migrations[1].down
    assert down.restores_schema is False
    assert any("column public.t.c" in d for d in down.differences), down.differences
    with fresh.connect() as conn:  # the replay continued from the state after up
        assert conn.execute("SELECT to_regclass('t_c') IS NOT NULL").fetchone() == (True,)


def test_deferred_constraint_failing_at_commit_fails_the_migration(fresh: Sandbox,
                                                                  tmp_path: Path) -> None:
    # Prisma runs a multi-statement file in one transaction; a DEFERRABLE foreign key is
    # checked at its COMMIT. That failure is the migration's, reported like any other.
    root = write_tree(tmp_path, {
        "prisma/migrations/20240101000000_a/migration.sql":
            "CREATE TABLE p (id int PRIMARY KEY);\n"
            "CREATE TABLE c (id int, pid int REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);\n",
        "prisma/migrations/20240102000000_b/migration.sql":
            "INSERT INTO c VALUES (1, 42);\nINSERT INTO c VALUES (2, 43);\n",
        "prisma/migrations/20240103000000_c/migration.sql": "INSERT INTO p VALUES (1);\n",
        "prisma/migrations/migration_lock.toml": 'provider = "postgresql"\n',
    })
    result = replay(fresh, root / "prisma" / "migrations")
    assert [m.status for m in result.migrations] == ["applied", "failed", "skipped"]
    failed = result.migrations[1]
    assert failed.error is not None and failed.error.sqlstate == "23503"
    assert failed.error.line == 2 and "when the transaction committed" in failed.error.message
    assert [s.line for s in failed.statements] == [1, 2]  # both ran; the COMMIT failed
    with fresh.connect() as conn:  # rolled back: nothing of the failed migration is left
        assert conn.execute("SELECT count(*) FROM c").fetchone() == (0,)


def test_only_session_level_name_and_role_settings_are_noted() -> None:
    from sqlsafe.dryrun.replay import _session_settings
    from sqlsafe.model import Section
    from sqlsafe.parse import parse_section

    sql = ("SET search_path = app;\nSET LOCAL search_path = app;\nSET lock_timeout = '1s';\n"
           "SET ROLE admin;\nRESET search_path;\nSET SESSION AUTHORIZATION bob;\n"
           "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nset Search_Path to x;\n")
    statements = parse_section(Section("x.sql", sql)).statements
    assert _session_settings(statements) == [(1, "search_path"), (4, "role"),
                                             (6, "session_authorization"), (8, "search_path")]


def test_missing_object_on_an_empty_start_carries_a_hint(fresh: Sandbox, tmp_path: Path) -> None:
    # A set that starts after objects production has (a platform's schema, migrations kept
    # elsewhere) fails on the empty sandbox; the error says how to give it that start.
    root = write_tree(tmp_path / "a", {
        "001_users.sql": "ALTER TABLE auth.users ADD COLUMN nickname text;\n",
    })
    result = replay(fresh, root, check_idempotency=False)
    (failed,) = result.migrations
    assert failed.error is not None and failed.error.sqlstate in ("3F000", "42P01")
    assert failed.error.hint is not None and "--setup" in failed.error.hint
    assert "--setup" in failed.to_json()["error"]["hint"]
    # Not for an error of the migration itself, nor once a --setup gave the start.
    broken = write_tree(tmp_path / "b", {"001_bad.sql": "CREATE TABLE t (a int, a int);\n"})
    (dup,) = replay(fresh, broken, check_idempotency=False).migrations
    assert dup.error is not None and dup.error.hint is None
    setup = tmp_path / "prod.sql"
    setup.write_text("CREATE SCHEMA IF NOT EXISTS auth;\n")
    try:
        (again,) = replay(fresh, root, check_idempotency=False, setup=str(setup)).migrations
        assert again.error is not None and again.error.sqlstate == "42P01"
        assert again.error.hint is None
    finally:
        with fresh.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS auth CASCADE")


def test_long_qualified_names_are_not_cut_in_the_catalog_diff(fresh: Sandbox, tmp_path: Path) -> None:
    # Two columns whose qualified names share their first 63 bytes: a snapshot query whose
    # name column were of type ``name`` would cut both to the same key.
    table = "a_table_with_a_rather_long_name"
    cols = ["a_column_with_an_even_longer_name_one", "a_column_with_an_even_longer_name_two"]
    root = write_tree(tmp_path, {
        # The first file runs statement by statement (SCHEMA_LOCKED after it), the second,
        # one statement, as one message (SCHEMA_HELD).
        "001_t.sql": f"CREATE TABLE {table} (id int);\nALTER TABLE {table} ADD COLUMN {cols[0]} int;\n",
        "002_t.sql": f"ALTER TABLE {table} ADD COLUMN {cols[1]} int;\n",
    })
    result = replay(fresh, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    assert f"column public.{table}.{cols[0]}" in result.migrations[0].catalog.created
    assert result.migrations[1].catalog.created == (f"column public.{table}.{cols[1]}",)
