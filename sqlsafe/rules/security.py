"""security: statements that open holes or leak secrets."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import SET_END, Violation, rule
from .context import Noted, RuleContext, per_lint


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


def _same_rel(rel: n.Rel | None, name: str, schema: str) -> bool:
    """``rel`` (as written later in the migration) names ``schema.name``."""
    return rel is not None and rel.name == name and (rel.schema or schema) == schema


def _security_invoker(options: tuple[tuple[str, str | None], ...]) -> bool | None:
    """The security_invoker a WITH/SET option list gives (a bare name means true)."""
    from ..normalize import bool_text

    value: bool | None = None
    for name, text in options:
        if name == "security_invoker":
            value = True if text is None else bool_text(text)
    return value


@rule("SC012", "security-definer-view", "security", wants=("CreateObject",),
      profile="supabase",
      summary="A view in an exposed schema without security_invoker (PostgreSQL 15+) reads its "
              "tables with the owner's privileges, bypassing the caller's row level security.")
def security_definer_view(a: n.CreateObject, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "view" or a.temporary or a.rel is None:
        return
    if ctx.pg < 15:
        return  # security_invoker exists since PostgreSQL 15; before, every view is definer
    schema = a.rel.schema or ctx.state.search_schema
    if schema not in ctx.config.exposed_schemas:
        return
    invoker = bool(_security_invoker(a.options))
    # The last word before the view is replaced counts. CREATE OR REPLACE VIEW replaces the
    # option list with its own, even an empty one (view.c, DefineVirtualRelation): a later
    # CREATE [OR REPLACE] of the same view is judged by itself, and this one no longer matters.
    for _, later in ctx.later_actions():
        match later:
            case n.CreateObject(objtype="view") if _same_rel(later.rel, a.rel.name, schema):
                return
            case n.AlterTableOther(subtype="SetRelOptions") if \
                    _same_rel(later.rel, a.rel.name, schema):
                value = _security_invoker(later.options)
                if value is not None:
                    invoker = value
            case n.AlterTableOther(subtype="ResetRelOptions") if \
                    _same_rel(later.rel, a.rel.name, schema) and \
                    any(name == "security_invoker" for name, _ in later.options):
                invoker = False
    if invoker:
        return
    yield Violation(
        f"view {schema}.{a.rel.name} is in an exposed schema and runs its query with the "
        "privileges of its owner: API roles that may select from it read the underlying "
        "tables without their own grants and row level security policies applying",
        "Create it WITH (security_invoker = true) so the caller's privileges and policies "
        "apply, or move it to a schema the API does not expose.",
        recipe=f"ALTER VIEW {schema}.{a.rel.name} SET (security_invoker = true);",
    )


def _policy_effect(command: str, using_true: bool, check_true: bool) -> str | None:
    """What a permissive policy with these constant-true clauses lets its roles write, or
    None when it opens no write. ``check_true`` is the WITH CHECK in force (ALL and UPDATE
    check USING when WITH CHECK is absent). INSERT takes only WITH CHECK and DELETE only
    USING; PostgreSQL rejects the other clause."""
    match command:
        case "insert":
            return "insert any row" if check_true else None
        case "delete":
            return "delete every row" if using_true else None
        case "update" if using_true:
            return "update every row" + (" to any values" if check_true else "")
        case "update" if check_true:
            return "write any values into the rows it may update, including the columns " \
                   "that say whose row it is"
        case "all" if using_true:
            return "read, update and delete every row" + \
                (" and insert any row" if check_true else "")
        case "all" if check_true:
            return "insert any row and write any values into the rows it may update"
    return None


def _clauses(using_true: bool, check_true: bool) -> str:
    return " and ".join(c for c, on in (("USING (true)", using_true),
                                        ("WITH CHECK (true)", check_true)) if on)


def _who(roles: tuple[str, ...]) -> str:
    if not roles or roles == ("public",):
        return "every role (PUBLIC)"
    return "role " + ", ".join(roles) if len(roles) == 1 else "roles " + ", ".join(roles)


@rule("SC013", "permissive-policy-always-true", "security",
      wants=("CreatePolicy", "AlterPolicy"), severity="warning",
      summary="A permissive INSERT/UPDATE/DELETE/ALL policy whose USING or WITH CHECK is "
              "constant true lets every role it names write every row.")
def permissive_policy_always_true(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    match a:
        case n.CreatePolicy(permissive=True) if a.rel is not None:
            command, rel, roles = a.command, a.rel, a.roles
            # Without WITH CHECK, ALL and UPDATE check new rows with USING.
            check_true = a.check_true or (a.using_true and not a.has_check)
        case n.AlterPolicy():
            known = ctx.state.policy(a.rel, a.name)
            if known is None or not known.permissive:
                return  # a policy from before the set: its command is not known here
            command, rel, roles = known.command, a.rel, a.roles or known.roles
            check_true = a.check_true
        case _:
            return
    effect = _policy_effect(command, a.using_true, check_true)
    if effect is None:
        return
    clauses = _clauses(a.using_true, a.check_true)
    # Wide open when every clause the command takes is true.
    wide_open = (a.using_true or command == "insert") and (check_true or command == "delete")
    tail = ", as if row level security were off for " + \
        ("those commands" if command == "all" else "that command") if wide_open else ""
    yield Violation(
        f"policy {a.name} on {ctx.q(rel)} is permissive FOR {command.upper()} with "
        f"{clauses}: {_who(roles)} may {effect}{tail}",
        "Write the condition that says whose rows these are (e.g. USING (owner = "
        "auth.uid()) WITH CHECK (owner = auth.uid())); if a role really may write every row, "
        "name only that role in TO and say why in a suppression.",
    )


@rule("SC014", "policy-without-row-level-security", "security",
      wants=("CreatePolicy", "RowSecurity", SET_END),
      summary="A policy on a table without row level security enabled does nothing: every "
              "role with table privileges still reads and writes every row.")
def policy_without_row_level_security(a: n.Action | None, ctx: RuleContext) -> Iterator[Violation]:
    # Judged on the state after the whole set: an ENABLE in the same migration or a later one
    # settles it. (detail: "policy <name>" or "disable")
    pending: list[Noted] = per_lint(ctx, "SC014", list)
    match a:
        case None:
            for noted in pending:
                t = ctx.state.table(noted.table)
                if t is None or t.rls is not False:
                    continue  # dropped later, or row level security enabled later in the set
                if noted.detail == "disable":
                    if not t.policies:
                        continue
                    what = (f"disabling row level security on {t.qualified} switches off the "
                            f"policies the set created on it ({', '.join(sorted(t.policies))})")
                else:
                    what = (f"{noted.detail} on {t.qualified} does nothing: row level security "
                            "is not enabled on the table")
                yield noted.violation(
                    f"{what}, so every role with privileges on the table reads and writes "
                    "every row",
                    f"ALTER TABLE {t.qualified} ENABLE ROW LEVEL SECURITY; (FORCE as well if "
                    "the owner must be bound too).",
                    recipe=f"ALTER TABLE {t.qualified} ENABLE ROW LEVEL SECURITY;")
            pending.clear()
        case n.CreatePolicy() if a.rel is not None:
            t = ctx.state.table(a.rel)
            # rls is None for a table the set neither created nor switched RLS on or off.
            if t is not None and t.kind == "table" and t.rls is False:
                pending.append(Noted.at(ctx, t.qualified, detail=f"policy {a.name}"))
        case n.RowSecurity(enable=False, force=False):
            t = ctx.state.table(a.rel)
            if t is not None and t.policies:
                # This finding names the table's policies: the earlier ones are not reported
                # a second time.
                pending[:] = [x for x in pending if x.table != t.qualified]
                pending.append(Noted.at(ctx, t.qualified, detail="disable"))


@rule("SC015", "row-level-security-without-policy", "security", wants=("RowSecurity", SET_END),
      severity="info", profile="supabase",
      summary="ENABLE ROW LEVEL SECURITY on a table the set creates in an exposed schema, with "
              "no policy for it in the set, hides every row from every role but the owner.")
def row_level_security_without_policy(a: n.RowSecurity | None,
                                      ctx: RuleContext) -> Iterator[Violation]:
    # Judged on the state after the whole set: a policy created later in it settles it.
    pending: list[Noted] = per_lint(ctx, "SC015", list)
    if a is None:
        for noted in pending:
            t = ctx.state.table(noted.table)
            if t is None or not t.rls or t.policies:
                continue  # dropped, disabled again, or given a policy later in the set
            yield noted.violation(
                f"row level security is enabled on {t.qualified} and the migration set creates "
                "no policy for it: every query by a role other than the owner (or one with "
                "BYPASSRLS) sees no rows, and its inserts, updates and deletes fail or change "
                "nothing",
                "Create the policies the application's roles need; if only the owner or a "
                "BYPASSRLS role may use the table, say so in a suppression.")
        pending.clear()
        return
    if not a.enable or a.force:
        return
    t = ctx.state.table(a.rel)
    if t is None or not t.known or t.kind != "table" or t.rls or t.policies:
        return  # not created in the set (its policies may predate it), or already judged
    schema = a.rel.schema or ctx.state.search_schema
    if schema not in ctx.config.exposed_schemas:
        return  # out of the API's reach, deny-all for its roles is usually the point
    pending.append(Noted.at(ctx, t.qualified))
