"""Security rules on views and row level security: the actions they read."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from sqlsafe import nodes as n
from sqlsafe.normalize import bool_text, constant_true, normalize

TABLE = "CREATE TABLE t (id int, owner text);"
RLS = "ALTER TABLE t ENABLE ROW LEVEL SECURITY;"


def actions(sql: str) -> tuple[n.Action, ...]:
    return normalize(parse_sql(sql)[0].stmt)


# ---------------------------------------------------------------------------- normalization


@pytest.mark.parametrize("expr", ["true", "(true)", "((TRUE))", "'t'::boolean", "true::bool",
                                  "boolean 'yes'", "'on'::pg_catalog.bool", "'tr'::boolean",
                                  "CAST('1' AS boolean)"])
def test_constant_true_forms(expr: str) -> None:
    (a,) = actions(f"CREATE POLICY p ON t FOR DELETE USING ({expr})")
    assert isinstance(a, n.CreatePolicy) and a.using_true


@pytest.mark.parametrize("expr", ["false", "'f'::boolean", "'o'::boolean", "1 = 1", "NOT false",
                                  "owner = current_user", "'t'::text::boolean", "'t'::myschema.bool",
                                  "true AND owner = current_user", "NULL::boolean"])
def test_not_constant_true(expr: str) -> None:
    (a,) = actions(f"CREATE POLICY p ON t FOR DELETE USING ({expr})")
    assert isinstance(a, n.CreatePolicy) and not a.using_true


def test_constant_true_of_nothing_is_false() -> None:
    assert constant_true(None) is False


@pytest.mark.parametrize(("text", "value"), [("true", True), ("T", True), ("yes", True),
                                             ("on", True), ("1", True), (" y ", True),
                                             ("false", False), ("of", False), ("no", False),
                                             ("F", False), ("fal", False), ("off", False),
                                             ("0", False), ("o", None), ("", None),
                                             ("maybe", None), (None, None)])
def test_bool_text_reads_like_postgres(text: str | None, value: bool | None) -> None:
    assert bool_text(text) is value


def test_create_policy_action() -> None:
    (a,) = actions("CREATE POLICY p ON s.t AS RESTRICTIVE FOR UPDATE TO Admin, \"Ops\", "
                   "PUBLIC, CURRENT_USER USING (x) WITH CHECK (true)")
    assert a == n.CreatePolicy("policy", "p", rel=n.Rel("t", "s"), command="update",
                               permissive=False,
                               roles=("admin", "Ops", "public", "current_user"),
                               using_true=False, check_true=True, has_check=True)
    # Still what lock prediction and rollback plans match on.
    assert isinstance(a, n.CreateObject) and a.objtype == "policy" and a.kind == "CreatePolicy"


def test_create_policy_defaults() -> None:
    (a,) = actions("CREATE POLICY p ON t USING (true)")
    assert isinstance(a, n.CreatePolicy)
    assert (a.command, a.permissive, a.roles, a.has_check) == ("all", True, ("public",), False)


def test_alter_policy_action() -> None:
    assert actions("ALTER POLICY p ON t TO anon WITH CHECK (true)") == \
        (n.AlterPolicy("p", n.Rel("t"), ("anon",), False, True),)
    assert actions("ALTER POLICY p ON t USING (x)") == (n.AlterPolicy("p", n.Rel("t")),)


def test_view_options_and_temporary() -> None:
    (a,) = actions("CREATE OR REPLACE TEMP VIEW v WITH (Security_Invoker = on, "
                   "security_barrier) AS SELECT 1")  # unquoted: folded to lower case
    assert isinstance(a, n.CreateObject)
    assert a.options == (("security_invoker", "on"), ("security_barrier", None))
    assert a.temporary and a.or_replace
    (b,) = actions("CREATE VIEW v WITH (security_invoker = 1) AS SELECT 1")
    assert isinstance(b, n.CreateObject) and b.options == (("security_invoker", "1"),)
    assert not b.temporary
    # Unreserved words parse as type names; they are values all the same.
    (c,) = actions("CREATE VIEW v WITH (security_invoker = off, check_option = local) "
                   "AS SELECT 1")
    assert isinstance(c, n.CreateObject)
    assert c.options == (("security_invoker", "off"), ("check_option", "local"))


def test_alter_view_set_and_reset_options() -> None:
    assert actions("ALTER VIEW s.v SET (security_invoker = true)") == \
        (n.AlterTableOther(n.Rel("v", "s"), "SetRelOptions", "view",
                           (("security_invoker", "true"),)),)
    assert actions("ALTER TABLE v RESET (security_invoker)") == \
        (n.AlterTableOther(n.Rel("v"), "ResetRelOptions", "table",
                           (("security_invoker", None),)),)
    assert actions("ALTER TABLE t SET (toast.autovacuum_enabled = off)")[0].options == \
        (("toast.autovacuum_enabled", "off"),)  # type: ignore[attr-defined]
