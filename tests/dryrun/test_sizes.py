"""Relation sizes per migration (``dry_run(measure_sizes=...)``, ``--measure-sizes``): what each
migration grew, shrank, created and dropped on disk, read before and after it on the server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dryrun_helpers import replay, reset_public, write_tree

from sqlsafe.dryrun.result import (
    MigrationResult,
    SizeChange,
    describe_sizes,
    signed_size,
    size_changes,
)
from sqlsafe.dryrun.sandbox import Sandbox

ROWS = 20_000  # some 700 kB of heap for (bigint, text), 450 kB of btree over an int


# -- the arithmetic ----------------------------------------------------------------------------

def test_changes_are_matched_by_oid_and_only_differences_are_kept() -> None:
    before = {1: ("public.a", "r", 8192), 2: ("public.a_idx", "i", 16384),
              3: ("public.old", "r", 0), 4: ("public.gone", "r", 40960)}
    after = {1: ("public.a", "r", 8192), 2: ("public.a_idx", "i", 32768),
             3: ("public.renamed", "r", 0), 5: ("public.new", "r", 24576)}
    changes = size_changes(before, after)
    # Largest change first; an unchanged (or merely renamed) relation is not listed.
    assert changes == (SizeChange("public.gone", "r", 40960, 0),
                       SizeChange("public.new", "r", 0, 24576),
                       SizeChange("public.a_idx", "i", 16384, 32768))
    assert [c.delta_bytes for c in changes] == [-40960, 24576, 16384]
    assert size_changes(before, dict(before)) == ()


def test_a_renamed_relation_that_grew_is_one_change_under_its_new_name() -> None:
    changes = size_changes({7: ("public.t", "r", 8192)}, {7: ("public.t2", "r", 16384)})
    assert changes == (SizeChange("public.t2", "r", 8192, 16384),)


def test_text_and_json() -> None:
    assert signed_size(28 * 1024) == "+28.0 kB"
    assert signed_size(-3 * 1024 * 1024 // 2) == "-1.5 MB"
    assert signed_size(0) == "0 B"
    changes = tuple(SizeChange(f"public.t{i}", "r", 0, (10 - i) * 1024) for i in range(7))
    assert describe_sizes(changes) == ("+49.0 kB (public.t0 +10.0 kB, public.t1 +9.0 kB, "
                                       "public.t2 +8.0 kB, public.t3 +7.0 kB, "
                                       "public.t4 +6.0 kB, 2 more)")
    assert describe_sizes(()) == "unchanged"
    measured = MigrationResult("1.sql", "x", "applied", sizes=changes[:1])
    assert measured.to_json()["sizes"] == {
        "delta_bytes": 10240,
        "relations": [{"relation": "public.t0", "kind": "r", "before_bytes": 0,
                       "after_bytes": 10240, "delta_bytes": 10240}]}
    assert "sizes" not in MigrationResult("1.sql", "x", "applied").to_json()
    assert MigrationResult("1.sql", "x", "applied", sizes=()).to_json()["sizes"] == {
        "delta_bytes": 0, "relations": []}


# -- on the server -----------------------------------------------------------------------------

pytest_postgres = pytest.mark.postgres


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _by_name(m: MigrationResult) -> dict[str, SizeChange]:
    assert m.status == "applied", m.error
    assert m.sizes is not None
    return {c.relation: c for c in m.sizes}


FILES = {
    "001_t.sql": ("CREATE TABLE sz (id bigint PRIMARY KEY, note text, total int);\n"
                  f"INSERT INTO sz SELECT g, 'note ' || g, g % 97 FROM generate_series(1, {ROWS}) g;\n"),
    "002_idx.sql": "CREATE INDEX sz_total ON sz (total);\n",
    "003_cic.sql": "CREATE INDEX CONCURRENTLY sz_note ON sz (note);\n",
    "004_backfill.sql": "ALTER TABLE sz ADD COLUMN status text;\nUPDATE sz SET status = 'new';\n",
    "005_comment.sql": "COMMENT ON TABLE sz IS 'sizes';\n",
    "006_rename.sql": "ALTER TABLE sz RENAME TO sz2;\n",
    "007_drop.sql": "DROP INDEX sz_total;\nDROP TABLE sz2;\n",
}


@pytest_postgres
@pytest.mark.parametrize("checks", [False, True], ids=["no-checks", "checks"])
def test_what_each_migration_did_on_disk(fresh: Sandbox, tmp_path: Path, checks: bool) -> None:
    result = replay(fresh, write_tree(tmp_path, FILES), check_idempotency=checks,
                    check_down=checks, measure_sizes=True)
    create, index, cic, backfill, comment, rename, drop = result.migrations

    made = _by_name(create)
    assert set(made) == {"public.sz", "public.sz_pkey"}
    assert made["public.sz"].before_bytes == 0 and made["public.sz"].after_bytes > 500_000
    assert made["public.sz_pkey"].after_bytes > 200_000

    # An index build adds the index and leaves its table as it was.
    assert set(_by_name(index)) == {"public.sz_total"}
    assert _by_name(index)["public.sz_total"].after_bytes > 100_000  # deduplicated (PG 13+)
    # So does one outside a transaction block (watched, not sent in a message).
    assert set(_by_name(cic)) == {"public.sz_note"}
    assert cic.statements[0].in_transaction is False

    # Updating every row writes a new version of each: the table and its indexes grow.
    grown = _by_name(backfill)
    assert grown["public.sz"].delta_bytes > made["public.sz"].after_bytes // 2
    assert {"public.sz_pkey", "public.sz_total", "public.sz_note"} <= set(grown)
    # Read before the checks: the idempotency check's rerun of the UPDATE (rolled back, but
    # its row versions stay on disk) is neither this migration's growth nor the next one's.
    assert comment.sizes == ()
    assert rename.sizes == ()  # a rename moves no byte

    gone = _by_name(drop)
    assert set(gone) == {"public.sz2", "public.sz_pkey", "public.sz_total", "public.sz_note"}
    assert all(c.after_bytes == 0 and c.before_bytes > 0 for c in gone.values())
    # What the set built, it dropped again.
    assert sum(m.size_delta_bytes or 0 for m in result.migrations) == 0


def _sum_by_relation(changes: list[SizeChange]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in changes:
        total[c.relation] = total.get(c.relation, 0) + c.delta_bytes
    return {name: delta for name, delta in total.items() if delta}


@pytest_postgres
@pytest.mark.parametrize("layout", ["numbered", "wrapped"])
def test_each_statement_gets_what_it_changed(fresh: Sandbox, tmp_path: Path,
                                             layout: str) -> None:
    # Plain numbered files run statement by statement, each in a transaction of its own;
    # golang-migrate's run in one transaction, read inside it after each statement.
    names = {"numbered": "{n:03d}_{name}.sql", "wrapped": "{n}_{name}.up.sql"}[layout]
    files = {names.format(n=n, name=name): text for n, (name, text) in enumerate([
        ("t", FILES["001_t.sql"]), ("backfill", FILES["004_backfill.sql"]),
        ("two", "CREATE INDEX sz_total ON sz (total);\nDELETE FROM sz WHERE id > 100;\n"
                "VACUUM sz;\n" if layout == "numbered" else
                "CREATE INDEX sz_total ON sz (total);\nDELETE FROM sz WHERE id > 100;\n"),
    ], start=1)}
    result = replay(fresh, write_tree(tmp_path, files), check_idempotency=False,
                    check_down=False, measure_sizes=True)
    _create, backfill, two = result.migrations
    assert all(m.status == "applied" for m in result.migrations), \
        [m.error for m in result.migrations]
    add_column, update = backfill.statements
    assert add_column.sizes == ()  # a nullable column without a default writes no row
    assert update.sizes is not None and {c.relation for c in update.sizes} == {
        "public.sz", "public.sz_pkey"}
    index = two.statements[0]
    assert index.sizes is not None and [c.relation for c in index.sizes] == ["public.sz_total"]
    assert two.statements[1].sizes is not None  # DELETE marks rows dead: no page goes away
    if layout == "numbered":
        # Outside a transaction block (watched), VACUUM gives the emptied pages back.
        vacuum = two.statements[2]
        assert vacuum.in_transaction is False and vacuum.sizes is not None
        assert {c.relation: c.delta_bytes for c in vacuum.sizes}["public.sz"] < -300_000
    # The statements' changes add up to the migration's, relation by relation.
    for m in result.migrations:
        assert m.sizes is not None
        per_statement = [c for st in m.statements for c in st.sizes or ()]
        assert _sum_by_relation(per_statement) == _sum_by_relation(list(m.sizes)), m.path
    assert update.to_json()["sizes"]["delta_bytes"] == sum(c.delta_bytes for c in update.sizes)


# Statements that write relations they do not keep a lock on: an INSERT releases its indexes'
# locks when it ends; a trigger, a cascade and partition routing write other tables.
_WRITES_ELSEWHERE = {
    "001_tables.sql": """
        CREATE TABLE parent (id int PRIMARY KEY, note text);
        CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE,
                            body text);
        CREATE INDEX child_parent ON child (parent_id);
        CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
        CREATE INDEX audit_what ON audit (what);
        CREATE FUNCTION log_parent() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN INSERT INTO audit (what) SELECT 'parent ' || NEW.id; RETURN NEW; END$$;
        CREATE TRIGGER parent_log AFTER INSERT ON parent FOR EACH ROW EXECUTE FUNCTION log_parent();
        CREATE TABLE ev (k int, at date) PARTITION BY RANGE (at);
        CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE INDEX ev_k ON ev (k);
        """,
    "002_rows.sql": """
        INSERT INTO parent SELECT g, repeat('n', 3000) || g FROM generate_series(1, 3000) g;
        INSERT INTO child SELECT g, g, 'c' || g FROM generate_series(1, 3000) g;
        INSERT INTO ev SELECT g, date '2026-03-01' + g % 200 FROM generate_series(1, 20000) g;
        DELETE FROM parent WHERE id <= 1500;
        """,
    "003_more.sql": "INSERT INTO parent VALUES (5000, 'x');\nTRUNCATE audit;\n",
}


@pytest_postgres
@pytest.mark.parametrize("layout", ["numbered", "wrapped"])
def test_reading_the_locked_relations_again_misses_nothing(
        fresh: Sandbox, tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # After a statement whose locks were read, only the locked relations and their indexes
    # are read again. Each such reading, with the rest carried over, must be what reading
    # every relation gives.
    from sqlsafe.dryrun import replay as replay_module

    original = replay_module._Session._with_sizes
    partial: list[int] = []

    def checked(self: Any, result: Any, locked: Any = None) -> Any:
        out = original(self, result, locked)
        if locked is not None and self.r.sizes_now is not None:
            partial.append(result.line)
            assert self.r.sizes_now == self._read_sizes(), (result.sql, locked)
        return out

    monkeypatch.setattr(replay_module._Session, "_with_sizes", checked)
    names = {"numbered": "{stem}.sql", "wrapped": "{stem}.up.sql"}[layout]
    files = {names.format(stem=name[:-4]): "\n".join(line.strip() for line in text.splitlines())
             for name, text in _WRITES_ELSEWHERE.items()}
    result = replay(fresh, write_tree(tmp_path, files), check_idempotency=False,
                    check_down=False, measure_sizes=True)
    assert [m.status for m in result.migrations] == ["applied"] * 3, \
        [m.error for m in result.migrations]
    assert len(partial) >= 15, partial
    rows = _by_name(result.migrations[1])
    # The trigger's and the partition's writes, and the indexes the INSERTs let go of.
    assert {"public.audit", "public.audit_what", "public.ev_2026", "public.child_parent",
            "public.parent_pkey"} <= set(rows)


@pytest_postgres
def test_the_checks_do_not_change_what_is_reported(fresh: Sandbox, tmp_path: Path) -> None:
    files = write_tree(tmp_path, FILES)
    plain = replay(fresh, files, check_idempotency=False, check_down=False, measure_sizes=True)
    json_plain = [m.to_json().get("sizes") for m in plain.migrations]
    checked = replay(reset_public(fresh), files,
                     check_idempotency=True, check_down=True, measure_sizes=True)
    assert [m.to_json().get("sizes") for m in checked.migrations] == json_plain


@pytest_postgres
def test_off_by_default_and_on_with_sample_rows(fresh: Sandbox, tmp_path: Path) -> None:
    files = write_tree(tmp_path, {"001_t.sql": "CREATE TABLE sr (id int PRIMARY KEY);\n",
                                  "002_i.sql": "CREATE INDEX sr_id2 ON sr (id);\n"})
    off = replay(fresh, files, check_idempotency=False, check_down=False)
    assert all(m.sizes is None for m in off.migrations)
    assert all("sizes" not in m.to_json() for m in off.migrations)
    reset_public(fresh)
    rows = replay(fresh, files, check_idempotency=False, check_down=False, sample_rows=2000)
    # The rows go in before each migration (sampledata.fill), so only the index is new.
    assert set(_by_name(rows.migrations[1])) == {"public.sr_id2"}
    assert _by_name(rows.migrations[1])["public.sr_id2"].after_bytes > 40_000
    reset_public(fresh)
    forced_off = replay(fresh, files, check_idempotency=False, check_down=False,
                        sample_rows=2000, measure_sizes=False)
    assert all(m.sizes is None for m in forced_off.migrations)


@pytest_postgres
def test_pre_applied_and_failed_migrations_have_none(fresh: Sandbox, tmp_path: Path) -> None:
    files = write_tree(tmp_path, {"001_t.sql": "CREATE TABLE pf (id int);\n",
                                  "002_i.sql": "CREATE INDEX pf_id ON pf (id);\n",
                                  "003_bad.sql": "ALTER TABLE nope ADD COLUMN x int;\n"})
    result = replay(fresh, files, check_idempotency=False, check_down=False, from_index=1,
                    measure_sizes=True)
    first, second, bad = result.migrations
    assert first.sizes is None  # treated as applied before: not observed
    assert set(_by_name(second)) == {"public.pf_id"}
    assert bad.status == "failed" and bad.sizes is None


@pytest_postgres
def test_the_cli_prints_and_writes_them(tmp_path: Path) -> None:
    write_tree(tmp_path, {"001_t.sql": "CREATE TABLE cl (id int);\n"
                                       "INSERT INTO cl SELECT generate_series(1, 5000);\n"
                                       "CREATE INDEX cl_id ON cl (id);\n"})
    text = subprocess.run([sys.executable, "-m", "sqlsafe", "dry-run", str(tmp_path),
                           "--measure-sizes", "--no-idempotency"],
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "relation sizes: +" in text.stdout and "public.cl_id +" in text.stdout
    out = subprocess.run([sys.executable, "-m", "sqlsafe", "dry-run", str(tmp_path),
                          "--format", "json", "--no-idempotency"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert all("sizes" not in m for m in json.loads(out.stdout)["migrations"])
