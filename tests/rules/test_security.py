"""Security rules."""

from __future__ import annotations

from helpers import lines, run

FN = "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER {extra} AS 'SELECT 1';"


def test_sc001_copy_program_err() -> None:
    assert lines("SC001", "COPY t FROM PROGRAM 'cat /etc/passwd';") == [("000_m.sql", 1)]


def test_sc001_copy_stdin_ok() -> None:
    assert lines("SC001", "COPY t FROM STDIN;") == []


def test_sc002_copy_server_file_err() -> None:
    assert lines("SC002", "COPY t FROM '/tmp/t.csv';", "COPY t TO '/tmp/out.csv';") \
        == [("000_m.sql", 1), ("001_m.sql", 1)]


def test_sc002_stdin_stdout_and_program_ok() -> None:
    assert lines("SC002", "COPY t FROM STDIN;", "COPY t TO STDOUT;", "COPY t FROM PROGRAM 'x';") == []


def test_sc003_security_definer_without_search_path_err() -> None:
    assert lines("SC003", FN.format(extra="")) == [("000_m.sql", 1)]


def test_sc003_alter_function_security_definer_err() -> None:
    assert lines("SC003", "ALTER FUNCTION f() SECURITY DEFINER;") == [("000_m.sql", 1)]


def test_sc003_set_search_path_in_definition_ok() -> None:
    assert lines("SC003", FN.format(extra="SET search_path = pg_catalog, pg_temp")) == []


def test_sc003_alter_function_set_search_path_later_ok() -> None:
    sql = FN.format(extra="") + "\nALTER FUNCTION public.f() SET search_path = pg_catalog;"
    assert lines("SC003", sql) == []


def test_sc003_security_invoker_ok() -> None:
    assert lines("SC003", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';") == []


def test_sc004_grant_to_public_err() -> None:
    assert lines("SC004", "GRANT SELECT ON t TO PUBLIC;") == [("000_m.sql", 1)]


def test_sc004_grant_to_role_and_revoke_from_public_ok() -> None:
    assert lines("SC004", "GRANT SELECT ON t TO app;", "REVOKE ALL ON t FROM PUBLIC;") == []


def test_sc005_grant_all_err() -> None:
    assert lines("SC005", "GRANT ALL PRIVILEGES ON TABLE t TO app;") == [("000_m.sql", 1)]


def test_sc005_specific_privileges_and_role_membership_ok() -> None:
    assert lines("SC005", "GRANT SELECT, INSERT ON t TO app;", "GRANT admin TO alice;") == []


def test_sc006_alter_system_err() -> None:
    assert lines("SC006", "ALTER SYSTEM SET work_mem = '64MB';") == [("000_m.sql", 1)]


def test_sc006_alter_role_set_ok() -> None:
    assert lines("SC006", "ALTER ROLE app SET work_mem = '64MB';") == []


def test_sc007_password_literal_err() -> None:
    assert lines("SC007", "CREATE ROLE app LOGIN PASSWORD 'secret';",
                 "ALTER USER app WITH ENCRYPTED PASSWORD 'md5abc';") == [("000_m.sql", 1), ("001_m.sql", 1)]


def test_sc007_no_password_or_null_ok() -> None:
    assert lines("SC007", "CREATE ROLE app LOGIN;", "ALTER ROLE app PASSWORD NULL;") == []


def test_sc008_superuser_err() -> None:
    assert lines("SC008", "CREATE ROLE boss SUPERUSER;", "ALTER ROLE app SUPERUSER;") \
        == [("000_m.sql", 1), ("001_m.sql", 1)]


def test_sc008_nosuperuser_ok() -> None:
    assert lines("SC008", "CREATE ROLE app NOSUPERUSER;") == []


def test_sc009_untrusted_language_err() -> None:
    assert lines("SC009", "CREATE EXTENSION plpython3u;", "CREATE LANGUAGE plperlu;",
                 "CREATE LANGUAGE mylang HANDLER my_handler;") \
        == [("000_m.sql", 1), ("001_m.sql", 1), ("002_m.sql", 1)]


def test_sc009_trusted_language_ok() -> None:
    assert lines("SC009", "CREATE EXTENSION IF NOT EXISTS plpgsql;", "CREATE EXTENSION plperl;",
                 "CREATE TRUSTED LANGUAGE mylang HANDLER my_handler;") == []


def test_sc010_extension_in_public_err() -> None:
    assert lines("SC010", "CREATE EXTENSION pg_trgm;", "CREATE EXTENSION citext SCHEMA public;") \
        == [("000_m.sql", 1), ("001_m.sql", 1)]


def test_sc010_extension_in_own_schema_ok() -> None:
    assert lines("SC010", "CREATE EXTENSION pg_trgm SCHEMA extensions;",
                 "SET search_path = extensions;\nCREATE EXTENSION citext;",
                 "CREATE EXTENSION pg_cron;") == []


def test_sc011_table_without_rls_err() -> None:
    assert lines("SC011", "CREATE TABLE notes (id bigint);", profiles=("supabase",)) == [("000_m.sql", 1)]


def test_sc011_rls_enabled_later_in_migration_ok() -> None:
    sql = "CREATE TABLE notes (id bigint);\nALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;"
    assert lines("SC011", sql, profiles=("supabase",)) == []


def test_sc011_unexposed_schema_and_temp_tables_ok() -> None:
    assert lines("SC011", "CREATE TABLE private.notes (id bigint);",
                 "CREATE TEMP TABLE scratch (id bigint);", profiles=("supabase",)) == []


def test_sc011_exposed_schemas_setting_err() -> None:
    assert lines("SC011", "CREATE TABLE api.notes (id bigint);", profiles=("supabase",),
                 exposed_schemas=("public", "api")) == [("000_m.sql", 1)]


def test_sc011_off_without_profile_ok() -> None:
    from helpers import migrations

    from sqlsafe.config import Config
    from sqlsafe.lint import lint

    result = lint(migrations("CREATE TABLE notes (id bigint);"), Config())
    assert [f for f in result.findings if f.code == "SC011"] == []


def test_sc011_moved_out_of_the_exposed_schema_ok() -> None:
    sql = "CREATE TABLE notes (id bigint);\nALTER TABLE notes SET SCHEMA private;"
    assert lines("SC011", sql, profiles=("supabase",)) == []
    # Moved to another exposed schema: still reachable, and named where it ends up.
    moved = "CREATE TABLE notes (id bigint);\nALTER TABLE public.notes SET SCHEMA api;"
    (f,) = run("SC011", moved, profiles=("supabase",), exposed_schemas=("public", "api"))
    assert f.span.line == 1 and f.message.startswith("api.notes ")
    # ... unless row level security is enabled there.
    assert lines("SC011", moved + "\nALTER TABLE api.notes ENABLE ROW LEVEL SECURITY;",
                 profiles=("supabase",), exposed_schemas=("public", "api")) == []


def test_sc019_sc020_follow_set_schema() -> None:
    mv = "CREATE MATERIALIZED VIEW public.totals AS SELECT 1 AS x;"
    assert lines("SC019", mv, "ALTER MATERIALIZED VIEW public.totals SET SCHEMA private;",
                 profiles=("supabase",)) == []
    assert lines("SC019", mv, "ALTER MATERIALIZED VIEW public.totals SET SCHEMA api;",
                 profiles=("supabase",), exposed_schemas=("public", "api")) == [("000_m.sql", 1)]
    ft = "CREATE FOREIGN TABLE public.remote (id int) SERVER s;"
    assert lines("SC020", ft, profiles=("supabase",)) == [("000_m.sql", 1)]
    assert lines("SC020", ft, "ALTER FOREIGN TABLE public.remote SET SCHEMA private;",
                 profiles=("supabase",)) == []
