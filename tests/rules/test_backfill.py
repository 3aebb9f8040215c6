"""Backfill rules: the dataflow of ADD COLUMN defaults and backfills across migrations."""

from __future__ import annotations

from helpers import lines

T = "CREATE TABLE t (id bigint PRIMARY KEY, a text);"
ADD = "ALTER TABLE t ADD COLUMN b int;"


# ---------------------------------------------------------------- BF001 not-null-without-backfill
def test_bf001_set_not_null_on_unbackfilled_column_err() -> None:
    assert lines("BF001", T, ADD, "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == [("002_m.sql", 1)]


def test_bf001_later_set_default_does_not_fill_old_rows_err() -> None:
    assert lines("BF001", T, ADD, "ALTER TABLE t ALTER COLUMN b SET DEFAULT 0;",
                 "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == [("003_m.sql", 1)]


def test_bf001_same_migration_on_existing_table_err() -> None:
    assert lines("BF001", T, ADD + "\nALTER TABLE t ALTER COLUMN b SET NOT NULL;") == [("001_m.sql", 2)]


def test_bf001_update_backfill_between_ok() -> None:
    assert lines("BF001", T, ADD, "UPDATE t SET b = 0 WHERE b IS NULL;",
                 "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == []


def test_bf001_do_block_batched_backfill_ok() -> None:
    do = ("DO $$ BEGIN LOOP UPDATE t SET b = 0 WHERE id IN (SELECT id FROM t WHERE b IS NULL "
          "LIMIT 1000); EXIT WHEN NOT FOUND; END LOOP; END $$;")
    assert lines("BF001", T, ADD, do, "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == []


def test_bf001_added_with_default_ok() -> None:
    assert lines("BF001", T, "ALTER TABLE t ADD COLUMN b int DEFAULT 0;",
                 "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == []


def test_bf001_column_created_with_table_ok() -> None:
    assert lines("BF001", T, "ALTER TABLE t ALTER COLUMN a SET NOT NULL;") == []


def test_bf001_added_in_the_migration_that_created_the_table_ok() -> None:
    assert lines("BF001", T + ADD, "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == []


def test_bf001_not_valid_validate_then_set_not_null_ok() -> None:
    assert lines("BF001", T, ADD, "UPDATE t SET b = 0 WHERE b IS NULL;",
                 "ALTER TABLE t ADD CONSTRAINT b_nn CHECK (b IS NOT NULL) NOT VALID;",
                 "ALTER TABLE t VALIDATE CONSTRAINT b_nn;",
                 "ALTER TABLE t ALTER COLUMN b SET NOT NULL;") == []


# ---------------------------------------------------------------- BF002 check-without-backfill
NV = "ALTER TABLE t ADD CONSTRAINT b_nn CHECK (b IS NOT NULL) NOT VALID;"


def test_bf002_validate_without_backfill_err() -> None:
    assert lines("BF002", T, ADD, NV, "ALTER TABLE t VALIDATE CONSTRAINT b_nn;") == [("003_m.sql", 1)]


def test_bf002_valid_check_without_backfill_err() -> None:
    assert lines("BF002", T, ADD, "ALTER TABLE t ADD CONSTRAINT c CHECK (b IS NOT NULL AND b > 0);") \
        == [("002_m.sql", 1)]


def test_bf002_not_valid_alone_ok() -> None:
    assert lines("BF002", T, ADD, NV) == []


def test_bf002_backfilled_then_validate_ok() -> None:
    assert lines("BF002", T, ADD, NV, "UPDATE t SET b = 0 WHERE b IS NULL;",
                 "ALTER TABLE t VALIDATE CONSTRAINT b_nn;") == []


def test_bf002_check_that_null_satisfies_ok() -> None:
    assert lines("BF002", T, ADD, "ALTER TABLE t ADD CONSTRAINT c CHECK (b > 0);") == []


# ---------------------------------------------------------------- BF003 unique-key-without-backfill
def test_bf003_unique_index_on_constant_default_err() -> None:
    assert lines("BF003", T, "ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT 0;",
                 "CREATE UNIQUE INDEX CONCURRENTLY t_b ON t (b);") == [("002_m.sql", 1)]


def test_bf003_primary_key_on_null_column_err() -> None:
    assert lines("BF003", "CREATE TABLE t (a text);", "ALTER TABLE t ADD COLUMN id bigint;",
                 "ALTER TABLE t ADD PRIMARY KEY (id);") == [("002_m.sql", 1)]


def test_bf003_volatile_default_ok() -> None:
    assert lines("BF003", T, "ALTER TABLE t ADD COLUMN b uuid DEFAULT gen_random_uuid();",
                 "CREATE UNIQUE INDEX CONCURRENTLY t_b ON t (b);") == []


def test_bf003_unique_on_null_column_ok() -> None:
    assert lines("BF003", T, ADD, "CREATE UNIQUE INDEX CONCURRENTLY t_b ON t (b);") == []


def test_bf003_column_added_not_null_without_default_ok() -> None:
    # The ADD itself only succeeds on an empty table (CP001 reports it), so no old rows.
    assert lines("BF003", "CREATE TABLE t (a text);",
                 "ALTER TABLE t ADD COLUMN id int NOT NULL, ADD PRIMARY KEY (id);") == []


# ---------------------------------------------------------------- BF004 foreign-key-without-backfill
P = "CREATE TABLE p (id bigint PRIMARY KEY);"
FKNV = "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID;"


def test_bf004_validate_fk_on_placeholder_default_err() -> None:
    assert lines("BF004", T, P, "ALTER TABLE t ADD COLUMN p_id bigint NOT NULL DEFAULT 0;", FKNV,
                 "ALTER TABLE t VALIDATE CONSTRAINT fk;") == [("004_m.sql", 1)]


def test_bf004_fk_on_null_column_ok() -> None:
    assert lines("BF004", T, P, "ALTER TABLE t ADD COLUMN p_id bigint;",
                 "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id);") == []


def test_bf004_backfilled_ok() -> None:
    assert lines("BF004", T, P, "ALTER TABLE t ADD COLUMN p_id bigint NOT NULL DEFAULT 0;", FKNV,
                 "UPDATE t SET p_id = 1 WHERE p_id = 0;", "ALTER TABLE t VALIDATE CONSTRAINT fk;") == []


# ---------------------------------------------------------------- BF005 unbatched-backfill
def test_bf005_update_without_where_err() -> None:
    assert lines("BF005", T, "UPDATE t SET a = 'x';") == [("001_m.sql", 1)]


def test_bf005_batched_update_ok() -> None:
    assert lines("BF005", T, "UPDATE t SET a = 'x' WHERE id BETWEEN 1 AND 10000;") == []


def test_bf005_new_table_ok() -> None:
    assert lines("BF005", T + "\nUPDATE t SET a = 'x';") == []


# ---------------------------------------------------------------- BF006 backfill-in-ddl-transaction
def test_bf006_update_after_add_column_in_transaction_err() -> None:
    sql = ADD + "\nUPDATE t SET b = 0;\nALTER TABLE t ALTER COLUMN b SET NOT NULL;"
    assert lines("BF006", T, sql, in_transaction=True) == [("001_m.sql", 2)]


def test_bf006_explicit_begin_err() -> None:
    sql = "BEGIN;\n" + ADD + "\nUPDATE t SET b = 0 WHERE b IS NULL;\nCOMMIT;"
    assert lines("BF006", T, sql) == [("001_m.sql", 3)]


def test_bf006_backfill_then_set_not_null_in_transaction_err() -> None:
    sql = "UPDATE t SET a = '' WHERE a IS NULL;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"
    assert lines("BF006", T, sql, in_transaction=True) == [("001_m.sql", 2)]


def test_bf006_one_finding_per_table_ok() -> None:
    sql = ADD + "\nUPDATE t SET b = 0 WHERE id < 10;\nUPDATE t SET b = 1 WHERE id >= 10;"
    assert lines("BF006", T, sql, in_transaction=True) == [("001_m.sql", 2)]


def test_bf006_separate_migrations_ok() -> None:
    assert lines("BF006", T, ADD, "UPDATE t SET b = 0 WHERE b IS NULL;",
                 "ALTER TABLE t ALTER COLUMN b SET NOT NULL;", in_transaction=True) == []


def test_bf006_targeted_fix_of_old_column_ok() -> None:
    sql = ADD + "\nUPDATE t SET a = 'x' WHERE id = 1;"
    assert lines("BF006", T, sql, in_transaction=True) == []


def test_bf006_without_transaction_ok() -> None:
    sql = ADD + "\nUPDATE t SET b = 0;\nALTER TABLE t ALTER COLUMN b SET NOT NULL;"
    assert lines("BF006", T, sql) == []


def test_bf006_new_table_ok() -> None:
    assert lines("BF006", T + "\nUPDATE t SET a = 'x';", in_transaction=True) == []


# ---------------------------------------------------------------- BF007 backfill-mixed-with-ddl
def test_bf007_update_with_ddl_before_err() -> None:
    assert lines("BF007", T, ADD + "\nUPDATE t SET b = 0 WHERE b IS NULL;") == [("001_m.sql", 2)]


def test_bf007_delete_with_ddl_after_err() -> None:
    sql = "DELETE FROM t WHERE a IS NULL;\nCREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a);"
    assert lines("BF007", T, sql) == [("001_m.sql", 1)]


def test_bf007_backfill_in_own_migration_ok() -> None:
    assert lines("BF007", T, ADD, "UPDATE t SET b = 0 WHERE b IS NULL;") == []


def test_bf007_in_transaction_left_to_bf006_ok() -> None:
    assert lines("BF007", T, ADD + "\nUPDATE t SET b = 0 WHERE b IS NULL;", in_transaction=True) == []


def test_bf007_ddl_on_other_table_ok() -> None:
    assert lines("BF007", T, "CREATE INDEX CONCURRENTLY x_i ON x (a);\nUPDATE t SET a = 'x' WHERE id = 1;") == []


# ---------------------------------------------------------------- BF008 copy-table-in-one-statement
def test_bf008_insert_select_from_existing_table_err() -> None:
    assert lines("BF008", T, "CREATE TABLE t2 (id bigint);\nINSERT INTO t2 SELECT id FROM t;") \
        == [("001_m.sql", 2)]


def test_bf008_cte_is_not_a_table_ok() -> None:
    sql = "CREATE TABLE t2 (id bigint);\nWITH g AS (SELECT 1 AS id) INSERT INTO t2 SELECT id FROM g;"
    assert lines("BF008", T, sql) == []


def test_bf008_seed_values_ok() -> None:
    assert lines("BF008", T, "INSERT INTO t VALUES (1, 'a') ON CONFLICT DO NOTHING;") == []
