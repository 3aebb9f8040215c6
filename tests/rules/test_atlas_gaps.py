"""DS008 and ST019, the checks taken from Atlas migrate lint (CD101 and PG110).

Each test enables only the rule under test; `_ok` and `_err` side by side.
"""

from __future__ import annotations

import pytest
from helpers import migrations, run

from sqlsafe import registry
from sqlsafe.config import Config
from sqlsafe.lint import lint


def at(code: str, *sqls: str, **kw: object) -> list[int]:
    """Lines of the findings in the last migration."""
    last = f"{len(sqls) - 1:03d}_m.sql"
    return [f.span.line for f in run(code, *sqls, **kw) if f.path == last]  # type: ignore[arg-type]


def test_registered_as_described() -> None:
    ds, st = registry.lookup("DS008"), registry.lookup("ST019")
    assert ds is not None and (ds.name, ds.category, ds.severity, ds.opt_in) == \
        ("drop-foreign-key", "destructive", "warning", False)
    assert st is not None and (st.name, st.category, st.severity, st.opt_in) == \
        ("column-alignment-padding", "style", "warning", True)


# ---------------------------------------------------------------------------- DS008

S = ("CREATE TABLE customers (id bigint PRIMARY KEY);\n"
     "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id),\n"
     "  seller_id bigint, total numeric CONSTRAINT orders_total_check CHECK (total >= 0),\n"
     "  code text CONSTRAINT orders_code_fk CHECK (code <> ''),\n"
     "  CONSTRAINT orders_seller_fk FOREIGN KEY (seller_id) REFERENCES customers (id));\n")


def test_ds008_named_foreign_key_err() -> None:
    (f,) = run("DS008", S, "SELECT 1;\nALTER TABLE orders DROP CONSTRAINT orders_seller_fk;")
    assert (f.path, f.span.line) == ("001_m.sql", 2)
    assert f.message.startswith("DROP CONSTRAINT orders_seller_fk removes the foreign key "
                                "(seller_id) of public.orders to public.customers: ")
    assert "orphans" in f.message and "by its name" not in f.message
    assert "NOT VALID" in f.help and "VALIDATE CONSTRAINT" in f.help


def test_ds008_unnamed_foreign_key_by_postgres_name_err() -> None:
    (f,) = run("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;")
    assert "foreign key (customer_id) of public.orders to public.customers" in f.message


def test_ds008_cascade_and_if_exists_still_err() -> None:
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_seller_fk CASCADE;") == [1]


@pytest.mark.parametrize("name", ["legacy_customer_id_fkey", "legacy_customer_id_fkey1",
                                  "fk_rails_0fe1ac2b3c", "FK_Legacy_Customers_CustomerId",
                                  "legacy_customer_id_foreign", "legacy_customer_fk",
                                  "legacy_nid_fk_idx", "FK9sc4d4r0vs4s5cfuk2rlgcdk8"])
def test_ds008_unknown_table_named_like_a_foreign_key_err(name: str) -> None:
    (f,) = run("DS008", f'ALTER TABLE legacy DROP CONSTRAINT "{name}";')
    assert f.message.startswith(f"DROP CONSTRAINT {name} removes the foreign key of "
                                "public.legacy (a foreign key by its name")


@pytest.mark.parametrize("name", ["legacy_pkey", "legacy_email_key", "legacy_total_check",
                                  "legacy_period_excl", "fkey_holder", "legacy_fkeys",
                                  "FK9sc4d4r0", "nfk_legacy"])
def test_ds008_unknown_table_other_names_ok(name: str) -> None:
    assert at("DS008", f'ALTER TABLE legacy DROP CONSTRAINT "{name}";') == []


def test_ds008_known_kind_beats_the_name_ok() -> None:
    # orders_code_fk is a CHECK, whatever its name says; orders_total_check is a CHECK.
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_code_fk;\n"
                          "ALTER TABLE orders DROP CONSTRAINT orders_total_check;\n"
                          "ALTER TABLE orders DROP CONSTRAINT orders_pkey;") == []


def test_ds008_table_created_in_the_migration_ok() -> None:
    assert at("DS008", S + "CREATE TABLE notes (id bigint, order_id bigint REFERENCES orders (id));\n"
                           "ALTER TABLE notes DROP CONSTRAINT notes_order_id_fkey;") == []


def test_ds008_key_added_earlier_in_the_migration_ok() -> None:
    assert at("DS008", S, "ALTER TABLE orders ADD CONSTRAINT orders_tmp_fk FOREIGN KEY (seller_id) "
                          "REFERENCES customers (id) NOT VALID;\n"
                          "ALTER TABLE orders DROP CONSTRAINT orders_tmp_fk;") == []


def test_ds008_key_added_in_an_earlier_migration_err() -> None:
    assert at("DS008", S, "ALTER TABLE orders ADD COLUMN payer_id bigint CONSTRAINT orders_payer_fk "
                          "REFERENCES customers (id);",
              "ALTER TABLE orders DROP CONSTRAINT orders_payer_fk;") == [1]


def test_ds008_replaced_in_the_same_statement_ok() -> None:
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk,\n"
                          "  ADD CONSTRAINT orders_seller_fk FOREIGN KEY (seller_id) "
                          "REFERENCES customers (id) ON DELETE CASCADE NOT VALID;") == []


def test_ds008_replaced_later_in_the_migration_ok() -> None:
    # same columns under another name; same referenced table on another column
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
                          "ALTER TABLE orders ADD CONSTRAINT orders_seller_id_fkey FOREIGN KEY "
                          "(seller_id) REFERENCES customers (id);") == []
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
                          "ALTER TABLE orders ADD COLUMN vendor_id bigint REFERENCES customers (id);") == []
    # a table known by name only: the re-add of the same name
    assert at("DS008", 'ALTER TABLE "Share" DROP CONSTRAINT "Share_userId_fkey";\n'
                       'ALTER TABLE "Share" ADD CONSTRAINT "Share_userId_fkey" FOREIGN KEY ("userId") '
                       'REFERENCES "User"("id") ON DELETE CASCADE;') == []


def test_ds008_another_key_still_holds_ok() -> None:
    assert at("DS008", S, "ALTER TABLE orders ADD CONSTRAINT orders_seller_v2_fk FOREIGN KEY "
                          "(seller_id) REFERENCES customers (id) NOT VALID;\n"
                          "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;") == []


def test_ds008_replaced_in_a_later_migration_err() -> None:
    # Between the two deploys nothing checks the rows.
    assert [(f.path, f.span.line) for f in run(
        "DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;",
        "ALTER TABLE orders ADD CONSTRAINT orders_seller_fk FOREIGN KEY (seller_id) "
        "REFERENCES customers (id);")] == [("001_m.sql", 1)]


def test_ds008_same_columns_to_another_table_ok_other_table_err() -> None:
    assert at("DS008", S + "CREATE TABLE vendors (id bigint PRIMARY KEY);\n",
              "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
              "ALTER TABLE orders ADD CONSTRAINT orders_vendor_fk FOREIGN KEY (seller_id) "
              "REFERENCES vendors (id);") == []  # same columns: still checked
    assert at("DS008", S + "CREATE TABLE vendors (id bigint PRIMARY KEY);\n",
              "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
              "ALTER TABLE customers ADD CONSTRAINT customers_x_fk FOREIGN KEY (id) "
              "REFERENCES vendors (id);") == [1]


def test_ds008_goes_with_a_later_drop_ok() -> None:
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\nDROP TABLE orders;") == []
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\nDROP TABLE customers;") == []
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
                          "ALTER TABLE orders DROP COLUMN seller_id;") == []
    assert at("DS008", 'ALTER TABLE "Share" DROP CONSTRAINT "Share_userId_fkey";\n'
                       'ALTER TABLE "Share" DROP COLUMN "userId";') == []


def test_ds008_other_column_or_table_dropped_err() -> None:
    assert at("DS008", S, "ALTER TABLE orders DROP CONSTRAINT orders_seller_fk;\n"
                          "ALTER TABLE orders DROP COLUMN total;") == [1]
    assert at("DS008", 'ALTER TABLE "Share" DROP CONSTRAINT "Share_userId_fkey";\n'
                       'ALTER TABLE "Share" DROP COLUMN "id";\nDROP TABLE other;') == [1]


def test_ds008_if_exists_guard_on_a_known_table_ok() -> None:
    # The set created legacy_links and never gave it this key: most likely a no-op guard.
    assert at("DS008", "CREATE TABLE legacy_links (id bigint);",
              "ALTER TABLE legacy_links DROP CONSTRAINT IF EXISTS legacy_links_owner_fkey;") == []
    assert at("DS008", "CREATE TABLE legacy_links (id bigint);",
              "ALTER TABLE legacy_links DROP CONSTRAINT legacy_links_owner_fkey;") == [1]
    assert at("DS008", "ALTER TABLE legacy_links DROP CONSTRAINT IF EXISTS legacy_links_owner_fkey;") == [1]


# ---------------------------------------------------------------------------- ST019


def test_st019_atlas_example_err() -> None:
    # 8 + 1 + (3) + 4 + 2 = 18 -> 24 bytes stored; bigint, integer, smallint, boolean: 15 -> 16.
    (f,) = run("ST019", "SELECT 1;\nCREATE TABLE users (\n  user_id bigint PRIMARY KEY,\n"
                        "  active_status boolean,\n  data_balance integer,\n  plan_period smallint\n);")
    assert f.span.line == 2
    assert f.message.startswith("the column order of public.users puts 3 bytes of alignment "
                                "padding in each row that another order avoids, so rows take 8 "
                                "bytes more than they need")
    assert f.help.endswith(": user_id, data_balance, plan_period, active_status.")


def test_st019_exact_saving_with_an_enum_err() -> None:
    # 1 (3) 4 1 (7) 8 1 (7) 8 = 40 bytes; c, e, m, a, b, d = 8 8 4 1 1 1 = 23 -> 24.
    (f,) = run("ST019", "CREATE TYPE mood AS ENUM ('a');\n"
                        "CREATE TABLE t (a bool, m mood, b bool, c bigint, d bool, e bigint);")
    assert "puts 17 bytes" in f.message and "rows take 16 bytes more" in f.message
    assert f.help.endswith(": c, e, m, a, b, d.")


def test_st019_quoted_enum_err() -> None:
    assert at("ST019", 'CREATE TYPE "Mood" AS ENUM (\'a\');\n'
                       'CREATE TABLE t (a bool, m "Mood", b bool, c bigint, d bool, e bigint);') == [2]


def test_st019_variable_length_columns_at_least_err() -> None:
    # uuid is 1-byte aligned: it stays first. 16 1 (7) 8 1 (7) 8, then text: 14 bytes.
    (f,) = run("ST019", "CREATE TABLE t (id uuid, a bool, b bigint, c bool, d timestamptz, e text);")
    assert "puts 14 bytes" in f.message and "rows take at least 8 bytes more" in f.message
    assert f.help.endswith(": id, b, d, a, c, e.")


def test_st019_odd_sized_types_go_last_in_their_group_err() -> None:
    # timetz (12 bytes, 8-aligned) after the bigint, macaddr (6, 4-aligned) after the integer:
    # 1 (7) 12 (4) 8 4 6 2 = 44 -> 48; b, t, n, m, s, a = 33 -> 40.
    (f,) = run("ST019", "CREATE TABLE t (a bool, t timetz, b bigint, n int, m macaddr, s smallint);")
    assert f.help.endswith(": b, t, n, m, s, a.")


def test_st019_padding_absorbed_by_rounding_ok() -> None:
    # (integer, bigint): 16 bytes either way once the row is rounded to 8.
    assert at("ST019", "CREATE TABLE t (a int, b bigint);\n"
                       "CREATE TABLE u (a smallint, b bigint);") == []


def test_st019_optimal_order_ok() -> None:
    assert at("ST019", "CREATE TABLE t (id bigint, at timestamptz, n int, s smallint, ok bool, "
                       "name text, tags text[]);") == []


def test_st019_padding_after_a_variable_length_column_is_not_guessed_ok() -> None:
    # After name, the text's length decides: the run bool, bigint, bool, bigint can pad 7 bytes.
    assert at("ST019", "CREATE TABLE t (id bigint, name text, a bool, b bigint, c bool, d bigint);") == []
    # Arrays are variable-length too, whatever their element.
    assert at("ST019", "CREATE TABLE t (id bigint, xs bigint[], a bool, b bigint, c bool, d bigint);") == []


def test_st019_unknown_types_ok() -> None:
    bad = "(a bool, c bigint, d bool, e bigint, m {})"
    assert at("ST019", f"CREATE TABLE t {bad.format('mood')};") == []
    assert at("ST019", f"CREATE DOMAIN cents AS bigint;\nCREATE TABLE t {bad.format('cents')};") == []
    assert at("ST019", f"CREATE TABLE t {bad.format('app.status')};") == []
    assert at("ST019", f"CREATE TABLE t {bad.format('tsquery')};") == []
    # the same table with a known type is flagged
    assert at("ST019", f"CREATE TABLE t {bad.format('int')};") == [1]
    assert at("ST019", f"CREATE TABLE t {bad.format('extensions.citext')};") == [1]


def test_st019_columns_from_elsewhere_ok() -> None:
    cols = "(a bool, b bigint, c bool, d bigint)"
    assert at("ST019", f"CREATE TEMP TABLE t {cols};") == []
    assert at("ST019", f"CREATE TABLE p (id bigint);\nCREATE TABLE t {cols} INHERITS (p);") == []
    assert at("ST019", "CREATE TABLE t (LIKE p INCLUDING ALL, a bool, b bigint, c bool, d bigint);") == []
    assert at("ST019", f"CREATE TABLE p {cols} PARTITION BY RANGE (b);\n"
                       "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);") == [1]


def test_st019_opt_in() -> None:
    result = lint(migrations("CREATE TABLE t (a bool, b bigint, c bool, d bigint);"), Config())
    assert not [f for f in result.findings if f.code == "ST019"]
    result = lint(migrations("CREATE TABLE t (a bool, b bigint, c bool, d bigint);"),
                  Config(extend_select=("ST019",)))
    assert [f.code for f in result.findings if f.code == "ST019"] == ["ST019"]
