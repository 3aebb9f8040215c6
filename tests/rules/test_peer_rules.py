"""LK023 and ST012-ST015, the rules taken from eugene, splinter, Atlas and Bytebase.

Each test enables only the rule under test; `_ok` and `_err` side by side.
"""

from __future__ import annotations

import pytest
from helpers import lines, migrations, run

from sqlsafe.config import Config, ConfigError, from_mapping
from sqlsafe.lint import lint

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


# ---------------------------------------------------------------------------- ST012

P = "CREATE TABLE p (id bigint PRIMARY KEY);\n"


def test_st012_inline_and_table_level_foreign_keys_err() -> None:
    assert at("ST012", P + "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p,\n"
                           "  q_id bigint, FOREIGN KEY (q_id) REFERENCES p);") == [2, 2]
    f = run("ST012", P, "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p);")
    assert len(f) == 1 and "no index of public.c starts with p_id" in f[0].message


def test_st012_add_constraint_and_add_column_err() -> None:
    assert at("ST012", P + "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint);",
              "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p NOT VALID;\n"
              "ALTER TABLE c ADD COLUMN q_id bigint REFERENCES p;") == [1, 2]


def test_st012_index_later_in_the_migration_ok() -> None:
    assert at("ST012", P + "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p);\n"
                           "CREATE INDEX c_p_id_idx ON c (p_id);") == []
    assert at("ST012", P + "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p);\n"
                           "CREATE INDEX ON c (p_id, id);") == []


def test_st012_key_covers_the_columns_ok() -> None:
    assert at("ST012", P + "CREATE TABLE c (p_id bigint PRIMARY KEY REFERENCES p);") == []
    assert at("ST012", P + "CREATE TABLE c (x bigint, y bigint, k text, PRIMARY KEY (y, x, k), "
                           "FOREIGN KEY (x, y) REFERENCES pp (a, b));") == []  # in any order
    assert at("ST012", P + "CREATE TABLE c (p_id bigint REFERENCES p, k text, "
                           "PRIMARY KEY (k, p_id));") == [2]  # p_id does not lead
    assert at("ST012", P + "CREATE TABLE c (p_id bigint REFERENCES p UNIQUE);") == []


def test_st012_index_not_leading_with_the_columns_err() -> None:
    assert at("ST012", P + "CREATE TABLE c (id bigint PRIMARY KEY, p_id bigint REFERENCES p);\n"
                           "CREATE INDEX c_id_p ON c (id, p_id);") == [2]


def test_st012_unknown_table_or_dropped_foreign_key_ok() -> None:
    assert at("ST012", "ALTER TABLE legacy ADD CONSTRAINT f FOREIGN KEY (p_id) REFERENCES p;") == []
    # Seen by the set (an ADD COLUMN) but never created by it: its indexes are unknown.
    assert at("ST012", "ALTER TABLE legacy ADD COLUMN p_id bigint;\n"
                       "ALTER TABLE legacy ADD CONSTRAINT f FOREIGN KEY (p_id) REFERENCES p;") == []
    assert at("ST012", P + "CREATE TABLE c (id bigint, p_id bigint);\n"
                           "ALTER TABLE c ADD CONSTRAINT c_p FOREIGN KEY (p_id) REFERENCES p;\n"
                           "ALTER TABLE c DROP CONSTRAINT c_p;") == []


def test_st012_is_opt_in() -> None:
    from sqlsafe import registry

    registry.load()
    assert registry.RULES["ST012"].opt_in and registry.RULES["ST012"].category == "style"


# ---------------------------------------------------------------------------- ST013

U = ("CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE, team_id bigint, "
     "CONSTRAINT users_team_email UNIQUE (team_id, email));\n")


def test_st013_same_index_twice_err() -> None:
    f = run("ST013", U + "CREATE INDEX users_team ON users (team_id);\n"
                         "CREATE INDEX users_team2 ON users (team_id);")
    assert [x.span.line for x in f] == [3] and "duplicates the index public.users_team" in f[0].message


def test_st013_repeats_a_key_err() -> None:
    assert at("ST013", U + "CREATE INDEX users_id ON users (id);\n"
                           "CREATE INDEX users_email ON users (email);\n"
                           "CREATE UNIQUE INDEX users_te ON users (team_id, email);") == [2, 3, 4]


def test_st013_across_migrations_err() -> None:
    assert at("ST013", U + "CREATE INDEX users_team ON users USING hash (team_id);",
              "CREATE INDEX users_team_again ON users USING hash (team_id);") == [1]


def test_st013_differs_in_shape_ok() -> None:
    assert at("ST013", U + "CREATE INDEX a ON users (team_id);\n"
                           "CREATE INDEX b ON users (team_id) WHERE email IS NOT NULL;\n"
                           "CREATE INDEX c ON users USING hash (team_id);\n"
                           "CREATE INDEX d ON users (team_id DESC);\n"
                           "CREATE INDEX e ON users (team_id) INCLUDE (email);\n"
                           "CREATE INDEX f ON users (lower(email));\n"
                           "CREATE INDEX g ON users (email text_pattern_ops);\n"
                           "CREATE INDEX h ON users (email, team_id);") == []


def test_st013_unique_over_plain_index_ok() -> None:
    assert at("ST013", U + "CREATE INDEX a ON users (team_id);\n"
                           "CREATE UNIQUE INDEX b ON users (team_id);") == []


def test_st013_replacement_dropped_in_the_migration_ok() -> None:
    assert at("ST013", U + "CREATE INDEX a ON users (team_id);",
              "CREATE INDEX CONCURRENTLY a_new ON users (team_id);\n"
              "DROP INDEX CONCURRENTLY a;\nALTER INDEX a_new RENAME TO a;") == []


def test_st013_same_name_if_not_exists_ok() -> None:
    assert at("ST013", U + "CREATE INDEX a ON users (team_id);\n"
                           "CREATE INDEX IF NOT EXISTS a ON users (team_id);") == []


# ---------------------------------------------------------------------------- ST014


def test_st014_no_primary_key_err() -> None:
    f = run("ST014", "CREATE TABLE events (at timestamptz, name text);\n"
                     "CREATE TABLE tags (name text UNIQUE NOT NULL);")
    assert [x.span.line for x in f] == [1, 2] and "replica identity" in f[0].message


def test_st014_key_in_any_form_ok() -> None:
    assert at("ST014", "CREATE TABLE a (id bigint PRIMARY KEY);\n"
                       "CREATE TABLE b (x int, y int, PRIMARY KEY (x, y));\n"
                       "CREATE TABLE c (x int);\nALTER TABLE c ADD PRIMARY KEY (x);\n"
                       "CREATE TABLE d (x int);\nALTER TABLE d ADD COLUMN id bigserial PRIMARY KEY;\n"
                       "CREATE TABLE e (x int);\nALTER TABLE e ADD CONSTRAINT e_pkey PRIMARY KEY (x);") == []


def test_st014_scratch_and_derived_tables_ok() -> None:
    assert at("ST014", "CREATE TABLE a (id bigint PRIMARY KEY);\n"
                       "CREATE TEMP TABLE t (x int);\n"
                       "CREATE TABLE s AS SELECT 1 AS x;\n"
                       "CREATE TABLE l (LIKE a INCLUDING ALL);\n"
                       "CREATE TABLE p (id bigint, PRIMARY KEY (id)) PARTITION BY RANGE (id);\n"
                       "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);\n"
                       "CREATE TABLE gone (x int);\nDROP TABLE gone;") == []


# ---------------------------------------------------------------------------- ST015

NAMING = {"table": "^[a-z_]+$", "column": "^[a-z_]+$", "index": "_idx$", "primary_key": "_pkey$",
          "unique": "_key$", "foreign_key": "_fkey$", "check": "_check$", "exclusion": "_excl$",
          "view": "^v_", "sequence": "_seq$", "schema": "^app", "type": "_t$"}


def test_st015_every_kind_err() -> None:
    f = run("ST015", 'CREATE SCHEMA billing;\nCREATE TABLE "Orders" ("Total" int, '
                     "CONSTRAINT o_pk PRIMARY KEY (\"Total\"), CONSTRAINT o_u UNIQUE (\"Total\"),\n"
                     "CONSTRAINT o_c CHECK (\"Total\" > 0), CONSTRAINT o_f FOREIGN KEY (\"Total\") "
                     "REFERENCES x);\n"
                     "CREATE INDEX o_total ON \"Orders\" (\"Total\");\n"
                     "CREATE VIEW orders_view AS SELECT 1;\nCREATE SEQUENCE order_numbers;\n"
                     "CREATE TYPE status AS ENUM ('a');\n"
                     "ALTER TABLE \"Orders\" ADD CONSTRAINT o_x EXCLUDE USING gist (\"Total\" WITH =);",
            naming=NAMING)
    kinds = sorted(x.message.split(" name ")[0] for x in f)
    assert kinds == ["check constraint", "column", "exclusion constraint", "foreign key", "index",
                     "primary key", "schema", "sequence", "table", "type", "unique constraint",
                     "view"]
    assert "naming.table = '^[a-z_]+$'" in next(x.message for x in f if x.message.startswith("table"))


def test_st015_renames_and_added_columns_err() -> None:
    assert at("ST015", "CREATE TABLE orders (total int, CONSTRAINT orders_total_check CHECK (total > 0));",
              "ALTER TABLE orders RENAME TO \"Orders\";\n"
              "ALTER TABLE \"Orders\" RENAME COLUMN total TO \"Total\";\n"
              "ALTER TABLE \"Orders\" RENAME CONSTRAINT orders_total_check TO positive;\n"
              "ALTER TABLE \"Orders\" ADD COLUMN \"Note\" text;", naming=NAMING) == [1, 2, 3, 4]


def test_st015_matching_names_ok() -> None:
    assert at("ST015", "CREATE SCHEMA app;\nCREATE TABLE orders (total int, "
                       "CONSTRAINT orders_pkey PRIMARY KEY (total), "
                       "CONSTRAINT orders_total_check CHECK (total > 0));\n"
                       "CREATE INDEX orders_total_idx ON orders (total);\n"
                       "CREATE INDEX ON orders (total);\n"  # unnamed: ST007's business
                       "ALTER TABLE orders ADD CHECK (total < 100);", naming=NAMING) == []


def test_st015_nothing_configured_ok() -> None:
    assert at("ST015", 'CREATE TABLE "Orders" ("Total" int);') == []
    assert at("ST015", 'CREATE TABLE "Orders" ("Total" int);', naming={"index": "_idx$"}) == []


def test_st015_config_is_checked() -> None:
    cfg = from_mapping({"naming": {"table": "^[a-z]+$"}}, "pyproject.toml")
    assert cfg.naming == {"table": "^[a-z]+$"}
    with pytest.raises(ConfigError, match="unknown key 'tables' in naming"):
        from_mapping({"naming": {"tables": "^x$"}}, "pyproject.toml")
    with pytest.raises(ConfigError, match=r"naming\.table is not a valid regular expression"):
        from_mapping({"naming": {"table": "(unclosed"}}, "pyproject.toml")
    with pytest.raises(ConfigError, match=r"naming\.column must be a string"):
        from_mapping({"naming": {"column": 3}}, "pyproject.toml")
    with pytest.raises(ConfigError, match="'naming' must be a table"):
        from_mapping({"naming": "^x$"}, "pyproject.toml")


# ---------------------------------------------------------------------------- the whole set
# ST012-ST014 report once the last migration is folded: a later file can settle them.


def test_st012_index_in_a_later_migration_ok() -> None:
    fk = "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u NOT VALID;"
    assert lines("ST012", T, fk, "CREATE INDEX t_a_idx ON t (a);") == []
    # Without it, the finding belongs to the file of the foreign key, at its line.
    assert lines("ST012", T, fk, "SELECT 1;") == [("001_m.sql", 1)]


def test_st012_suppressed_in_its_own_file() -> None:
    fk = ('-- sqlsafe: ignore ST012 reason="lookup by id only"\n'
          "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u NOT VALID;")
    cfg = Config(select=("ST012",), pg_version=15)
    result = lint(migrations(T, fk, "SELECT 1;"), cfg)
    # Suppressed, and the suppression counts as used (no ST901 unused-suppression).
    assert [f.code for f in result.findings] == []


def test_st013_old_index_dropped_in_a_later_migration_ok() -> None:
    assert lines("ST013", T + "CREATE INDEX t_a_old ON t (a);", "CREATE INDEX t_a_new ON t (a);",
                 "DROP INDEX t_a_old;") == []
    assert lines("ST013", T + "CREATE INDEX t_a_old ON t (a);", "CREATE INDEX t_a_new ON t (a);",
                 "SELECT 1;") == [("001_m.sql", 1)]


def test_st014_primary_key_in_a_later_migration_ok() -> None:
    create = "CREATE TABLE k (a int, b int);"
    assert lines("ST014", create, "ALTER TABLE k ADD PRIMARY KEY (a);") == []
    assert lines("ST014", create, "SELECT 1;") == [("000_m.sql", 1)]


# ---------------------------------------------------------------------------- ST016


def test_st016_each_statement_kind_err() -> None:
    f = run("ST016", "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUMN b int;\n"
                     "CREATE INDEX a_b ON a (b);\nDROP TABLE public.x, a;")
    assert [x.span.line for x in f] == [1, 2, 3, 4]
    assert f[3].message.startswith("a is named without a schema")


def test_st016_qualified_or_temporary_ok() -> None:
    assert lines("ST016", "CREATE TABLE public.a (id int);\nALTER TABLE public.a ADD COLUMN b int;\n"
                          "CREATE INDEX a_b ON public.a (b);\nCREATE TEMP TABLE t (id int);\n"
                          "ALTER INDEX a_b RENAME TO a_b2;\nDROP TABLE public.a;\n"
                          "DROP INDEX a_b2;\nCREATE VIEW v AS SELECT 1;") == []


def test_st016_is_opt_in() -> None:
    result = lint(migrations("CREATE TABLE a (id int);"), Config(pg_version=15))
    assert "ST016" not in {f.code for f in result.findings}


# ---------------------------------------------------------------------------- ST017


def test_st017_four_key_columns_err() -> None:
    f = run("ST017", T + "CREATE INDEX t_wide ON t (id, a, b, (a + b));")
    assert [x.span.line for x in f] == [3] and "4 key columns" in f[0].message


def test_st017_unique_include_three_or_other_method_ok() -> None:
    assert lines("ST017", T + "CREATE UNIQUE INDEX t_u ON t (id, a, b, (a + b));\n"
                              "CREATE INDEX t_i ON t (id, a, b) INCLUDE (u);\n"
                              "CREATE INDEX t_g ON t USING brin (id, a, b, (a + b));") == []


# ---------------------------------------------------------------------------- ST018


def test_st018_reg_types_err() -> None:
    f = run("ST018", "CREATE TABLE s (id int, c regconfig, p pg_catalog.regprocedure);\n"
                     "ALTER TABLE s ADD COLUMN n regnamespace;\nALTER TABLE s ALTER COLUMN id TYPE regoper;")
    assert [x.span.line for x in f] == [1, 1, 2, 3]


def test_st018_upgradable_reg_types_ok() -> None:
    assert lines("ST018", "CREATE TABLE s (a regclass, b regtype, c regrole, d text);\n"
                          "CREATE TABLE app.regproc (x int);") == []
