"""LK023 and ST012-ST015, the rules taken from eugene, splinter, Atlas and Bytebase.

Each test enables only the rule under test; `_ok` and `_err` side by side.
"""

from __future__ import annotations

from helpers import lines, run

T = "CREATE TABLE t (id bigint PRIMARY KEY, a int, b int);\nCREATE TABLE u (id bigint PRIMARY KEY);\n"


def at(code: str, *sqls: str, **kw: object) -> list[int]:
    """Lines of the findings in the last migration."""
    last = f"{len(sqls) - 1:03d}_m.sql"
    return [line for path, line in lines(code, *sqls, **kw) if path == last]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- LK023


def test_lk023_autocommit_alters_err() -> None:
    f = run("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ADD COLUMN d int;\n"
                        "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;")
    assert [x.span.line for x in f] == [2, 3]
    assert all("after the one on line 1" in x.message and "queues for ACCESS EXCLUSIVE" in x.message
               for x in f)


def test_lk023_mixed_case_table_err() -> None:
    assert at("LK023", 'CREATE TABLE "Team" (id bigint);',
              'ALTER TABLE "Team" ADD COLUMN c int;\nALTER TABLE "Team" ADD COLUMN d int;') == [2]


def test_lk023_mixed_case_table_named_between_ok() -> None:
    assert at("LK023", 'CREATE TABLE "Team" (id bigint);',
              'ALTER TABLE "Team" ADD COLUMN c int;\nUPDATE "Team" SET c = 1;\n'
              'ALTER TABLE "Team" ALTER COLUMN c SET DEFAULT 2;') == []


def test_lk023_foreign_key_lock_counts_err() -> None:
    # SHARE ROW EXCLUSIVE blocks writes: it queues like ACCESS EXCLUSIVE does.
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c bigint;\n"
                          "ALTER TABLE t ADD CONSTRAINT t_c_fk FOREIGN KEY (c) REFERENCES u NOT VALID;") == [2]


def test_lk023_two_scans_in_a_transaction_err() -> None:
    f = run("LK023", T, "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\nALTER TABLE t ADD COLUMN c int;\n"
                        "ALTER TABLE t ADD CONSTRAINT t_b_check CHECK (b > 0);", in_transaction=True)
    assert [x.span.line for x in f] == [3] and "after the one on line 1" in f[0].message


def test_lk023_catalog_only_changes_in_a_transaction_ok() -> None:
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t ALTER COLUMN a SET DEFAULT 0;",
              in_transaction=True) == []


def test_lk023_one_statement_or_other_tables_ok() -> None:
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int, ADD COLUMN d int;\n"
                          "ALTER TABLE u ADD COLUMN c int;") == []


def test_lk023_table_created_in_the_migration_ok() -> None:
    assert at("LK023", "CREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN c int;\n"
                       "ALTER TABLE n ADD COLUMN d int;") == []


def test_lk023_statement_naming_the_table_between_ok() -> None:
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nUPDATE t SET c = 1 WHERE id = 1;\n"
                          "ALTER TABLE t ALTER COLUMN c SET NOT NULL;") == []
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX t_c ON t (c);\n"
                          "ALTER TABLE t ALTER COLUMN c SET NOT NULL;") == []


def test_lk023_commit_or_do_block_between_ok() -> None:
    assert at("LK023", T, "BEGIN;\nALTER TABLE t ADD COLUMN c int;\nCOMMIT;\n"
                          "ALTER TABLE t ADD COLUMN d int;") == []
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nDO $$ BEGIN PERFORM 1; END $$;\n"
                          "ALTER TABLE t ADD COLUMN d int;") == []


def test_lk023_validate_ends_the_run_ok() -> None:
    assert at("LK023", T, "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
                          "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\n"
                          "ALTER TABLE t ALTER COLUMN a SET NOT NULL;") == []


def test_lk023_rename_or_second_type_change_of_a_column_ok() -> None:
    assert at("LK023", T, "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t RENAME COLUMN a TO z;") == []
    assert at("LK023", T, "ALTER TABLE t ALTER COLUMN a TYPE bigint;\n"
                          "ALTER TABLE t ALTER COLUMN a TYPE numeric;") == []
