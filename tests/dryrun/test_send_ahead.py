"""A file that runs as one message, and the next file's message sent while the client still
works through the results of the one before (``_Session.send_ahead``): what the dry run
reports must not depend on either. Real PostgreSQL, never mocked; only the replay's own
choice of path is switched off for comparison."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dryrun_helpers import replay, reset_public, write_tree

from sqlsafe.dryrun import replay as replay_module
from sqlsafe.dryrun.sandbox import Sandbox

pytestmark = pytest.mark.postgres

LOCK = 'provider = "postgresql"\n'


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    """Each major the machine has (``fresh`` empties its public schema per test)."""
    return each_major


def prisma(tmp_path: Path, files: list[str]) -> Path:
    """A Prisma set, one folder per file, in the order given."""
    tree = {f"prisma/migrations/202401{i:02d}000000_m{i}/migration.sql": text
            for i, text in enumerate(files, start=1)}
    tree["prisma/migrations/migration_lock.toml"] = LOCK
    return write_tree(tmp_path, tree) / "prisma" / "migrations"


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the files whose message went ahead; "early:" before each one sent while
    the snapshot before it was still being built (on its fingerprints alone)."""
    sent: list[str] = []
    original = replay_module._Session.send_ahead

    def spy(self: Any, unit: Any, *args: Any, **kwargs: Any) -> bool:
        went = original(self, unit, *args, **kwargs)
        if went:
            sent.append(("early:" if kwargs.get("fps") else "") + unit.migration.path)
        return went

    monkeypatch.setattr(replay_module._Session, "send_ahead", spy)
    yield sent


@pytest.fixture
def reruns(monkeypatch: pytest.MonkeyPatch, sends: list[str]) -> list[tuple[str, bool]]:
    """(path, sent) for each check's rerun the replay asked to send as one message
    (``send_rerun``); each one sent also goes into ``sends`` as "rerun:" and its path, so
    that both kinds of sending are in one order."""
    asked: list[tuple[str, bool]] = []
    original = replay_module._Session.send_rerun

    def spy(self: Any, unit: Any, *args: Any) -> bool:
        went = original(self, unit, *args)
        asked.append((unit.migration.path, went))
        if went:
            sends.append("rerun:" + unit.migration.path)
        return went

    monkeypatch.setattr(replay_module._Session, "send_rerun", spy)
    return asked


# Every kind of change the snapshot reads, on each path a file can take: wrapped files of
# several statements, single statements (run in a transaction of their own), a rename (the
# snapshot then follows dependents), a type and a function (the parts no relation lock
# covers), a CONCURRENTLY index (watched from a second connection), a schema moved (not one
# message: its names are read after it), data changes, a composite type altered (its lock
# falls on a relation the snapshot does not show, so it is read by fingerprint after the
# COMMIT, and the next file must wait for that).
RICH = [
    "CREATE TYPE mood AS ENUM ('ok');\n"
    "CREATE TABLE u (id int PRIMARY KEY, name text, m mood);\n"
    "CREATE TABLE p (id int PRIMARY KEY, uid int REFERENCES u (id));\n",
    "CREATE INDEX p_uid ON p (uid);\n",
    "ALTER TYPE mood ADD VALUE 'sad';\n",
    "CREATE TYPE pair AS (a int);\n",
    "ALTER TYPE pair ADD ATTRIBUTE b int;\n",
    "INSERT INTO u VALUES (1, 'a', 'ok');\nINSERT INTO p VALUES (1, 1);\n"
    "UPDATE u SET name = 'b';\n",
    "CREATE VIEW names AS SELECT name FROM u;\nALTER TABLE u RENAME COLUMN name TO label;\n",
    "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "ALTER TABLE p ADD COLUMN n int DEFAULT 1;\n",
    "CREATE INDEX CONCURRENTLY u_label ON u (label);\n",
    "ALTER TABLE p ALTER COLUMN n TYPE bigint;\nCOMMENT ON TABLE p IS 'posts';\n",
    "CREATE SCHEMA arch;\nALTER TABLE p SET SCHEMA arch;\n",
    "DROP VIEW names;\nDROP TABLE arch.p;\n",
]

_TIMES = {"duration_ms", "wal_bytes", "startup_ms", "setup_ms", "replay_ms", "timing"}


def _without_times(value: Any) -> Any:
    """The JSON report less what is measured (durations, WAL bytes)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _report(fresh: Sandbox, root: Path, checks: bool = False) -> Any:
    with fresh.connect() as conn:  # RICH's state, from an earlier run
        conn.execute("DROP SCHEMA IF EXISTS arch CASCADE")
    reset_public(fresh)
    result = replay(fresh, root, check_idempotency=checks, check_down=False)
    out = _without_times(result.to_json())
    for m in out["migrations"]:
        m["path"] = Path(m["path"]).parent.name  # the tmp_path differs between runs
        for f in m.get("findings", []):
            f["path"] = m["path"]
    return out


@pytest.mark.parametrize("switch_off", ["send_ahead", "_batchable"])
def test_the_report_does_not_depend_on_the_path(fresh: Sandbox, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                sends: list[str], switch_off: str) -> None:
    root = prisma(tmp_path / "a", RICH)
    fast = _report(fresh, root)
    assert all(m["status"] == "applied" for m in fast["migrations"]), fast["migrations"]
    assert len(sends) >= 6, sends  # most files went ahead of their results
    early = [p for p in sends if p.startswith("early:")]
    assert early and len(early) < len(sends), sends  # both ways (not after the rename)
    monkeypatch.setattr(replay_module._Session, switch_off, lambda *args, **kwargs: False)
    slow = _report(fresh, prisma(tmp_path / "b", RICH))
    assert slow == fast


def test_the_report_with_checks_does_not_depend_on_the_path(
        fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sends: list[str]) -> None:
    """With the idempotency check, each rerun goes as one message before the snapshot it
    is compared with is built, and the next file after the rerun's answers: the same JSON
    report as with every rerun statement by statement and nothing sent ahead."""
    fast = _report(fresh, prisma(tmp_path / "a", RICH), checks=True)
    assert all(m["status"] == "applied" for m in fast["migrations"]), fast["migrations"]
    assert len(sends) >= 4, sends
    monkeypatch.setattr(replay_module._Session, "send_rerun", lambda *args, **kwargs: False)
    sends.clear()
    slow = _report(fresh, prisma(tmp_path / "b", RICH), checks=True)
    assert sends == []
    assert slow == fast


# Files of relation statements alone (SCHEMA_HELD_LEAN's) that change a function or a type
# after all: a DROP TABLE ... CASCADE takes along a function of the table's row type and a
# domain over it, which no relation lock shows.
CASCADES = [
    "CREATE TABLE parcel (id int);\nCREATE TABLE crate (id int);\n"
    "CREATE FUNCTION weight(parcel) RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "CREATE DOMAIN packed AS crate;\n",
    "ALTER TABLE parcel ADD COLUMN size int;\n",
    "DROP TABLE parcel CASCADE;\n",
    "DROP TABLE crate CASCADE;\n",
]


@pytest.mark.parametrize("lean", [True, False])
def test_the_lean_read_gives_the_report_the_full_read_gives(
        fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        lean: bool) -> None:
    """SCHEMA_HELD_LEAN after every file (``lean``), or after none: the same report. After a
    file of relation statements that dropped a function or a type, the parts it left out are
    read on their own before the next file runs."""
    files = RICH + CASCADES
    full = _report(fresh, prisma(tmp_path / "full", files))
    assert all(m["status"] == "applied" for m in full["migrations"]), full["migrations"]
    dropped = [m["catalog"]["dropped"] for m in full["migrations"][-2:]]
    assert any(key.startswith("function public.weight(") for key in dropped[0]), dropped
    assert "type public.packed" in dropped[1], dropped
    reads: list[str] = []
    read_text = replay_module._read_text

    def spy(conn: Any, sql: str, keyed: bool = False) -> Any:
        reads.append(sql)
        return read_text(conn, sql, keyed)

    monkeypatch.setattr(replay_module, "_read_text", spy)
    monkeypatch.setattr(replay_module, "_lean_will_do", lambda statements: lean)
    assert _report(fresh, prisma(tmp_path / "lean", files)) == full
    followed = [sql for sql in reads if sql.startswith("EXECUTE sqlsafe_schema_locked('{}'")]
    # Lean, the two CASCADE files and the files that create a type or a function leave parts
    # unread (some of those files go the fingerprint path instead).
    assert (len(followed) >= 2) if lean else not followed, reads


# Changes to a table's columns and constraints that leave most of its rows as they were:
# SCHEMA_HELD deparses only the rows written since the snapshot before (its horizon). A new
# default also rewrites the column's row; the index of a primary key has options of its own.
TOUCHES = [
    "CREATE TABLE wide (id int PRIMARY KEY, a text DEFAULT 'x', b int, c int CHECK (c > 0));\n",
    "ALTER TABLE wide ALTER COLUMN a SET DEFAULT 'y';\n",
    "ALTER TABLE wide ADD CONSTRAINT b_pos CHECK (b > 0) NOT VALID;\n",
    "ALTER TABLE wide VALIDATE CONSTRAINT b_pos;\n",
    "ALTER INDEX wide_pkey SET (fillfactor = 70);\nALTER TABLE wide ADD COLUMN d int;\n",
    "CREATE INDEX wide_b ON wide (b);\nALTER TABLE wide ALTER COLUMN b TYPE bigint;\n",
    "ALTER TABLE wide DROP COLUMN c;\nALTER TABLE wide ALTER COLUMN a DROP DEFAULT;\n",
]


def test_rows_unchanged_since_the_snapshot_before_are_not_deparsed_again(
        fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same report as when SCHEMA_HELD deparses every row of the touched relations
    (no horizon), though most rows come back without their text."""
    files = RICH + TOUCHES
    untexted: list[str] = []
    add_rows = replay_module._add_rows

    def spy(snap: Any, rows: Any, before: Any = None) -> Any:
        rows = list(rows)
        untexted.extend(f"{r[0]} {r[1]}" for r in rows if r[2] is None)
        return add_rows(snap, rows, before)

    monkeypatch.setattr(replay_module, "_add_rows", spy)
    gated = _report(fresh, prisma(tmp_path / "gated", files))
    assert all(m["status"] == "applied" for m in gated["migrations"]), gated["migrations"]
    assert "column public.wide.b" in untexted and "constraint public.wide.wide_c_check" in untexted, \
        " ".join(sorted(set(untexted)))
    altered = {m["path"][-2:]: m["catalog"]["altered"] for m in gated["migrations"]}
    assert "column public.wide.a" in altered[f"{len(RICH) + 2}"], altered
    held = replay_module._schema_held
    monkeypatch.setattr(replay_module, "_schema_held",
                        lambda typefp, globalfp, horizon=None, lean=False:
                        held(typefp, globalfp, None, lean))
    untexted.clear()
    assert _report(fresh, prisma(tmp_path / "whole", files)) == gated
    assert not untexted


def test_a_file_sent_ahead_that_fails_reports_its_line_and_skips_the_rest(
        fresh: Sandbox, tmp_path: Path, sends: list[str]) -> None:
    root = prisma(tmp_path, [
        "CREATE TABLE t (id int);\nCREATE SEQUENCE runs;\n",
        "CREATE INDEX t_id ON t (id);\n",
        "SELECT nextval('runs');\nINSERT INTO t VALUES (1);\n\nINSERT INTO t (id)\n  VALUES (nope);\n",
        "CREATE TABLE never (id int);\n",
    ])
    result = replay(fresh, root, check_idempotency=False, check_down=False)
    assert [m.status for m in result.migrations] == ["applied", "applied", "failed", "skipped"]
    assert any(p.endswith("m3/migration.sql") for p in sends)  # it went ahead
    failed = result.migrations[2]
    assert failed.error is not None and failed.error.line == 5 and failed.error.sqlstate == "42703"
    assert [s.line for s in failed.statements] == [1, 2, 4]
    assert ("public.t", "RowExclusiveLock") in {(lk.relation, lk.mode)
                                                for lk in failed.statements[1].locks}
    with fresh.connect() as conn:  # ran once, rolled back, and nothing after it ran
        assert conn.execute("SELECT last_value, is_called FROM runs").fetchone() == (1, True)
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('never')").fetchone() == (None,)


def test_a_commit_that_fails_in_a_file_sent_ahead_fails_that_file(
        fresh: Sandbox, tmp_path: Path, sends: list[str]) -> None:
    root = prisma(tmp_path, [
        "CREATE TABLE p (id int PRIMARY KEY);\n"
        "CREATE TABLE c (id int, pid int REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);\n",
        "INSERT INTO c VALUES (1, 42);\nINSERT INTO c VALUES (2, 43);\n",
        "INSERT INTO p VALUES (1);\n",
    ])
    result = replay(fresh, root, check_idempotency=False, check_down=False)
    assert [m.status for m in result.migrations] == ["applied", "failed", "skipped"]
    assert any(p.endswith("m2/migration.sql") for p in sends)
    failed = result.migrations[1]
    assert failed.error is not None and failed.error.sqlstate == "23503"
    assert failed.error.line == 2 and "when the transaction committed" in failed.error.message
    assert [s.line for s in failed.statements] == [1, 2]
    with fresh.connect() as conn:
        assert conn.execute("SELECT count(*) FROM c").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM p").fetchone() == (0,)


def test_nothing_goes_ahead_of_a_check(fresh: Sandbox, tmp_path: Path, sends: list[str],
                                       reruns: list[tuple[str, bool]]) -> None:
    # The checks rerun each file (and its down) on the state right after it: the next file
    # goes only once the last of those reruns has been answered.
    root = write_tree(tmp_path, {
        "001_a.up.sql": "CREATE TABLE a (id int);\n", "001_a.down.sql": "DROP TABLE a;\n",
        "002_b.up.sql": "CREATE TABLE b (id int);\n", "002_b.down.sql": "DROP TABLE b;\n",
        "003_c.up.sql": "CREATE TABLE IF NOT EXISTS c (id int);\n",
        "004_d.up.sql": "CREATE TABLE d (id int);\n"})
    result = replay(fresh, root)
    assert [m.idempotent for m in result.migrations] == [False, False, True, False]
    assert [(m.down.status, m.down.restores_schema) for m in result.migrations[:2]] == [
        ("applied", True), ("applied", True)]
    assert [("rerun " if s.startswith("rerun:") else "file ") + Path(s).name
            for s in sends] == ["rerun 001_a.up.sql", "rerun 001_a.down.sql",
                                "file 002_b.up.sql", "rerun 002_b.up.sql",
                                "rerun 002_b.down.sql", "file 003_c.up.sql",
                                "rerun 003_c.up.sql", "file 004_d.up.sql",
                                "rerun 004_d.up.sql"]


# Files whose second run fails, succeeds without a change, or succeeds and changes the schema
# (an index without a name gets another one), with a failure past the first line.
RERUN = [
    "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY, n int);\n"
    "CREATE INDEX IF NOT EXISTS t_n ON t (n);\n",
    "CREATE TABLE u (id int);\n",
    "CREATE INDEX ON t (n);\n",
    "ALTER TABLE t ADD COLUMN IF NOT EXISTS m int;\n\nALTER TABLE t ADD COLUMN k int;\n",
    "INSERT INTO t VALUES (1, 1) ON CONFLICT DO NOTHING;\n",
    "ALTER TABLE t ALTER COLUMN n SET DEFAULT 7;\nCREATE TYPE mood AS ENUM ('ok');\n",
    "CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "ALTER TABLE u ADD CONSTRAINT u_id CHECK (id > 0) NOT VALID;\n",
    "CREATE OR REPLACE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "ALTER TABLE u DROP CONSTRAINT IF EXISTS u_gone;\n",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_m ON t (m);\n",
]


def _checked(fresh: Sandbox, root: Path) -> Any:
    reset_public(fresh)
    result = replay(fresh, root, check_idempotency=True, check_down=False)
    return [(Path(m.path).parent.name, m.status, m.idempotent, m.idempotency_error)
            for m in result.migrations]


def test_the_idempotency_check_in_one_message_says_what_the_statement_path_says(
        fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        reruns: list[tuple[str, bool]]) -> None:
    """The rerun of a file for the idempotency check goes as one message (BEGIN, the
    statements, the snapshot, ROLLBACK) where it can, sent before the client has built the
    snapshot it is compared with: the verdicts and their errors must be the ones the
    statement-by-statement rerun gives."""
    fast = _checked(fresh, prisma(tmp_path / "a", RERUN))
    went = [sent for _path, sent in reruns]
    assert sum(went) >= 7, went  # all but the CONCURRENTLY one (rerun on a clone)
    assert all(row[1] == "applied" for row in fast), fast
    assert [row[2] for row in fast] == [True, False, False, False, True, False, False, True,
                                        True]
    assert fast[1][3] == 'line 1: relation "u" already exists'
    assert fast[2][3] == "the second run changed the schema: index public.t_n_idx1: left behind"
    assert fast[3][3] == 'line 3: column "k" of relation "t" already exists'
    assert fast[5][3] == 'line 2: type "mood" already exists'
    monkeypatch.setattr(replay_module._Session, "send_rerun", lambda *args, **kwargs: False)
    assert _checked(fresh, prisma(tmp_path / "b", RERUN)) == fast


def test_a_real_set_gets_the_same_verdicts_from_reruns_sent_ahead(
        corpus: Path, monkeypatch: pytest.MonkeyPatch, reruns: list[tuple[str, bool]]) -> None:
    """documenso's Prisma set with its checks: each file's verdicts and catalog diff, with the
    reruns sent ahead as one message and with the statement path alone."""
    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.dryrun.replay import dry_run
    from sqlsafe.dryrun.sandbox import open_sandbox
    from sqlsafe.lint import lint

    disc = discover([str(corpus / "documenso" / "packages" / "prisma" / "migrations")])
    config = Config(pg_version=18)
    linted = lint(disc, config)

    def verdicts() -> list[tuple[Any, ...]]:
        with open_sandbox("embedded") as sandbox:
            result = dry_run(disc, config, sandbox=sandbox, lint_result=linted)
        return [(m.path, m.status, m.idempotent, m.idempotency_error, m.catalog)
                for m in result.migrations]

    ahead = verdicts()
    assert sum(sent for _path, sent in reruns) > 100
    assert sum(m[2] is False for m in ahead) > 50
    monkeypatch.setattr(replay_module._Session, "send_rerun", lambda *args, **kwargs: False)
    assert verdicts() == ahead


# Downs that restore the schema, leave something behind (so the up fails after them), fail,
# and rename (the statement path then).
DOWNS = {
    "001_t.up.sql": "CREATE TABLE t (id int PRIMARY KEY, n int);\n",
    "001_t.down.sql": "DROP TABLE t;\n",
    "002_u.up.sql": "CREATE TABLE u (id int);\nCREATE INDEX u_id ON u (id);\n",
    "002_u.down.sql": "DROP INDEX u_id;\n",
    "003_n.up.sql": "ALTER TABLE t ADD COLUMN m int;\n",
    "003_n.down.sql": "ALTER TABLE t DROP COLUMN m;\n\nALTER TABLE t DROP COLUMN nope;\n",
    "004_r.up.sql": "ALTER TABLE t RENAME COLUMN n TO k;\n",
    "004_r.down.sql": "ALTER TABLE t RENAME COLUMN k TO n;\n",
    "005_v.up.sql": "CREATE TYPE mood AS ENUM ('ok');\nALTER TABLE u ADD COLUMN x mood;\n",
    "005_v.down.sql": "ALTER TABLE u DROP COLUMN x;\nDROP TYPE mood;\n",
}


def test_down_checks_in_one_message_say_what_the_statement_path_says(
        fresh: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        reruns: list[tuple[str, bool]]) -> None:
    """A down check runs the down, reads the schema, and runs the up again, as one message
    where it can: the same results as statement by statement."""
    def report(root: Path, idempotency: bool = True) -> Any:
        reset_public(fresh)
        result = replay(fresh, root, check_idempotency=idempotency, check_down=True)
        out = _without_times(result.to_json())
        for m in out["migrations"]:
            m["path"] = Path(m["path"]).name
            m.pop("findings", None)
            if m.get("down"):
                m["down"].pop("path", None)
        return out

    fast = report(write_tree(tmp_path / "a", DOWNS))
    downs = [sent for path, sent in reruns if path.endswith(".down.sql")]
    assert downs == [True, True, True, False, True], downs
    by_name = {m["path"]: m for m in fast["migrations"]}
    assert by_name["001_t.up.sql"]["down"]["restores_schema"] is True
    second = by_name["002_u.up.sql"]["down"]
    assert second["restores_schema"] is False
    assert 'up fails after down: line 1: relation "u" already exists' in second["differences"]
    third = by_name["003_n.up.sql"]["down"]
    assert third["status"] == "failed" and third["error"]["line"] == 3
    assert by_name["004_r.up.sql"]["down"]["restores_schema"] is True
    assert by_name["005_v.up.sql"]["down"]["restores_schema"] is True
    downs_only = report(write_tree(tmp_path / "c", DOWNS), idempotency=False)
    monkeypatch.setattr(replay_module._Session, "send_rerun", lambda *args, **kwargs: False)
    assert report(write_tree(tmp_path / "b", DOWNS)) == fast
    assert report(write_tree(tmp_path / "d", DOWNS), idempotency=False) == downs_only
