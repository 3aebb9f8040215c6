"""SC019 follows ALTER DEFAULT PRIVILEGES the way PostgreSQL combines them, and SC020 the foreign
tables IMPORT FOREIGN SCHEMA creates.

On a real server (embedded 18 and local 15) set up as Supabase sets up its exposed schema
(per-schema default privileges granting the API roles every table), each scenario runs before a
CREATE MATERIALIZED VIEW; the rule must flag the view exactly when an API role can then select
from it. The same for foreign tables imported through postgres_fdw (on a server that has it:
the embedded one does not), with the grants and revokes after the import.
"""

from __future__ import annotations

import pytest

from sqlsafe.config import Config
from sqlsafe.dryrun.sandbox import Sandbox
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Migration, Section

pytestmark = pytest.mark.postgres

SUPABASE_LIKE = """
GRANT USAGE ON SCHEMA public TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated;
"""
VIEW = "CREATE MATERIALIZED VIEW public.totals AS SELECT 1 AS x;\n"

SCENARIOS = [
    "",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM anon, authenticated;",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon;",
    # Global defaults do not take back what the schema's grant.
    "ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM anon, authenticated;",
    # ... and add to them.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;\n"
    "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;",
    # The API roles hold grants of their own: revoking PUBLIC's leaves them.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM PUBLIC;",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;\n"
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO authenticated;",
]


@pytest.fixture(scope="module")
def sandbox(each_major: Sandbox) -> Sandbox:
    return each_major


def _flagged(scenario: str, code: str = "SC019", statement: str = VIEW) -> bool:
    sql = scenario + "\n" + statement
    disc = DiscoveryResult((Migration("001.sql", None, "file", None, "001.sql",
                                      Section("001.sql", sql)),))
    result = lint(disc, Config(select=(code,), profiles=("supabase",)))
    return any(f.code == code for f in result.findings)


def _supabase_like_public(conn: object) -> None:
    run = conn.execute  # type: ignore[attr-defined]
    run("DROP SCHEMA IF EXISTS public CASCADE")
    run("CREATE SCHEMA public")
    # The API roles; default privileges outside the schema outlive it: reset the global
    # ones too.
    run("DO $$ BEGIN CREATE ROLE anon; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    run("DO $$ BEGIN CREATE ROLE authenticated; EXCEPTION WHEN duplicate_object THEN NULL; "
        "END $$")
    run("ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM PUBLIC, anon, authenticated")
    run(SUPABASE_LIKE)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_flagged_exactly_when_an_api_role_can_read_it(sandbox: Sandbox, scenario: str) -> None:
    with sandbox.connect() as conn:
        _supabase_like_public(conn)
        if scenario:
            conn.execute(scenario)
        conn.execute(VIEW)
        readable = conn.execute(
            "SELECT has_table_privilege('anon', 'public.totals', 'SELECT') "
            "OR has_table_privilege('authenticated', 'public.totals', 'SELECT')").fetchone()
    assert readable is not None
    assert _flagged(scenario) == readable[0], scenario


IMPORTS = [
    # (what runs before, the import, what runs after)
    ("", "IMPORT FOREIGN SCHEMA remote_src FROM SERVER loop INTO public;", ""),
    ("", "IMPORT FOREIGN SCHEMA remote_src LIMIT TO (charges) FROM SERVER loop INTO public;", ""),
    ("", "IMPORT FOREIGN SCHEMA remote_src LIMIT TO (charges) FROM SERVER loop INTO public;",
     "REVOKE ALL ON public.charges FROM anon, authenticated;"),
    ("", "IMPORT FOREIGN SCHEMA remote_src FROM SERVER loop INTO public;",
     "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anon, authenticated;"),
    ("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;",
     "IMPORT FOREIGN SCHEMA remote_src FROM SERVER loop INTO public;", ""),
    ("", "IMPORT FOREIGN SCHEMA remote_src FROM SERVER loop INTO private;", ""),
]


@pytest.mark.parametrize(("before", "statement", "after"), IMPORTS)
def test_imported_foreign_tables_flagged_exactly_when_readable(
        sandbox: Sandbox, before: str, statement: str, after: str) -> None:
    with sandbox.connect() as conn:
        available = conn.execute("SELECT count(*) FROM pg_available_extensions "
                                 "WHERE name = 'postgres_fdw'").fetchone()
        if not available or not available[0]:
            pytest.skip(f"PostgreSQL {sandbox.server_version} here has no postgres_fdw")
        _supabase_like_public(conn)
        conn.execute("DROP SCHEMA IF EXISTS remote_src, private CASCADE")
        conn.execute("CREATE SCHEMA remote_src")
        conn.execute("CREATE SCHEMA private")
        conn.execute("CREATE TABLE remote_src.charges (id int, amount int)")
        conn.execute("CREATE TABLE remote_src.customers (id int, email text)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
        conn.execute("DROP SERVER IF EXISTS loop CASCADE")
        info = conn.info
        conn.execute(f"CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
                     f"(host '{info.host}', port '{info.port}', dbname '{info.dbname}')")
        conn.execute(f"CREATE USER MAPPING FOR CURRENT_USER SERVER loop "
                     f"OPTIONS (user '{info.user}')")
        for sql in (before, statement, after):
            if sql:
                conn.execute(sql)
        readable = conn.execute(
            "SELECT coalesce(bool_or(has_table_privilege('anon', c.oid, 'SELECT') "
            "OR has_table_privilege('authenticated', c.oid, 'SELECT')), false) "
            "FROM pg_class c WHERE c.relkind = 'f' "
            "AND c.relnamespace = 'public'::regnamespace").fetchone()
        imported = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'f'").fetchone()
    assert imported is not None and imported[0] > 0
    assert readable is not None
    flagged = _flagged(before, "SC020", statement + "\n" + after)
    assert flagged == readable[0], (before, statement, after)
