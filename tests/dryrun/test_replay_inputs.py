"""What the dry run accepts besides plain statements, on real PostgreSQL (embedded 18):
a schema-only dump as --setup, COPY ... FROM stdin with inline data, psql meta-commands,
--from N, an extension the embedded server lacks, and the configured statement_timeout.
--setup and --from go through the CLI; the rest share one module-scoped server. Never mocked."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.config import load_config
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox

pytestmark = pytest.mark.postgres

SQLSAFE = [sys.executable, "-m", "sqlsafe"]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dryrun_tests"
# pg_dump --schema-only --no-owner --no-privileges of PostgreSQL 18.6 (with its \restrict
# lines, SET statements and set_config('search_path', '', false)).
SCHEMA_DUMP = FIXTURES / "schema_only_dump.sql"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        yield sb


def _cli(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([*SQLSAFE, "dry-run", *args, "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def _locks(stmt: dict[str, Any]) -> set[tuple[str, str]]:
    return {(lock["relation"], lock["mode"]) for lock in stmt["locks"]}


# -- --setup ------------------------------------------------------------------------------------


def test_setup_dump_tables_exist_before_the_first_migration(tmp_path: Path) -> None:
    assert "\\restrict" in SCHEMA_DUMP.read_text()  # a dump as pg_dump 18 writes it
    write_tree(tmp_path, {
        "001_ship.sql": (
            "ALTER TABLE orders ADD COLUMN note text;\n"
            "CREATE INDEX customers_email_lower ON customers (lower(email));\n"
            # unqualified: the dump's set_config('search_path', '', false) must not leak
            "CREATE TABLE shipments (id int PRIMARY KEY, order_id bigint REFERENCES orders (id));\n"
            "ALTER TABLE billing.invoices ALTER COLUMN amount SET NOT NULL;\n"
        ),
    })
    # --fail-on never: this test is about the replay, not about the lint findings it carries
    code, out, err = _cli(str(tmp_path), "--setup", str(SCHEMA_DUMP), "--fail-on", "never")
    assert code == 0, err
    (migration,) = out["migrations"]
    assert migration["status"] == "applied", migration["error"]
    note, index, create, not_null = migration["statements"]
    # Tables from the dump are existing tables: their locks are reported.
    assert _locks(note) == {("public.orders", "AccessExclusiveLock")}
    assert ("public.customers", "ShareLock") in _locks(index)
    assert ("public.orders", "ShareRowExclusiveLock") in _locks(create)
    assert not any(rel == "public.shipments" for rel, _ in _locks(create))  # new, not existing
    assert ("billing.invoices", "AccessExclusiveLock") in _locks(not_null)
    catalog = migration["catalog"]
    assert "table public.shipments" in catalog["created"]
    assert "column public.orders.note" in catalog["created"]
    assert not any(key.startswith(("table public.orders", "table public.customers",
                                   "table billing.invoices")) for key in catalog["created"])
    assert not out.get("notes"), out.get("notes")  # \restrict needs no note


# -- COPY ... FROM stdin ------------------------------------------------------------------------


def test_copy_from_stdin_with_inline_data(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_copy.sql": (
            "CREATE TABLE people (id int PRIMARY KEY, name text);\n"
            "COPY people (id, name) FROM stdin;\n"
            "1\tada\n"
            "2\tgrace\n"
            "3\t\\N\n"
            "\\.\n"
            "INSERT INTO people VALUES (4, 'linus');\n"
        ),
    })
    result = replay(fresh, root)
    (migration,) = result.migrations
    assert migration.status == "applied", migration.error
    assert [s.line for s in migration.statements] == [1, 2, 7]
    assert migration.statements[1].rows == 3
    # a COPY cannot be rerun inside BEGIN ... ROLLBACK: checked on a clone, data included
    assert migration.idempotent is False
    with fresh.connect() as conn:
        rows = conn.execute("SELECT id, name FROM people ORDER BY id").fetchall()
    assert rows == [(1, "ada"), (2, "grace"), (3, None), (4, "linus")]


# -- psql meta-commands -------------------------------------------------------------------------


def test_meta_commands_set_echo_ignored_include_noted(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_meta.sql": (
            "\\set ON_ERROR_STOP on\n"
            "\\echo creating m\n"
            "CREATE TABLE m (id int);\n"
            "\\i other.sql\n"
            "INSERT INTO m VALUES (1);\n"
        ),
    })
    result = replay(fresh, root, check_idempotency=False)
    (migration,) = result.migrations
    assert migration.status == "applied", migration.error
    assert [s.line for s in migration.statements] == [3, 5]
    assert [s.sql.split()[0] for s in migration.statements] == ["CREATE", "INSERT"]
    (note,) = result.notes
    assert "001_meta.sql:4" in note and "\\i" in note, note
    assert result.to_json()["notes"] == [note]
    with fresh.connect() as conn:
        assert conn.execute("SELECT count(*) FROM m").fetchone() == (1,)


# -- --from N -----------------------------------------------------------------------------------


def test_from_n_applies_the_first_n_without_observing(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "001_t.sql": "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 10);\n",
        "002_idx.sql": "CREATE INDEX t_id ON t (id);\n",
        # runs only if 001 and 002 really were applied
        "003_more.sql": "ALTER TABLE t ADD COLUMN c int;\nDROP INDEX t_id;\n",
    })
    code, out, err = _cli(str(tmp_path), "--from", "2", "--fail-on", "never")
    assert code == 0, err
    first, second, third = out["migrations"]
    for pre in (first, second):
        assert pre["status"] == "applied"
        assert pre["pre_applied"] is True
        assert pre["statements"] == []
        assert pre["idempotent"] is None
    assert "pre_applied" not in third
    assert third["status"] == "applied", third["error"]
    add, drop = third["statements"]
    assert _locks(add) == {("public.t", "AccessExclusiveLock")}  # t is an existing table
    assert ("public.t", "AccessExclusiveLock") in _locks(drop)
    assert third["idempotent"] is False
    assert "index public.t_id" in third["catalog"]["dropped"]


# -- an extension the embedded server lacks -----------------------------------------------------


def test_missing_extension_is_a_sandbox_gap(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_ext.sql": ("CREATE TABLE k (id int);\nCREATE EXTENSION pgcrypto;\n"
                        "CREATE TABLE after (id int);\n"),
        "002_next.sql": "CREATE TABLE later (id int);\n",
    })
    with fresh.connect() as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgcrypto'").fetchone()
    result = replay(fresh, root, check_idempotency=False)
    first = result.migrations[0]
    if available == (1,):
        assert first.status == "applied", first.error
        with fresh.connect() as conn:
            conn.execute("DROP EXTENSION pgcrypto")
        pytest.skip("the embedded server ships pgcrypto: no sandbox gap to report")
    assert [m.status for m in result.migrations] == ["failed", "skipped"]
    assert first.error is not None and first.error.line == 2
    gap = first.error.sandbox_gap
    assert gap is not None and "pgcrypto" in gap
    assert re.search(r"--engine (docker|local)\b", gap), gap
    as_json = result.to_json()["migrations"][0]["error"]
    assert as_json["sandbox_gap"] == gap and as_json["line"] == 2


# -- statement_timeout from the config ----------------------------------------------------------


def test_statement_timeout_from_config_stops_a_slow_statement(fresh: Sandbox,
                                                              tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        ".sqlsafe.toml": "statement-timeout-ms = 200\n",
        "migrations/001_a.sql": ("CREATE TABLE a (id int);\n\nSELECT pg_sleep(5);\n"
                                 "CREATE TABLE b (id int);\n"),
        "migrations/002_c.sql": "CREATE TABLE c (id int);\n",
    })
    config = load_config(None, root / "migrations").merged(pg_version=18)
    assert config.statement_timeout_ms == 200
    started = time.monotonic()
    result = replay(fresh, root / "migrations", config)
    assert time.monotonic() - started < 4.0  # pg_sleep(5) did not run to its end
    assert [m.status for m in result.migrations] == ["failed", "skipped"]
    first = result.migrations[0]
    assert first.error is not None
    assert first.error.sqlstate == "57014"
    assert first.error.line == 3
    assert "statement timeout" in first.error.message
    assert [s.line for s in first.statements] == [1, 3]
    assert first.statements[1].duration_ms < 2000
