"""Security rules on views and row level security: SC012-SC015, and the actions they read."""

from __future__ import annotations

import pytest
from helpers import lines, run
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


# ---------------------------------------------------------------------------- SC012


def test_sc012_view_without_security_invoker_err() -> None:
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;",
                 "CREATE OR REPLACE VIEW public.w AS SELECT 1;") == \
        [("000_m.sql", 1), ("001_m.sql", 1)]


@pytest.mark.parametrize("value", ["off", "false", "'no'", "0"])
def test_sc012_security_invoker_false_err(value: str) -> None:
    assert lines("SC012", f"CREATE VIEW v WITH (security_invoker = {value}) AS SELECT 1;") == \
        [("000_m.sql", 1)]


def test_sc012_message_names_the_view_and_the_hazard() -> None:
    (f,) = run("SC012", "CREATE VIEW v AS SELECT 1;")
    assert f.severity == "error" and "public.v" in f.message and "owner" in f.message
    assert f.recipe == "ALTER VIEW public.v SET (security_invoker = true);"


@pytest.mark.parametrize("option", ["security_invoker = true", "security_invoker = on",
                                    "security_invoker = yes", "SECURITY_INVOKER = TRUE",
                                    "security_invoker = 1", "security_invoker = 'yes'",
                                    "security_invoker", "security_barrier, security_invoker"])
def test_sc012_security_invoker_ok(option: str) -> None:
    assert lines("SC012", f"CREATE VIEW v WITH ({option}) AS SELECT 1;") == []


def test_sc012_quoted_option_name_is_not_the_option_err() -> None:
    # Reloption names match case-sensitively: "Security_Invoker" is rejected by the server,
    # not a security_invoker view.
    assert lines("SC012", 'CREATE VIEW v WITH ("Security_Invoker" = true) AS SELECT 1;') == \
        [("000_m.sql", 1)]


def test_sc012_below_postgres_15_ok() -> None:
    # security_invoker exists since PostgreSQL 15: both sides of the version.
    sql = "CREATE VIEW v AS SELECT 1;"
    assert lines("SC012", sql, pg=14) == []
    assert lines("SC012", sql, pg=15) == [("000_m.sql", 1)]


def test_sc012_schema_not_exposed_ok() -> None:
    assert lines("SC012", "CREATE VIEW private.v AS SELECT 1;",
                 "SET search_path = private; CREATE VIEW w AS SELECT 1;") == []


def test_sc012_exposed_schemas_setting() -> None:
    sqls = ("CREATE VIEW api.v AS SELECT 1;", "CREATE VIEW public.w AS SELECT 1;")
    assert lines("SC012", *sqls, exposed_schemas=("api",)) == [("000_m.sql", 1)]


def test_sc012_search_path_decides_the_schema_err() -> None:
    assert lines("SC012", "SET search_path = api;\nCREATE VIEW v AS SELECT 1;",
                 exposed_schemas=("api",)) == [("000_m.sql", 2)]


def test_sc012_temporary_and_materialized_views_ok() -> None:
    assert lines("SC012", "CREATE TEMP VIEW v AS SELECT 1;",
                 "CREATE MATERIALIZED VIEW m AS SELECT 1;") == []


def test_sc012_alter_view_set_later_ok() -> None:
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "ALTER VIEW public.v SET (security_invoker = true);") == []
    assert lines("SC012", "CREATE VIEW public.v AS SELECT 1;\n"
                          "ALTER TABLE v SET (security_invoker);") == []


def test_sc012_alter_view_in_a_later_migration_err() -> None:
    # Only the same migration settles it: the view is open between the two deploys.
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;",
                 "ALTER VIEW v SET (security_invoker = true);") == [("000_m.sql", 1)]


def test_sc012_replacing_another_view_err() -> None:
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "CREATE VIEW w WITH (security_invoker) AS SELECT 1;\n"
                          "CREATE VIEW private.v WITH (security_invoker) AS SELECT 1;") == \
        [("000_m.sql", 1)]


def test_sc012_alter_of_another_view_err() -> None:
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "ALTER VIEW other.v SET (security_invoker = true);\n"
                          "ALTER VIEW w SET (security_invoker = true);") == [("000_m.sql", 1)]


def test_sc012_set_then_reset_later_err() -> None:
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "ALTER VIEW v SET (security_invoker = true);\n"
                          "ALTER VIEW v RESET (security_invoker);") == [("000_m.sql", 1)]
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "ALTER VIEW v SET (security_invoker = true);\n"
                          "ALTER VIEW v SET (security_invoker = false);") == [("000_m.sql", 1)]


def test_sc012_replacement_is_judged_by_itself() -> None:
    # CREATE OR REPLACE VIEW replaces the option list: the replacement without the option is
    # the finding, the first definition is not reported twice.
    assert lines("SC012", "CREATE VIEW v WITH (security_invoker) AS SELECT 1;\n"
                          "CREATE OR REPLACE VIEW v AS SELECT 1, 2;") == [("000_m.sql", 2)]
    assert lines("SC012", "CREATE VIEW v AS SELECT 1;\n"
                          "CREATE OR REPLACE VIEW v WITH (security_invoker) AS SELECT 1, 2;") == []


# ---------------------------------------------------------------------------- SC013


@pytest.mark.parametrize("sql", [
    "CREATE POLICY p ON t FOR UPDATE USING (true);",
    "CREATE POLICY p ON t FOR UPDATE USING (owner = current_user) WITH CHECK (true);",
    "CREATE POLICY p ON t FOR DELETE TO app USING ('t'::boolean);",
    "CREATE POLICY p ON t FOR INSERT WITH CHECK (true);",
    "CREATE POLICY p ON t USING (true);",
    "CREATE POLICY p ON t FOR ALL USING (owner = current_user) WITH CHECK (true);",
    "CREATE POLICY p ON t AS PERMISSIVE FOR ALL TO authenticated USING (true) "
    "WITH CHECK (owner = current_user);",
])
def test_sc013_write_policy_always_true_err(sql: str) -> None:
    assert lines("SC013", sql) == [("000_m.sql", 1)]


@pytest.mark.parametrize("sql", [
    "CREATE POLICY p ON t FOR SELECT USING (true);",
    "CREATE POLICY p ON t AS RESTRICTIVE FOR UPDATE USING (true);",
    "CREATE POLICY p ON t FOR UPDATE USING (owner = current_user);",
    "CREATE POLICY p ON t FOR INSERT WITH CHECK (owner = current_user);",
    "CREATE POLICY p ON t FOR ALL USING (owner = current_user);",
    "CREATE POLICY p ON t FOR UPDATE USING (false) WITH CHECK (1 = 1);",
])
def test_sc013_ok(sql: str) -> None:
    assert lines("SC013", sql) == []


def test_sc013_message_says_who_may_do_what() -> None:
    (f,) = run("SC013", "CREATE POLICY p ON t FOR DELETE TO app, admin USING (true);")
    assert f.severity == "warning"
    assert "roles app, admin may delete every row" in f.message
    assert "USING (true)" in f.message and "WITH CHECK" not in f.message
    (e,) = run("SC013", "CREATE POLICY p ON t FOR UPDATE TO authenticated USING (true);")
    assert e.message.endswith("role authenticated may update every row to any values, as if "
                              "row level security were off for that command")
    (g,) = run("SC013", "CREATE POLICY p ON t FOR INSERT WITH CHECK (true);")
    assert "every role (PUBLIC) may insert any row" in g.message
    (h,) = run("SC013", "CREATE POLICY p ON t FOR UPDATE USING (x = 1) WITH CHECK (true);")
    assert "write any values" in h.message and "as if row level security were off" \
        not in h.message
    (i,) = run("SC013", "CREATE POLICY p ON t USING (true);")
    assert "read, update and delete every row and insert any row" in i.message
    # An explicit WITH CHECK replaces the USING (true) as the check on new rows.
    (j,) = run("SC013", "CREATE POLICY p ON t USING (true) WITH CHECK (x = 1);")
    assert j.message.endswith("every role (PUBLIC) may read, update and delete every row")
    (k,) = run("SC013", "CREATE POLICY p ON t FOR UPDATE USING (true) WITH CHECK (x = 1);")
    assert k.message.endswith("may update every row")
    (m,) = run("SC013", "CREATE POLICY p ON t FOR ALL USING (x = 1) WITH CHECK ('yes'::bool);")
    assert "may insert any row and write any values" in m.message


def test_sc013_alter_policy_of_a_policy_from_the_set_err() -> None:
    assert lines("SC013",
                 TABLE + "\nCREATE POLICY p ON t FOR DELETE TO app USING (owner = current_user);",
                 "ALTER POLICY p ON t USING (true);") == [("001_m.sql", 1)]
    (f,) = run("SC013", TABLE + "\nCREATE POLICY p ON t FOR DELETE TO app USING (x = 1);",
               "ALTER POLICY p ON t USING (true);")
    assert "role app may delete" in f.message


def test_sc013_alter_policy_roles_are_remembered() -> None:
    (f,) = run("SC013", TABLE + "\nCREATE POLICY p ON t FOR DELETE USING (x = 1);\n"
                                "ALTER POLICY p ON t TO staff;\nALTER POLICY p ON t USING (true);")
    assert "role staff may delete" in f.message


def test_sc013_alter_policy_of_select_or_unknown_policy_ok() -> None:
    assert lines("SC013", TABLE + "\nCREATE POLICY p ON t FOR SELECT USING (x = 1);\n"
                                  "ALTER POLICY p ON t USING (true);") == []
    assert lines("SC013", "ALTER POLICY p ON t USING (true);") == []
    assert lines("SC013", TABLE + "\nCREATE POLICY p ON t AS RESTRICTIVE FOR DELETE USING (x);\n"
                                  "ALTER POLICY p ON t USING (true);") == []


def test_sc013_alter_policy_after_drop_or_rename_ok() -> None:
    assert lines("SC013", TABLE + "\nCREATE POLICY p ON t FOR DELETE USING (x = 1);\n"
                                  "DROP POLICY p ON public.t;\n"
                                  "ALTER POLICY p ON t USING (true);") == []
    assert lines("SC013", TABLE + "\nCREATE POLICY p ON t FOR DELETE USING (x = 1);\n"
                                  "ALTER POLICY p ON t RENAME TO q;\n"
                                  "ALTER POLICY q ON t USING (true);") == [("000_m.sql", 4)]


# ---------------------------------------------------------------------------- SC014


def test_sc014_policy_on_new_table_without_rls_err() -> None:
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (owner = current_user);") == \
        [("000_m.sql", 2)]


def test_sc014_policy_in_a_later_migration_err() -> None:
    assert lines("SC014", TABLE, "CREATE POLICY p ON public.t USING (true);") == \
        [("001_m.sql", 1)]


def test_sc014_message_and_recipe() -> None:
    (f,) = run("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);")
    assert f.severity == "error" and "policy p on public.t does nothing" in f.message
    assert f.recipe == "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;"


def test_sc014_rls_enabled_before_or_later_in_migration_ok() -> None:
    assert lines("SC014", TABLE + RLS + "\nCREATE POLICY p ON t USING (true);") == []
    assert lines("SC014", TABLE, RLS, "CREATE POLICY p ON t USING (true);") == []
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);\n"
                                  "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;") == []


def test_sc014_enable_in_a_later_migration_ok() -> None:
    # Judged once the whole set is folded: the set enables it.
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);", RLS) == []
    # Never enabled: the finding stays with the policy's migration.
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);", "SELECT 1;") == \
        [("000_m.sql", 2)]


def test_sc014_force_before_the_policy_does_not_enable_err() -> None:
    assert lines("SC014", TABLE + "\nALTER TABLE t FORCE ROW LEVEL SECURITY;\n"
                                  "CREATE POLICY p ON t USING (true);") == [("000_m.sql", 3)]


def test_sc014_force_or_other_table_does_not_enable_err() -> None:
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);\n"
                                  "ALTER TABLE t FORCE ROW LEVEL SECURITY;\n"
                                  "ALTER TABLE other.t ENABLE ROW LEVEL SECURITY;") == \
        [("000_m.sql", 2)]


def test_sc014_enabled_then_disabled_later_err() -> None:
    # The DISABLE is the finding; the policy before the ENABLE is not reported twice.
    assert lines("SC014", TABLE + "\nCREATE POLICY p ON t USING (true);\n" + RLS +
                 "\nALTER TABLE t DISABLE ROW LEVEL SECURITY;") == [("000_m.sql", 4)]


def test_sc014_materialized_view_ok() -> None:
    # Not a table: PostgreSQL rejects the policy itself.
    assert lines("SC014", "CREATE MATERIALIZED VIEW m AS SELECT 1;\n"
                          "CREATE POLICY p ON m USING (true);") == []


def test_sc014_table_from_before_the_set_ok() -> None:
    assert lines("SC014", "CREATE POLICY p ON legacy USING (true);",
                 "ALTER TABLE legacy FORCE ROW LEVEL SECURITY;\n"
                 "CREATE POLICY q ON legacy USING (true);") == []


def test_sc014_policy_after_set_disables_rls_err() -> None:
    assert lines("SC014", "ALTER TABLE legacy DISABLE ROW LEVEL SECURITY;\n"
                          "CREATE POLICY p ON legacy USING (true);") == [("000_m.sql", 2)]


def test_sc014_disable_rls_on_table_with_policies_err() -> None:
    setup = TABLE + RLS + "\nCREATE POLICY p ON t USING (true);\nCREATE POLICY q ON t USING (true);"
    assert lines("SC014", setup, "ALTER TABLE t DISABLE ROW LEVEL SECURITY;") == \
        [("001_m.sql", 1)]
    (f,) = run("SC014", setup, "ALTER TABLE t DISABLE ROW LEVEL SECURITY;")
    assert "(p, q)" in f.message


def test_sc014_disable_rls_briefly_or_without_policies_ok() -> None:
    setup = TABLE + RLS + "\nCREATE POLICY p ON t USING (true);"
    assert lines("SC014", setup, "ALTER TABLE t DISABLE ROW LEVEL SECURITY;\n"
                                 "UPDATE t SET owner = 'x';\n" + RLS) == []
    assert lines("SC014", TABLE + RLS, "ALTER TABLE t DISABLE ROW LEVEL SECURITY;") == []
    assert lines("SC014", setup, "DROP POLICY p ON t;\n"
                                 "ALTER TABLE t DISABLE ROW LEVEL SECURITY;") == []


def test_sc014_renamed_table_keeps_its_state() -> None:
    assert lines("SC014", TABLE + RLS, "ALTER TABLE t RENAME TO u;\n"
                                       "CREATE POLICY p ON u USING (true);") == []
    assert lines("SC014", TABLE, "ALTER TABLE t RENAME TO u;\n"
                                 "CREATE POLICY p ON u USING (true);") == [("001_m.sql", 2)]


# ---------------------------------------------------------------------------- SC015


def test_sc015_rls_without_policy_err() -> None:
    assert lines("SC015", TABLE + "\n" + RLS) == [("000_m.sql", 2)]
    assert lines("SC015", TABLE, RLS) == [("001_m.sql", 1)]


def test_sc015_message_and_severity() -> None:
    (f,) = run("SC015", TABLE + "\n" + RLS)
    assert f.severity == "info" and "public.t" in f.message and "no rows" in f.message


def test_sc015_policy_before_or_later_in_migration_ok() -> None:
    assert lines("SC015", TABLE + "\n" + RLS + "\nCREATE POLICY p ON public.t USING (true);") == []
    assert lines("SC015", TABLE + "\nCREATE POLICY p ON t USING (true);", RLS) == []


def test_sc015_policy_in_a_later_migration_ok() -> None:
    assert lines("SC015", TABLE + "\n" + RLS, "CREATE POLICY p ON t USING (true);") == []
    assert lines("SC015", TABLE + "\n" + RLS, "SELECT 1;") == [("000_m.sql", 2)]


def test_sc015_policy_on_another_table_err() -> None:
    assert lines("SC015", TABLE + "\n" + RLS + "\nCREATE POLICY p ON other.t USING (true);") == \
        [("000_m.sql", 2)]


def test_sc015_schema_not_exposed_ok() -> None:
    assert lines("SC015", "CREATE TABLE auth.users (id int);\n"
                          "ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;") == []
    assert lines("SC015", "SET search_path = auth;\n" + TABLE + "\n" + RLS) == []


def test_sc015_exposed_schemas_setting() -> None:
    sqls = ("CREATE TABLE api.t (id int);\nALTER TABLE api.t ENABLE ROW LEVEL SECURITY;",
            TABLE + "\n" + RLS)
    assert lines("SC015", *sqls, exposed_schemas=("api",)) == [("000_m.sql", 2)]


def test_sc015_dropping_a_policy_of_another_table_ok() -> None:
    assert lines("SC015", TABLE + "\nCREATE POLICY p ON t USING (true);",
                 "DROP POLICY p ON other.t;", RLS) == []


def test_sc015_dropped_policies_err() -> None:
    assert lines("SC015", TABLE + "\nCREATE POLICY p ON t USING (true);",
                 "DROP POLICY IF EXISTS p ON t;", RLS) == [("002_m.sql", 1)]


def test_sc015_table_from_before_the_set_ok() -> None:
    assert lines("SC015", "ALTER TABLE legacy ENABLE ROW LEVEL SECURITY;") == []
    # The state has seen the table (an index on it) but not its CREATE.
    assert lines("SC015", "CREATE INDEX i ON legacy (id);",
                 "ALTER TABLE legacy ENABLE ROW LEVEL SECURITY;") == []
    assert lines("SC015", "CREATE MATERIALIZED VIEW m AS SELECT 1;\n"
                          "ALTER TABLE m ENABLE ROW LEVEL SECURITY;") == []


def test_sc015_force_and_repeated_enable_ok() -> None:
    assert lines("SC015", TABLE + "\nALTER TABLE t FORCE ROW LEVEL SECURITY;") == []
    assert lines("SC015", TABLE + "\n" + RLS, RLS) == [("000_m.sql", 2)]


def test_sc015_policies_follow_a_renamed_table() -> None:
    assert lines("SC015", TABLE + "\nCREATE POLICY p ON t USING (true);",
                 "ALTER TABLE t RENAME TO u;\nALTER TABLE u ENABLE ROW LEVEL SECURITY;") == []
    assert lines("SC015", TABLE + "\nCREATE POLICY p ON t USING (true);",
                 "ALTER POLICY p ON t RENAME TO q;\n" + RLS) == []


# ---------------------------------------------------------------------------- selection


def test_opt_in_and_profile() -> None:
    from sqlsafe import registry

    registry.load()
    assert registry.RULES["SC012"].profile == "supabase"
    assert registry.RULES["SC015"].profile == "supabase"
    assert not registry.RULES["SC013"].opt_in and not registry.RULES["SC014"].opt_in
