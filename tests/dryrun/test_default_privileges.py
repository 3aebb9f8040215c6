"""SC019 follows ALTER DEFAULT PRIVILEGES the way PostgreSQL combines them.

On a real server (embedded 18 and local 15) set up as Supabase sets up its exposed schema
(per-schema default privileges granting the API roles every table), each scenario runs before a
CREATE MATERIALIZED VIEW; the rule must flag the view exactly when an API role can then select
from it.
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


def _flagged(scenario: str) -> bool:
    sql = scenario + "\n" + VIEW
    disc = DiscoveryResult((Migration("001.sql", None, "file", None, "001.sql",
                                      Section("001.sql", sql)),))
    result = lint(disc, Config(select=("SC019",), profiles=("supabase",)))
    return any(f.code == "SC019" for f in result.findings)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_flagged_exactly_when_an_api_role_can_read_it(sandbox: Sandbox, scenario: str) -> None:
    with sandbox.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
        # The API roles; default privileges outside the schema outlive it: reset the global
        # ones too.
        conn.execute("DO $$ BEGIN CREATE ROLE anon; EXCEPTION WHEN duplicate_object THEN NULL; "
                     "END $$")
        conn.execute("DO $$ BEGIN CREATE ROLE authenticated; EXCEPTION WHEN duplicate_object "
                     "THEN NULL; END $$")
        conn.execute("ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM PUBLIC, anon, "
                     "authenticated")
        conn.execute(SUPABASE_LIKE)
        if scenario:
            conn.execute(scenario)
        conn.execute(VIEW)
        readable = conn.execute(
            "SELECT has_table_privilege('anon', 'public.totals', 'SELECT') "
            "OR has_table_privilege('authenticated', 'public.totals', 'SELECT')").fetchone()
    assert readable is not None
    assert _flagged(scenario) == readable[0], scenario
