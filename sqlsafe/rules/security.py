"""security: statements that open holes or leak secrets."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("SC001", "copy-program", "security", wants=("Copy",),
      summary="COPY ... PROGRAM runs a shell command on the database server.")
def copy_program(a: n.Copy, ctx: RuleContext) -> Iterator[Violation]:
    if not a.program:
        return
    yield Violation(
        "COPY ... PROGRAM runs a shell command on the database server as the postgres OS user",
        "Load data from the client (psql \\copy or COPY ... FROM STDIN) instead.",
    )


@rule("SC002", "copy-server-file", "security", wants=("Copy",),
      summary="COPY ... TO/FROM a file path reads or writes files on the database server.")
def copy_server_file(a: n.Copy, ctx: RuleContext) -> Iterator[Violation]:
    if a.program or a.filename is None:
        return  # STDIN/STDOUT (filename None) is the client's stream; PROGRAM is SC001
    verb = "reads" if a.is_from else "writes"
    yield Violation(
        f"COPY {'FROM' if a.is_from else 'TO'} '{a.filename}' {verb} a file on the database "
        "server's file system: it needs superuser or pg_read/write_server_files, and the file "
        "is not on the machine that runs the migration (nor on a managed database at all)",
        "Stream the data through the client: COPY ... FROM STDIN / TO STDOUT (psql \\copy).",
    )


def _sets_path_later(name: str, ctx: RuleContext) -> bool:
    short = name.split(".")[-1].lower()
    return any(isinstance(a, n.AlterFunction) and a.sets_search_path
               and a.name.split(".")[-1].lower() == short for _, a in ctx.later_actions())


@rule("SC003", "security-definer-without-search-path", "security",
      wants=("CreateFunction", "AlterFunction"),
      summary="A SECURITY DEFINER function without SET search_path can be hijacked by objects "
              "a caller creates in a schema on its search_path.")
def security_definer_without_search_path(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    match a:
        case n.CreateFunction(security_definer=True, sets_search_path=False):
            name = a.name
        case n.AlterFunction(security_definer=True, sets_search_path=False):
            name = a.name
        case _:
            return
    if _sets_path_later(name, ctx):
        return  # ALTER FUNCTION ... SET search_path later in the migration pins it
    yield Violation(
        f"{name} runs with its owner's privileges but resolves unqualified names through the "
        "caller's search_path: a caller who can create objects in any schema on that path "
        "(pg_temp is searched first for relations) can make it run their code",
        "Pin the path in the definition: SET search_path = pg_catalog, pg_temp (and "
        "schema-qualify every object), or an explicit list of trusted schemas.",
        recipe=f"ALTER FUNCTION {name} SET search_path = pg_catalog, pg_temp;",
    )


@rule("SC004", "grant-to-public", "security", wants=("Grant",),
      summary="GRANT ... TO PUBLIC gives the privilege to every role, present and future.")
def grant_to_public(a: n.Grant, ctx: RuleContext) -> Iterator[Violation]:
    if not a.is_grant or "public" not in [g.lower() for g in a.grantees]:
        return
    yield Violation(
        f"GRANT {', '.join(a.privileges).upper()} ON {a.objtype.upper()} "
        f"{', '.join(a.objects)} TO PUBLIC gives it to every role in the cluster, including "
        "roles created later",
        "Grant to the specific role (or a group role) that needs it.",
    )


@rule("SC005", "grant-all-privileges", "security", wants=("Grant",), severity="warning",
      opt_in=True,
      summary="GRANT ALL gives every privilege of the object type, including TRUNCATE, "
              "REFERENCES and TRIGGER on tables.")
def grant_all_privileges(a: n.Grant, ctx: RuleContext) -> Iterator[Violation]:
    if not a.is_grant or a.objtype == "role" or "all" not in a.privileges:
        return
    yield Violation(
        f"GRANT ALL ON {a.objtype.upper()} {', '.join(a.objects)} TO {', '.join(a.grantees)} "
        "gives every privilege, including TRUNCATE, REFERENCES and TRIGGER on tables",
        "Grant only what the role needs, e.g. GRANT SELECT, INSERT, UPDATE, DELETE.",
    )


@rule("SC006", "alter-system", "security", wants=("AlterSystem",),
      summary="ALTER SYSTEM changes server-wide configuration from a migration.")
def alter_system(a: n.AlterSystem, ctx: RuleContext) -> Iterator[Violation]:
    yield Violation(
        f"ALTER SYSTEM SET {a.name} rewrites postgresql.auto.conf for the whole server (every "
        "database), outside the server's configuration management, and needs superuser or "
        "the ALTER SYSTEM privilege (PostgreSQL 15+)",
        "Change server settings in the server's configuration; for one database or role use "
        "ALTER DATABASE / ALTER ROLE ... SET.",
    )


@rule("SC007", "password-in-migration", "security", wants=("CreateRole",),
      summary="CREATE/ALTER ROLE ... PASSWORD 'literal' puts a credential in the repository and "
              "in server logs.")
def password_in_migration(a: n.CreateRole, ctx: RuleContext) -> Iterator[Violation]:
    if not a.password_literal:
        return
    yield Violation(
        f"the password of role {a.name} is a literal: it is committed to the repository, "
        "shown in pg_stat_activity while the statement runs and written to the server log "
        "when statements are logged",
        "Create the role without a password (or with PASSWORD NULL) and set it out of band, "
        "e.g. psql's \\password, or a provisioning tool reading a secret store.",
    )


@rule("SC008", "superuser-role", "security", wants=("CreateRole",),
      summary="CREATE/ALTER ROLE ... SUPERUSER creates a role that bypasses every check.")
def superuser_role(a: n.CreateRole, ctx: RuleContext) -> Iterator[Violation]:
    if not a.superuser:
        return
    yield Violation(
        f"role {a.name} becomes a superuser: it bypasses every permission check and row level "
        "security, and can run programs on the server (COPY ... PROGRAM)",
        "Grant the specific privileges or predefined roles (pg_read_all_data, "
        "pg_monitor, ...) the role needs.",
    )


# Procedural languages shipped untrusted: functions in them can touch the server's files and
# run programs, so only superusers may create them. Languages are extensions since PostgreSQL
# 9.1, and a bare CREATE LANGUAGE name (no HANDLER) is parsed as CREATE EXTENSION name since
# PostgreSQL 13 (the parser sqlsafe uses does the same), so both forms arrive here.
UNTRUSTED_LANGUAGES = frozenset({
    "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "pljavau", "plsh", "plr",
})


@rule("SC009", "untrusted-language", "security", wants=("CreateLanguage", "CreateObject"),
      summary="An untrusted procedural language lets functions read files and run programs "
              "on the server.")
def untrusted_language(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    match a:
        case n.CreateLanguage():
            # With a HANDLER, a language is untrusted unless declared TRUSTED.
            name = a.name.lower()
            if a.trusted and name not in UNTRUSTED_LANGUAGES:
                return
        case n.CreateObject(objtype="extension") if a.name.lower() in UNTRUSTED_LANGUAGES:
            name = a.name.lower()
        case _:
            return
    yield Violation(
        f"{name} is an untrusted language: its functions run with the server's OS privileges "
        "(files, network, programs), and any role allowed to create functions in it owns the "
        "server",
        "Use a trusted language (plpgsql, plperl, plv8) or move the logic into the application.",
    )


# Extensions that install into a fixed schema of their own, so SCHEMA does not apply.
_FIXED_SCHEMA_EXTENSIONS = frozenset({"plpgsql", "pg_graphql", "pgsodium", "supabase_vault",
                                      "pg_cron", "timescaledb", "postgis_topology"})


@rule("SC010", "extension-in-public-schema", "security", wants=("CreateObject",),
      severity="warning", opt_in=True,
      summary="CREATE EXTENSION into the public schema (or with no SCHEMA) puts its objects "
              "where every role can see and shadow them.")
def extension_in_public_schema(a: n.CreateObject, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "extension" or a.name.lower() in _FIXED_SCHEMA_EXTENSIONS:
        return
    if a.name.lower() in UNTRUSTED_LANGUAGES:
        return
    schema = a.schema or ctx.state.search_schema
    if schema != "public":
        return
    where = "public" if a.schema else "the first schema on search_path (public)"
    yield Violation(
        f"extension {a.name} installs its functions and types into {where}, which every role "
        "can use and (before PostgreSQL 15) create objects in",
        "Install extensions into a schema of their own: CREATE EXTENSION ... SCHEMA extensions.",
    )


@rule("SC011", "table-without-row-level-security", "security", wants=("CreateTable",),
      profile="supabase", fixable=True,
      summary="A table created in an exposed schema (public by default) without ENABLE ROW "
              "LEVEL SECURITY in the same migration is readable through the API.")
def table_without_row_level_security(a: n.CreateTable, ctx: RuleContext) -> Iterator[Violation]:
    if a.temporary or a.materialized or a.partition_of is not None:
        return  # temp tables are private; partitions follow their parent's policy
    schema = a.rel.schema or ctx.state.search_schema
    if schema not in ctx.config.exposed_schemas:
        return
    for _, later in ctx.later_actions():
        if isinstance(later, n.RowSecurity) and later.enable and not later.force and \
                later.rel.name == a.rel.name and (later.rel.schema or schema) == schema:
            return
    yield Violation(
        f"{schema}.{a.rel.name} is in an exposed schema and this migration does not enable row "
        "level security on it: every API role with table privileges can read and write all "
        "its rows",
        f"ALTER TABLE {schema}.{a.rel.name} ENABLE ROW LEVEL SECURITY; then add policies.",
        fix=ctx.append_to_statement(
            f";\nALTER TABLE {schema}.{a.rel.name} ENABLE ROW LEVEL SECURITY",
            "enable row level security"),
    )
