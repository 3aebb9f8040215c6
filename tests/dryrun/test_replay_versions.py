"""The core replay checks on both real servers: the embedded PostgreSQL 18 and a local
PostgreSQL 15 (skipped where its binaries are missing). One server per engine for the module;
the failure case goes through the CLI, which starts its own server of the same engine.
Never mocked."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dryrun_helpers import LOCAL_MAJOR, replay, write_tree
from dryrun_helpers import needs_local as local_needs

from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.result import StatementResult
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox
from sqlsafe.locks import rank

pytestmark = pytest.mark.postgres

SQLSAFE = [sys.executable, "-m", "sqlsafe"]


_needs_local = local_needs()
ENGINES = [
    pytest.param(("embedded", sandbox_module.EMBEDDED_MAJOR), id="embedded18"),
    pytest.param(("local", LOCAL_MAJOR), id="local15", marks=_needs_local),
]


@pytest.fixture(scope="module", params=ENGINES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    engine, major = request.param
    with open_sandbox(engine, pg_version=major) as sb:
        assert sb.server_version_num // 10000 == major
        yield sb


def _strongest(stmt: StatementResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for lock in stmt.locks:
        if rank(lock.mode) > rank(out.get(lock.relation, "")):
            out[lock.relation] = lock.mode
    return out


_SETUP = (
    "CREATE TABLE p (id int PRIMARY KEY);\n"
    "CREATE TABLE t (id int, pid int);\n"
    "INSERT INTO p SELECT generate_series(1, 200);\n"
    "INSERT INTO t SELECT i, i FROM generate_series(1, 200) i;\n"
)

# (statement(s) of the observed migration, the statement whose locks count (0-based),
#  strongest mode expected per table, whether public.t is rewritten)
LOCK_CASES = [
    pytest.param(["ALTER TABLE t ADD COLUMN c int;"], 0,
                 {"public.t": "AccessExclusiveLock"}, False, id="add-column"),
    pytest.param(["CREATE INDEX t_id ON t (id);"], 0,
                 {"public.t": "ShareLock"}, False, id="create-index"),
    pytest.param(["CREATE INDEX CONCURRENTLY t_id ON t (id);"], 0,
                 {"public.t": "ShareUpdateExclusiveLock"}, False, id="create-index-concurrently"),
    pytest.param(["ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (pid) REFERENCES p (id);"], 0,
                 {"public.t": "ShareRowExclusiveLock", "public.p": "ShareRowExclusiveLock"},
                 False, id="add-foreign-key"),
    pytest.param(["ALTER TABLE t ALTER COLUMN id TYPE bigint;"], 0,
                 {"public.t": "AccessExclusiveLock"}, True, id="type-int-to-bigint"),
    pytest.param(["ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (pid) REFERENCES p (id) "
                  "NOT VALID;",
                  "ALTER TABLE t VALIDATE CONSTRAINT t_fk;"], 1,
                 {"public.t": "ShareUpdateExclusiveLock"}, False, id="validate-constraint"),
]


@pytest.mark.parametrize(("statements", "index", "expected", "rewrites"), LOCK_CASES)
def test_observed_lock_modes_and_rewrites(fresh: Sandbox, tmp_path: Path, statements: list[str],
                                          index: int, expected: dict[str, str],
                                          rewrites: bool) -> None:
    root = write_tree(tmp_path, {"001_setup.sql": _SETUP,
                             "002_op.sql": "\n".join(statements) + "\n"})
    result = replay(fresh, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"], \
        result.migrations[1].error
    stmt = result.migrations[1].statements[index]
    assert stmt.line == index + 1
    strongest = _strongest(stmt)
    for relation, mode in expected.items():
        # exactly this mode: neither missed nor stronger than PostgreSQL takes
        assert strongest.get(relation) == mode, (relation, stmt.locks)
    assert list(stmt.rewrites) == (["public.t"] if rewrites else []), stmt.rewrites
    if "CONCURRENTLY" in stmt.sql:
        assert stmt.in_transaction is False  # seen by the watcher, not after the fact
    assert not stmt.discrepancies, stmt.discrepancies


def test_idempotent_true_for_guarded_false_for_unguarded(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_guarded.sql": ("CREATE TABLE IF NOT EXISTS a (id int);\n"
                            "ALTER TABLE a ADD COLUMN IF NOT EXISTS b int;\n"
                            "CREATE INDEX IF NOT EXISTS a_b ON a (b);\n"),
        "002_unguarded.sql": "CREATE TABLE u (id int);\n",
    })
    result = replay(fresh, root)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    guarded, unguarded = result.migrations
    assert guarded.idempotent is True and guarded.idempotency_error is None
    assert unguarded.idempotent is False
    assert 'relation "u" already exists' in (unguarded.idempotency_error or "")
    assert [m["idempotent"] for m in result.to_json()["migrations"]] == [True, False]
    # the second runs left nothing behind: one table u, one column b, one index a_b
    with fresh.connect() as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "ORDER BY relname").fetchall()
    assert rows == [("a",), ("a_b",), ("u",)]


def test_down_that_forgets_a_column_is_caught(fresh: Sandbox, tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "001_t.up.sql": "CREATE TABLE t (id int);\n",
        "001_t.down.sql": "DROP TABLE t;\n",
        "002_cols.up.sql": ("ALTER TABLE t ADD COLUMN forgotten int;\n"
                            "ALTER TABLE t ADD COLUMN d int;\n"),
        "002_cols.down.sql": "ALTER TABLE t DROP COLUMN d;\n",
    })
    result = replay(fresh, root, check_idempotency=False)
    assert [m.status for m in result.migrations] == ["applied", "applied"]
    good, bad = (m.down for m in result.migrations)
    assert good.status == "applied" and good.restores_schema is True and not good.differences
    assert bad.status == "applied"
    assert bad.restores_schema is False
    assert any("public.t.forgotten" in d for d in bad.differences), bad.differences
    assert not any("public.t.d" in d for d in bad.differences), bad.differences
    as_json = result.to_json()["migrations"][1]["down"]
    assert as_json["status"] == "applied" and as_json["restores_schema"] is False
    with fresh.connect() as conn:  # the replay went on from the state after up
        cols = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass "
                            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum").fetchall()
    assert cols == [("id",), ("forgotten",), ("d",)]


@pytest.mark.parametrize("engine_major", ENGINES)
def test_failure_in_the_middle_through_the_cli(tmp_path: Path,
                                               engine_major: tuple[str, int]) -> None:
    engine, major = engine_major
    write_tree(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2);\n",
        "002_b.sql": ("ALTER TABLE a ADD COLUMN b int;\n"
                      "CREATE INDEX a_b ON a (b);\n"
                      "INSERT INTO a (id) VALUES ('not a number');\n"
                      "CREATE TABLE never (id int);\n"),
        "003_c.sql": "CREATE TABLE c (id int);\n",
    })
    proc = subprocess.run([*SQLSAFE, "dry-run", str(tmp_path), "--engine", engine,
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["server"]["engine"] == engine
    if engine == "embedded":
        assert out["server"]["version"].startswith(f"{major}.")
    else:  # the local engine takes the newest binaries installed
        newest = sandbox_module._local_bindir(None).major
        assert out["server"]["version"].startswith(f"{newest}.")
    first, failed, skipped = out["migrations"]
    statuses = [first["status"], failed["status"], skipped["status"]]
    assert statuses == ["applied", "failed", "skipped"]
    # what came before the failure is still reported
    assert first["idempotent"] is False and "table public.a" in first["catalog"]["created"]
    assert [s["line"] for s in first["statements"]] == [1, 2]
    assert first["statements"][1]["rows"] == 2
    assert failed["error"]["line"] == 3
    assert failed["error"]["sqlstate"] == "22P02"
    assert "integer" in failed["error"]["message"]
    lines = [s["line"] for s in failed["statements"]]
    assert lines == [1, 2, 3]  # line 4 never ran
    add, index, bad = failed["statements"]
    assert add["locks"] == [{"relation": "public.a", "mode": "AccessExclusiveLock"}]
    assert {"relation": "public.a", "mode": "ShareLock"} in index["locks"]
    assert add["error"] is None and index["error"] is None
    assert bad["error"]["line"] == 3
    # a plain file runs as psql -f does (each statement commits): what ran before line 3 stays
    assert failed["catalog"]["created"] == ["column public.a.b", "index public.a_b"]
    assert skipped["statements"] == [] and skipped["error"] is None
    assert skipped["idempotent"] is None
