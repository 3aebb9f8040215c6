"""Constraints and indexes created without a name are known by the names PostgreSQL gives them
(``tests/dryrun/test_constraint_names.py`` compares them with a real server's)."""

from __future__ import annotations

import pytest

from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section
from sqlsafe.schema import implicit_constraint_name

CREATE = ("CREATE TABLE customers (id bigint PRIMARY KEY);\n"
          "CREATE TABLE orders (id bigint PRIMARY KEY, "
          "customer_id bigint NOT NULL REFERENCES customers (id), code text UNIQUE);\n")


def _codes(later: str, *select: str) -> list[tuple[int, str]]:
    migs = tuple(Migration(p, None, "file", str(i), p, Section(p, text))
                 for i, (p, text) in enumerate([("001.sql", CREATE), ("002.sql", later)]))
    result = lint(DiscoveryResult(migs), Config(select=select))
    return [(f.span.line, f.code) for f in result.findings if f.path == "002.sql"]


@pytest.mark.parametrize(("kind", "columns", "expected"), [
    ("primary", ("id",), "orders_pkey"),
    ("unique", ("a", "b"), "orders_a_b_key"),
    ("foreign", ("customer_id",), "orders_customer_id_fkey"),
    ("check", ("qty",), "orders_qty_check"),
    ("check", (), "orders_check"),
    ("exclude", ("during",), "orders_during_excl"),
])
def test_names(kind: str, columns: tuple[str, ...], expected: str) -> None:
    assert implicit_constraint_name("orders", kind, columns) == expected


def test_long_names_are_cut_to_63_bytes_from_the_longer_part() -> None:
    name = implicit_constraint_name("t" * 40, "foreign", ("c" * 40,))
    assert len(name.encode()) == 63
    assert name == "t" * 29 + "_" + "c" * 28 + "_fkey"
    # a multibyte character is never cut in half
    assert implicit_constraint_name("é" * 40, "primary", ()).encode().decode() == \
        "é" * 29 + "_pkey"


def test_an_inline_foreign_key_is_dropped_by_its_implicit_name() -> None:
    assert _codes("ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;\n",
                  "DS008") == [(1, "DS008")]


def test_a_column_key_is_an_index_of_its_table() -> None:
    # The table is created in the same migration, so rebuilding or dropping its key's index
    # blocks nobody: known by the implicit name, the index is exempt like the table.
    new = "CREATE TABLE items (id bigint PRIMARY KEY, sku text UNIQUE);\n"
    assert _codes(new + "REINDEX INDEX items_pkey;\n", "LK003") == []
    assert _codes(new + "DROP INDEX items_sku_key;\n", "LK002") == []
    # An existing table's are judged.
    assert _codes("REINDEX INDEX orders_pkey;\n", "LK003") == [(1, "LK003")]


def test_quoted_type_names_keep_their_case() -> None:
    from sqlsafe.normalize import normalize
    from sqlsafe.parse import parse_section

    (stmt,) = parse_section(Section("x.sql", 'CREATE TABLE t (a "Mood", b Mood, c INT);')).statements
    (action,) = normalize(stmt.node, {})
    assert [c.type.name for c in action.columns] == ["Mood", "mood", "int4"]
