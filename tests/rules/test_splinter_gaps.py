"""Supabase splinter's policy and API-exposure lints as migration rules: SC016-SC020."""

from __future__ import annotations

import pytest
from helpers import lines, migrations, run
from pglast import parser as pg

from sqlsafe import fastparse
from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import Finding

TABLE = "CREATE TABLE t (id int, owner uuid, org int, published bool);\n"


def fixed(sql: str, finding: Finding) -> str:
    assert finding.fix is not None
    f = finding.fix
    return sql[:f.start] + f.replacement + sql[f.end:]


def test_profile_enables_the_new_rules() -> None:
    sql = (TABLE + "CREATE POLICY p ON t USING (owner = auth.uid());\n"
           "CREATE POLICY q ON t USING (auth.jwt() ->> 'user_metadata' IS NOT NULL);\n"
           "CREATE MATERIALIZED VIEW mv AS SELECT 1;\n"
           "CREATE FOREIGN TABLE ft (a int) SERVER s;\n")
    off = lint(migrations(sql), Config())
    assert not [f for f in off.findings if f.code in {"SC016", "SC017", "SC018", "SC019", "SC020"}]
    on = lint(migrations(sql), Config(profiles=("supabase",)))
    assert sorted((f.code, f.span.line) for f in on.findings
                  if f.code in {"SC016", "SC017", "SC018", "SC019", "SC020"}) == \
        [("SC016", 2), ("SC016", 3), ("SC017", 3), ("SC018", 3), ("SC019", 4), ("SC020", 5)]


# ---------------------------------------------------------------------------- SC016


@pytest.mark.parametrize("expr", ["owner = auth.uid()", "auth.role() = 'authenticated'",
                                  "auth.email() LIKE '%@example.com'",
                                  "(auth.jwt() ->> 'org')::int = org",
                                  "org = current_setting('app.org')::int",
                                  "org = pg_catalog.current_setting('app.org', true)::int",
                                  'owner = "auth"."uid"()',
                                  "is_member(org, auth.uid())",
                                  "CASE WHEN published THEN true ELSE owner = auth.uid() END"])
def test_sc016_direct_call_err(expr: str) -> None:
    assert lines("SC016", TABLE + f"CREATE POLICY p ON t USING ({expr});") == [("000_m.sql", 2)]


@pytest.mark.parametrize("expr", ["owner = (select auth.uid())", "owner = (SELECT auth.uid() AS uid)",
                                  "((select auth.role())) = 'authenticated'",
                                  "org = (select current_setting('app.org'))::int",
                                  "EXISTS (SELECT 1 FROM m WHERE m.org = t.org AND m.u = auth.uid())",
                                  "org IN (SELECT org FROM m WHERE u = auth.uid())",
                                  "owner = public.uid()", "owner = uid()", "owner = myauth.uid()",
                                  "published"])
def test_sc016_wrapped_or_other_calls_ok(expr: str) -> None:
    assert lines("SC016", TABLE + f"CREATE POLICY p ON t USING ({expr});") == []


def test_sc016_with_check_and_alter_policy_err() -> None:
    sql = (TABLE + "CREATE POLICY p ON t FOR INSERT WITH CHECK (owner = auth.uid());\n"
           "ALTER POLICY p ON t WITH CHECK (owner = (select auth.uid()));\n"
           "ALTER POLICY p ON t USING (owner = auth.uid());\n"
           "ALTER POLICY p ON t TO authenticated;\n")
    assert lines("SC016", sql) == [("000_m.sql", 2), ("000_m.sql", 4)]


def test_sc016_restrictive_policies_count_too() -> None:
    assert lines("SC016", TABLE + "CREATE POLICY p ON t AS RESTRICTIVE USING (auth.role() = 'x');") \
        == [("000_m.sql", 2)]


def test_sc016_message_names_calls_and_clauses() -> None:
    (f,) = run("SC016", TABLE + 'CREATE POLICY "Own rows" ON t FOR UPDATE '
               "USING (owner = auth.uid() AND org = current_setting('a')::int) "
               "WITH CHECK (owner = auth.uid());")
    assert f.message.startswith('policy "Own rows" on public.t calls auth.uid() (2 times) and '
                                "current_setting() in USING and WITH CHECK outside a sub-select")
    assert "(select auth.uid())" in f.help


def test_sc016_fix_wraps_every_call() -> None:
    sql = (TABLE + "CREATE POLICY \"é\" ON t FOR UPDATE USING (owner = \"auth\".\"uid\"() AND "
           "org = pg_catalog.current_setting(\n 'a', true)::int AND (select auth.email()) <> '')\n"
           "WITH CHECK (auth.uid() = owner AND is_member(org, current_setting(auth.role())));\n")
    (f,) = run("SC016", sql)
    out = fixed(sql, f)
    assert out == (TABLE + "CREATE POLICY \"é\" ON t FOR UPDATE USING (owner = "
                   "(select \"auth\".\"uid\"()) AND org = (select pg_catalog.current_setting(\n"
                   " 'a', true))::int AND (select auth.email()) <> '')\n"
                   "WITH CHECK ((select auth.uid()) = owner AND is_member(org, "
                   "(select current_setting(auth.role()))));\n")
    assert run("SC016", out) == []


def test_sc016_fix_in_a_later_statement_of_a_longer_file() -> None:
    sql = "SELECT 1;\n" + TABLE + "CREATE POLICY p ON t USING (owner = auth.uid());\n"
    (f,) = run("SC016", sql)
    assert fixed(sql, f).endswith("USING (owner = (select auth.uid()));\n")


def test_sc016_inside_do_block_has_no_fix() -> None:
    sql = TABLE + "DO $$ BEGIN\n  CREATE POLICY p ON t USING (owner = auth.uid());\nEND $$;\n"
    (f,) = run("SC016", sql)
    assert f.fix is None and "inside a DO block" in f.message


# ---------------------------------------------------------------------------- SC017


def test_sc017_public_select_and_owner_all_err() -> None:
    sql = (TABLE + "CREATE POLICY pub ON t FOR SELECT USING (published);\n"
           "CREATE POLICY own ON t FOR ALL TO authenticated USING (owner = (select auth.uid()));\n")
    (f,) = run("SC017", sql)
    assert f.span.line == 3
    assert f.message.startswith("policies own, pub on public.t are all permissive for SELECT by "
                                "role authenticated")


def test_sc017_two_public_policies_same_command_err() -> None:
    (f,) = run("SC017", TABLE + "CREATE POLICY a ON t FOR UPDATE USING (published);\n"
               "CREATE POLICY b ON t FOR UPDATE TO PUBLIC USING (org = 1);\n")
    assert (f.span.line, "UPDATE by every role (PUBLIC)" in f.message) == (3, True)


@pytest.mark.parametrize("second", [
    "CREATE POLICY b ON t AS RESTRICTIVE FOR SELECT USING (org = 1);",
    "CREATE POLICY b ON t FOR SELECT TO anon USING (org = 1);",
    "CREATE POLICY b ON t FOR INSERT TO authenticated WITH CHECK (org = 1);",
    "CREATE POLICY b ON t FOR SELECT TO service_role USING (true);",
    "CREATE POLICY b ON other FOR SELECT TO authenticated USING (true);",
])
def test_sc017_no_overlap_ok(second: str) -> None:
    sql = TABLE + "CREATE POLICY a ON t FOR SELECT TO authenticated USING (published);\n" + second
    assert lines("SC017", sql) == []


def test_sc017_dropped_or_renamed_policy_is_followed() -> None:
    first = TABLE + "CREATE POLICY a ON t FOR SELECT USING (published);\n"
    assert lines("SC017", first, "CREATE POLICY b ON t FOR SELECT USING (org = 1);",
                 "DROP POLICY a ON public.t;") == []
    # Renamed then dropped under its new name: gone.
    assert lines("SC017", first, "ALTER POLICY a ON t RENAME TO c;\n"
                 "CREATE POLICY a ON t FOR SELECT USING (org = 1);",
                 "DROP POLICY c ON t;") == []
    # Renamed and kept: two policies.
    assert lines("SC017", first, "ALTER POLICY a ON t RENAME TO c;\n"
                 "CREATE POLICY a ON t FOR SELECT USING (org = 1);") == [("001_m.sql", 2)]


def test_sc017_alter_policy_roles_in_between() -> None:
    sql = (TABLE + "CREATE POLICY a ON t FOR SELECT TO anon USING (published);\n"
           "CREATE POLICY b ON t FOR SELECT TO authenticated USING (org = 1);\n")
    assert lines("SC017", sql) == []
    # Re-targeted onto the other's role: reported at the ALTER that did it.
    assert lines("SC017", sql, "ALTER POLICY a ON t TO anon, authenticated;") == \
        [("001_m.sql", 1)]
    # Moved apart again: fine.
    assert lines("SC017", sql.replace("TO anon", "TO anon, authenticated"),
                 "ALTER POLICY a ON t TO anon;") == []


def test_sc017_dropped_or_renamed_table() -> None:
    sql = (TABLE + "CREATE POLICY a ON t FOR SELECT USING (published);\n"
           "CREATE POLICY b ON t FOR DELETE USING (org = 1);\n"
           "CREATE POLICY c ON t USING (org = 2);\n")
    # One finding per set of overlapping policies: a and c on SELECT, b and c on DELETE.
    assert [f.message.split(" are ")[0] for f in run("SC017", sql)] == \
        ["policies a, c on public.t", "policies b, c on public.t"]
    assert lines("SC017", sql, "DROP TABLE t;") == []
    assert [f.message.split(" are ")[0] for f in run("SC017", sql, "ALTER TABLE t RENAME TO u;")] \
        == ["policies a, c on public.u", "policies b, c on public.u"]


def test_sc017_supabase_managed_schema_ok() -> None:
    sql = ("CREATE POLICY a ON storage.objects FOR SELECT USING (bucket_id = 'a');\n"
           "CREATE POLICY b ON storage.objects FOR SELECT USING (bucket_id = 'b');\n")
    assert lines("SC017", sql) == []
    assert lines("SC017", sql.replace("storage.", "app.")) == [("000_m.sql", 2)]


# ---------------------------------------------------------------------------- SC018


@pytest.mark.parametrize("expr", [
    "auth.jwt() -> 'user_metadata' ->> 'role' = 'admin'",
    "(auth.jwt() ->> 'user_metadata')::jsonb ? 'admin'",
    "((select auth.jwt()) -> 'user_metadata' ->> 'org')::int = org",
    "current_setting('request.jwt.claims', true)::jsonb -> 'user_metadata' ->> 'r' = 'x'",
    "auth.jwt() #>> '{user_metadata,role}' = 'admin'",
    "auth.jwt() #>> ARRAY['user_metadata', 'role'] = 'admin'",
    "jsonb_extract_path_text(auth.jwt(), 'user_metadata', 'role') = 'admin'",
    "current_setting('request.jwt.claim.user_metadata', true) IS NOT NULL",
    "EXISTS (SELECT 1 FROM auth.users u WHERE u.id = owner AND "
    "u.raw_user_meta_data ->> 'admin' = 'true')",
])
def test_sc018_user_metadata_err(expr: str) -> None:
    assert lines("SC018", TABLE + f"CREATE POLICY p ON t USING ({expr});") == [("000_m.sql", 2)]


@pytest.mark.parametrize("expr", [
    "auth.jwt() -> 'app_metadata' ->> 'role' = 'admin'",
    "(select auth.jwt()) #>> '{app_metadata,role}' = 'admin'",
    "EXISTS (SELECT 1 FROM auth.users u WHERE u.raw_app_meta_data ->> 'admin' = 'true')",
    "profile -> 'user_metadata' ->> 'role' = 'admin'",
    "owner = (select auth.uid())",
])
def test_sc018_other_data_ok(expr: str) -> None:
    sql = ("CREATE TABLE t (id int, owner uuid, profile jsonb);\n"
           f"CREATE POLICY p ON t USING ({expr});")
    assert lines("SC018", sql) == []


def test_sc018_with_check_and_alter_policy() -> None:
    (f, g) = run("SC018", TABLE + "CREATE POLICY p ON t FOR INSERT "
                 "WITH CHECK (auth.jwt() -> 'user_metadata' ->> 'org' = org::text);\n"
                 "ALTER POLICY p ON t USING (auth.jwt() -> 'user_metadata' IS NOT NULL);")
    assert f.severity == "error" and "in WITH CHECK" in f.message and g.span.line == 3
    assert "app_metadata" in f.help


# ---------------------------------------------------------------------------- SC019 / SC020


def test_sc019_materialized_view_in_public_err() -> None:
    (f,) = run("SC019", "CREATE MATERIALIZED VIEW mv AS SELECT 1;")
    assert f.span.line == 1 and f.message.startswith(
        "materialized view public.mv is in a schema the API exposes")
    assert f.recipe == "REVOKE ALL ON public.mv FROM anon, authenticated;"


@pytest.mark.parametrize("sql", [
    "CREATE VIEW v AS SELECT 1;",
    "CREATE TABLE t (a int);",
    "CREATE MATERIALIZED VIEW private.mv AS SELECT 1;",
    "CREATE FOREIGN TABLE ft (a int) SERVER s;",
])
def test_sc019_other_relations_ok(sql: str) -> None:
    assert lines("SC019", sql) == []


def test_sc019_revoke_later_in_the_set() -> None:
    create = "CREATE MATERIALIZED VIEW mv AS SELECT 1;"
    assert lines("SC019", create, "REVOKE SELECT ON public.mv FROM anon, authenticated;") == []
    assert lines("SC019", create + "\nREVOKE ALL ON mv FROM anon;\n"
                 "REVOKE ALL ON TABLE mv FROM authenticated;") == []
    assert lines("SC019", create, "REVOKE ALL ON ALL TABLES IN SCHEMA public "
                 "FROM anon, authenticated;") == []
    (f,) = run("SC019", create, "REVOKE SELECT ON mv FROM anon;")
    assert "authenticated may select" in f.message and "anon" not in f.message.split(":")[1]
    # Neither FROM PUBLIC nor another privilege closes it; a later GRANT reopens it.
    assert lines("SC019", create, "REVOKE SELECT ON mv FROM PUBLIC;") == [("000_m.sql", 1)]
    assert lines("SC019", create, "REVOKE INSERT ON mv FROM anon, authenticated;") == \
        [("000_m.sql", 1)]
    assert lines("SC019", create, "REVOKE ALL ON mv FROM anon, authenticated;",
                 "GRANT SELECT ON mv TO PUBLIC;") == [("000_m.sql", 1)]
    # A schema-wide REVOKE before the view exists does not cover it.
    assert lines("SC019", "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anon, authenticated;",
                 create) == [("001_m.sql", 1)]


def test_sc019_dropped_or_renamed() -> None:
    create = "CREATE MATERIALIZED VIEW mv AS SELECT 1;"
    assert lines("SC019", create, "DROP MATERIALIZED VIEW mv;") == []
    assert lines("SC019", create, "DROP VIEW mv;") == [("000_m.sql", 1)]  # fails; not a drop
    assert lines("SC019", create, "ALTER MATERIALIZED VIEW mv RENAME TO m2;\n"
                 "REVOKE ALL ON m2 FROM anon, authenticated;") == []


def test_sc019_exposed_schemas_setting() -> None:
    sql = "CREATE MATERIALIZED VIEW api.mv AS SELECT 1;\nCREATE MATERIALIZED VIEW m2 AS SELECT 1;"
    assert lines("SC019", sql, exposed_schemas=("api",)) == [("000_m.sql", 1)]


def test_sc020_foreign_table_err_and_revoke_ok() -> None:
    create = "CREATE FOREIGN TABLE ft (a int) SERVER s;"
    (f,) = run("SC020", create)
    assert f.message.startswith("foreign table public.ft is in a schema the API exposes")
    assert lines("SC020", create, "REVOKE ALL ON ft FROM anon, authenticated;") == []
    assert lines("SC020", create, "DROP FOREIGN TABLE ft;") == []
    assert lines("SC020", "CREATE TABLE t (a int);\nCREATE MATERIALIZED VIEW mv AS SELECT 1;\n"
                 "CREATE FOREIGN TABLE private.ft (a int) SERVER s;") == []


def test_sc011_skips_foreign_tables() -> None:
    # ENABLE ROW LEVEL SECURITY fails on a foreign table: SC020 judges it instead.
    assert lines("SC011", "CREATE FOREIGN TABLE ft (a int) SERVER s;") == []
    assert lines("SC011", "CREATE TABLE t (a int);") == [("000_m.sql", 1)]


def test_fastparse_builds_create_foreign_table_like_pglast() -> None:
    # CreateForeignTableStmt embeds its CreateStmt by value (untagged in the JSON).
    sql = "CREATE FOREIGN TABLE s.ft (a int NOT NULL, b text) SERVER srv OPTIONS (x '1');"
    ((_, _, _, node),) = fastparse.parse_script(sql)
    assert node == pg.parse_sql(sql)[0].stmt
    assert node.base.relation.relname == "ft"
