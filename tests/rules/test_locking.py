"""Locking rules: each test enables only the rule under test; `_ok` and `_err` side by side."""

from __future__ import annotations

from helpers import run

T = "CREATE TABLE t (id bigint PRIMARY KEY, a int, b varchar(10), c text, r int4range);\n" \
    "CREATE TABLE u (id bigint PRIMARY KEY);\n" \
    "CREATE INDEX t_b_idx ON t (b);\n"


def codes(code: str, *sqls: str, **kw: object) -> list[int]:
    return [f.span.line for f in run(code, *sqls, **kw)]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- LK001
def test_lk001_existing_table_err() -> None:
    assert codes("LK001", T, "CREATE INDEX t_c ON t (c);") == [1]


def test_lk001_same_migration_and_partitioned_ok() -> None:
    assert codes("LK001", "CREATE TABLE x (a int); CREATE INDEX x_a ON x (a);") == []
    assert codes("LK001", "CREATE TABLE p (a int) PARTITION BY RANGE (a);",
                 "CREATE INDEX p_a ON p (a);") == []


# ---------------------------------------------------------------------------- LK002
def test_lk002_drop_index_err() -> None:
    f = run("LK002", T, "DROP INDEX t_b_idx;")
    assert len(f) == 1 and f[0].fix is not None and f[0].fix.safe


def test_lk002_fix_unsafe_in_transaction_err() -> None:
    f = run("LK002", T, "DROP INDEX t_b_idx;", in_transaction=True)
    assert f[0].fix is not None and not f[0].fix.safe


def test_lk002_concurrently_or_new_table_ok() -> None:
    assert codes("LK002", T, "DROP INDEX CONCURRENTLY t_b_idx;") == []
    assert codes("LK002", "CREATE TABLE x (a int); CREATE INDEX x_a ON x (a); DROP INDEX x_a;") == []


# ---------------------------------------------------------------------------- LK003
def test_lk003_reindex_pg12_err() -> None:
    f = run("LK003", T, "REINDEX INDEX t_b_idx;", pg=12)
    assert len(f) == 1 and f[0].fix is not None and "CONCURRENTLY" in f[0].help


def test_lk003_reindex_pg11_err() -> None:
    f = run("LK003", T, "REINDEX TABLE t;", pg=11)
    assert len(f) == 1 and f[0].fix is None and "added in 12" in f[0].help


def test_lk003_concurrently_ok() -> None:
    assert codes("LK003", T, "REINDEX INDEX CONCURRENTLY t_b_idx;") == []


# ---------------------------------------------------------------------------- LK004 / LK005
def test_lk004_fk_err() -> None:
    f = run("LK004", T, "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u (id);")
    assert len(f) == 1 and f[0].fix is not None and f[0].fix.replacement == " NOT VALID"


def test_lk004_not_valid_then_validate_ok() -> None:
    assert codes("LK004", T,
                 "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID;",
                 "ALTER TABLE t VALIDATE CONSTRAINT t_a_fk;") == []
    assert codes("LK004", "CREATE TABLE x (a int);"
                 "ALTER TABLE x ADD CONSTRAINT x_fk FOREIGN KEY (a) REFERENCES u (id);") == []


def test_lk005_check_err() -> None:
    assert codes("LK005", T, "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0);") == [1]


def test_lk005_not_valid_ok() -> None:
    assert codes("LK005", T, "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID;") == []


def test_lk005_multi_command_has_no_fix_err() -> None:
    f = run("LK005", T, "ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0), ALTER COLUMN c SET DEFAULT '';")
    assert len(f) == 1 and f[0].fix is None


# ---------------------------------------------------------------------------- LK006 - LK008
def test_lk006_unique_err() -> None:
    f = run("LK006", T, "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a);")
    assert len(f) == 1 and "CONCURRENTLY" in f[0].recipe


def test_lk006_using_index_ok() -> None:
    assert codes("LK006", T, "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a);",
                 "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_key;") == []


def test_lk007_exclude_err() -> None:
    assert codes("LK007", T, "ALTER TABLE t ADD CONSTRAINT t_r_excl EXCLUDE USING gist (r WITH &&);") == [1]


def test_lk007_new_table_ok() -> None:
    assert codes("LK007", "CREATE TABLE x (r int4range);"
                 "ALTER TABLE x ADD CONSTRAINT x_excl EXCLUDE USING gist (r WITH &&);") == []


def test_lk008_nullable_pk_err() -> None:
    assert codes("LK008", "CREATE TABLE x (k int);", "CREATE UNIQUE INDEX CONCURRENTLY x_k ON x (k);",
                 "ALTER TABLE x ADD CONSTRAINT x_pkey PRIMARY KEY USING INDEX x_k;") == [1]


def test_lk008_not_null_or_check_ok() -> None:
    assert codes("LK008", "CREATE TABLE x (k int NOT NULL);",
                 "CREATE UNIQUE INDEX CONCURRENTLY x_k ON x (k);",
                 "ALTER TABLE x ADD CONSTRAINT x_pkey PRIMARY KEY USING INDEX x_k;") == []
    assert codes("LK008", "CREATE TABLE x (k int);",
                 "ALTER TABLE x ADD CONSTRAINT x_k_nn CHECK (k IS NOT NULL) NOT VALID;",
                 "ALTER TABLE x VALIDATE CONSTRAINT x_k_nn;",
                 "CREATE UNIQUE INDEX CONCURRENTLY x_k ON x (k);",
                 "ALTER TABLE x ADD CONSTRAINT x_pkey PRIMARY KEY USING INDEX x_k;", pg=12) == []


# ---------------------------------------------------------------------------- LK009
_NN_CHECK = ("ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;",
             "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;")


def test_lk009_set_not_null_err() -> None:
    f = run("LK009", T, "ALTER TABLE t ALTER COLUMN a SET NOT NULL;")
    assert len(f) == 1 and "VALIDATE" in f[0].recipe


def test_lk009_valid_check_pg12_ok() -> None:
    assert codes("LK009", T, *_NN_CHECK, "ALTER TABLE t ALTER COLUMN a SET NOT NULL;", pg=12) == []


def test_lk009_valid_check_pg11_err() -> None:
    f = run("LK009", T, *_NN_CHECK, "ALTER TABLE t ALTER COLUMN a SET NOT NULL;", pg=11)
    assert len(f) == 1 and "always scans" in f[0].help


def test_lk009_new_table_ok() -> None:
    assert codes("LK009", "CREATE TABLE x (a int); ALTER TABLE x ALTER COLUMN a SET NOT NULL;") == []


# ---------------------------------------------------------------------------- LK010
def test_lk010_rewrite_err() -> None:
    assert codes("LK010", T, "ALTER TABLE t ALTER COLUMN a TYPE bigint;") == [1]


def test_lk010_free_changes_ok() -> None:
    assert codes("LK010", T, "ALTER TABLE t ALTER COLUMN b TYPE varchar(20);") == []
    assert codes("LK010", T, "ALTER TABLE t ALTER COLUMN b TYPE text;") == []
    assert codes("LK010", "ALTER TABLE unknown_t ALTER COLUMN x TYPE text;") == []


def test_lk010_index_rebuild_err() -> None:
    f = run("LK010", T, "ALTER TABLE t ALTER COLUMN b TYPE citext;")
    assert len(f) == 1 and "rebuilds public.t_b_idx" in f[0].message


def test_lk010_unknown_old_type_err() -> None:
    f = run("LK010", "ALTER TABLE unknown_t ALTER COLUMN x TYPE bigint;")
    assert len(f) == 1 and "probably" in f[0].message


# ---------------------------------------------------------------------------- LK011 / LK012
def test_lk011_constant_default_pg11_ok() -> None:
    assert codes("LK011", T, "ALTER TABLE t ADD COLUMN d int DEFAULT 0;", pg=11) == []


def test_lk011_constant_default_pg10_err() -> None:
    assert codes("LK011", T, "ALTER TABLE t ADD COLUMN d int DEFAULT 0;", pg=10) == [1]


def test_lk011_volatile_identity_generated_err() -> None:
    assert codes("LK011", T, "ALTER TABLE t ADD COLUMN d uuid DEFAULT gen_random_uuid();") == [1]
    assert codes("LK011", T, "ALTER TABLE t ADD COLUMN d bigserial;") == [1]
    assert codes("LK011", T, "ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED;") == [1]


def test_lk011_one_finding_per_statement_err() -> None:
    f = run("LK011", T, "ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a) STORED, "
                        "ADD COLUMN e int GENERATED ALWAYS AS (a) STORED;")
    assert len(f) == 1 and "1 more" in f[0].message


def test_lk012_inline_constraints_err() -> None:
    f = run("LK012", T, "ALTER TABLE t ADD COLUMN u_id bigint REFERENCES u (id) CHECK (u_id > 0) UNIQUE;")
    assert len(f) == 3


def test_lk012_plain_column_ok() -> None:
    assert codes("LK012", T, "ALTER TABLE t ADD COLUMN u_id bigint;") == []


# ---------------------------------------------------------------------------- LK013 - LK016
def test_lk013_vacuum_full_cluster_err() -> None:
    assert codes("LK013", T, "VACUUM FULL t;\nCLUSTER t USING t_b_idx;") == [1, 2]


def test_lk013_plain_vacuum_ok() -> None:
    assert codes("LK013", T, "VACUUM ANALYZE t;") == []


def test_lk014_refresh_err() -> None:
    mv = "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;"
    assert codes("LK014", T + mv, "REFRESH MATERIALIZED VIEW mv;") == [1]
    assert codes("LK014", T + mv, "REFRESH MATERIALIZED VIEW CONCURRENTLY mv;") == []


def test_lk015_set_logged_err() -> None:
    assert codes("LK015", T, "ALTER TABLE t SET UNLOGGED;") == [1]
    assert codes("LK015", "CREATE TABLE x (a int); ALTER TABLE x SET LOGGED;") == []


def test_lk016_set_tablespace_err() -> None:
    assert codes("LK016", T, "ALTER TABLE t SET TABLESPACE fast;") == [1]
    assert codes("LK016", T, "ALTER INDEX t_b_idx SET TABLESPACE fast;") == [1]
    assert codes("LK016", "CREATE TABLE x (a int); ALTER TABLE x SET TABLESPACE fast;") == []


# ---------------------------------------------------------------------------- LK017 / LK018
P = "CREATE TABLE m (k int, v text) PARTITION BY RANGE (k);\nCREATE TABLE m_old (k int, v text);\n"


def test_lk017_attach_existing_err() -> None:
    f = run("LK017", P, "ALTER TABLE m ATTACH PARTITION m_old FOR VALUES FROM (0) TO (10);", pg=12)
    assert len(f) == 1 and "SHARE UPDATE EXCLUSIVE on the parent" in f[0].message


def test_lk017_attach_pg11_locks_parent_err() -> None:
    f = run("LK017", P, "ALTER TABLE m ATTACH PARTITION m_old FOR VALUES FROM (0) TO (10);", pg=11)
    assert len(f) == 1 and "PostgreSQL < 12" in f[0].message


def test_lk017_valid_check_or_new_partition_ok() -> None:
    assert codes("LK017", P, "ALTER TABLE m_old ADD CONSTRAINT b CHECK (k >= 0 AND k < 10) NOT VALID;",
                 "ALTER TABLE m_old VALIDATE CONSTRAINT b;",
                 "ALTER TABLE m ATTACH PARTITION m_old FOR VALUES FROM (0) TO (10);") == []
    assert codes("LK017", P, "CREATE TABLE m_new (k int, v text);"
                 "ALTER TABLE m ATTACH PARTITION m_new FOR VALUES FROM (10) TO (20);") == []


def test_lk018_detach_pg14_err() -> None:
    f = run("LK018", P, "ALTER TABLE m DETACH PARTITION m_old;", pg=14)
    assert len(f) == 1 and f[0].fix is not None


def test_lk018_detach_pg13_ok() -> None:
    assert codes("LK018", P, "ALTER TABLE m DETACH PARTITION m_old;", pg=13) == []
    assert codes("LK018", P, "ALTER TABLE m DETACH PARTITION m_old CONCURRENTLY;", pg=14) == []


# ---------------------------------------------------------------------------- LK019 / LK020
def test_lk019_domain_err() -> None:
    assert codes("LK019", "CREATE DOMAIN pos AS int;",
                 "ALTER DOMAIN pos ADD CONSTRAINT pos_chk CHECK (VALUE > 0);") == [1]


def test_lk019_not_valid_or_new_domain_ok() -> None:
    assert codes("LK019", "CREATE DOMAIN pos AS int;",
                 "ALTER DOMAIN pos ADD CONSTRAINT pos_chk CHECK (VALUE > 0) NOT VALID;") == []
    assert codes("LK019", "CREATE DOMAIN pos AS int;"
                 "ALTER DOMAIN pos ADD CONSTRAINT pos_chk CHECK (VALUE > 0);") == []


def test_lk020_lock_table_err() -> None:
    assert codes("LK020", T, "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT;") == [1]


def test_lk020_weak_mode_ok() -> None:
    assert codes("LK020", T, "BEGIN; LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE; COMMIT;") == []


# ---------------------------------------------------------------------------- LK021 / LK022
def test_lk021_backfill_under_ddl_lock_err() -> None:
    assert codes("LK021", T, "ALTER TABLE t ADD COLUMN d int;\nUPDATE t SET d = a;",
                 in_transaction=True) == [2]


def test_lk021_same_lock_or_no_transaction_ok() -> None:
    # SET NOT NULL blocks the same traffic as the ADD COLUMN before it: nothing extra.
    assert codes("LK021", T, "ALTER TABLE t ADD COLUMN d int;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;",
                 in_transaction=True) == []
    assert codes("LK021", T, "ALTER TABLE t ADD COLUMN d int;\nUPDATE t SET d = a;") == []
    assert codes("LK021", T, "ALTER TABLE t ADD COLUMN d int;\nUPDATE t SET d = 1 WHERE id = 5;",
                 in_transaction=True) == []


def test_lk022_two_tables_err() -> None:
    assert codes("LK022", T, "ALTER TABLE t ADD COLUMN d int;\nALTER TABLE u ADD COLUMN d int;",
                 in_transaction=True) == [2]


def test_lk022_one_table_or_new_tables_ok() -> None:
    assert codes("LK022", T, "ALTER TABLE t ADD COLUMN d int;\nALTER TABLE t ADD COLUMN e int;",
                 in_transaction=True) == []
    assert codes("LK022", "CREATE TABLE x (a int);\nCREATE TABLE y (a int);\n"
                 "ALTER TABLE x ADD COLUMN d int;\nALTER TABLE y ADD COLUMN d int;",
                 in_transaction=True) == []


# ---------------------------------------------------------------------------- renamed or moved
def test_a_renamed_or_moved_table_stays_new_with_its_indexes() -> None:
    """The schema state follows RENAME and SET SCHEMA: the table created in this migration is
    still new under its new name, and so are its indexes (they move with it)."""
    new = "CREATE TABLE a (id int);\nCREATE INDEX a_idx ON a (id);\n"
    for move, where in (("ALTER TABLE a RENAME TO b;\n", "b"),
                        ("ALTER TABLE a SET SCHEMA archive;\n", "archive.a")):
        sql = new + move + f"CREATE INDEX a_id2 ON {where} (id);\n"
        assert codes("LK001", sql) == []
        idx = "archive.a_idx" if where.startswith("archive") else "a_idx"
        assert codes("LK002", sql + f"DROP INDEX {idx};\n") == []
    # An existing table moved: still existing, so the index it gets after the move counts.
    assert codes("LK001", T, "ALTER TABLE t SET SCHEMA archive;\n"
                 "CREATE INDEX t_a ON archive.t (a);") == [2]
    assert codes("LK002", T, "ALTER TABLE t SET SCHEMA archive;\nDROP INDEX archive.t_b_idx;") \
        == [2]


def test_set_schema_is_predicted_access_exclusive() -> None:
    from helpers import migrations

    from sqlsafe.config import Config
    from sqlsafe.lint import lint

    result = lint(migrations(T, "ALTER TABLE t SET SCHEMA archive;"), Config())
    (info,) = [s for s in result.statements if s.path == "001_m.sql"]
    assert [(lk.relation, lk.mode) for lk in info.locks] == [("public.t", "AccessExclusiveLock")]


def test_a_table_made_by_select_into_or_create_table_as_is_new() -> None:
    for make in ("SELECT 1 AS a INTO n;\n", "CREATE TABLE n AS SELECT 1 AS a;\n",
                 "SELECT 1 AS a INTO TEMP n;\n"):
        assert codes("LK001", make + "CREATE INDEX n_a ON n (a);") == []
