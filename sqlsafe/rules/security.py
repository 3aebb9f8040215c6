"""security: statements that open holes or leak secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import nodes as n
from .._record import MutableRecord, record
from ..model import Fix
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
    if _is_foreign_table(ctx):
        return  # a foreign table cannot have row level security (SC020)
    schema = a.rel.schema or ctx.state.search_schema
    if schema not in ctx.config.exposed_schemas:
        return
    for _, later in ctx.later_actions():
        if isinstance(later, n.RowSecurity) and later.enable and not later.force and \
                later.rel.name == a.rel.name and (later.rel.schema or schema) == schema:
            return
        if isinstance(later, n.SetSchema) and later.objtype == "table" and \
                _same_rel(later.rel, a.rel.name, schema):
            if later.new_schema not in ctx.config.exposed_schemas:
                return  # moved out of the API's reach before the migration ends
            schema = later.new_schema  # moved to another exposed schema: still exposed
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


# ---------------------------------------------------------------------------- policy expressions
# What the rules below read from a policy's USING / WITH CHECK: the pglast expression trees of
# the CREATE POLICY / ALTER POLICY statement (the normalized actions keep only whether they are
# constant true).

_AUTH_FUNCTIONS = frozenset({"uid", "jwt", "role", "email"})
_SUBQUERY_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})


def _children(node: object) -> Iterator[object]:
    """The nodes directly below ``node`` (``_unwrapped_calls`` prunes the walk as it goes;
    a whole tree is ``normalize.iter_nodes``)."""
    from pglast import ast

    for slot in getattr(type(node), "__slots__", ()):
        value = getattr(node, slot, None)
        if isinstance(value, ast.Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, ast.Node):
                    yield item
                elif isinstance(item, tuple):  # lists of lists (VALUES rows, ...)
                    yield from (i for i in item if isinstance(i, ast.Node))


def _func_name(node: object) -> tuple[str, ...] | None:
    """The name of a function call node as written (schema parts included), or None."""
    if type(node).__name__ != "FuncCall":
        return None
    return tuple(getattr(p, "sval", "") for p in node.funcname or ())  # type: ignore[attr-defined]


def _per_row_function(node: object) -> str | None:
    """``auth.uid()``, ``auth.jwt()``, ``auth.role()``, ``auth.email()`` or
    ``current_setting()`` (as the message names it) when ``node`` calls one of them."""
    name = _func_name(node)
    if name is None:
        return None
    if len(name) == 2 and name[0] == "auth" and name[1] in _AUTH_FUNCTIONS:
        return f"auth.{name[1]}()"
    if name in (("current_setting",), ("pg_catalog", "current_setting")):
        return "current_setting()"
    return None


def _policy_exprs(ctx: RuleContext) -> list[tuple[str, object]]:
    """(clause, expression) of the USING and WITH CHECK the policy statement gives."""
    node = ctx.stmt.node
    if type(node).__name__ not in ("CreatePolicyStmt", "AlterPolicyStmt"):
        return []
    out = []
    for clause, attr in (("USING", "qual"), ("WITH CHECK", "with_check")):
        expr = getattr(node, attr, None)
        if expr is not None:
            out.append((clause, expr))
    return out


def _unwrapped_calls(expr: object) -> list[str]:
    """The per-row functions ``expr`` calls outside any sub-SELECT, in the order written.
    A call's own arguments are not searched: wrapping the call wraps them too."""
    out: list[str] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if type(node).__name__ == "SubLink":
            continue  # a sub-SELECT: (select auth.uid()), EXISTS (...), x IN (select ...)
        called = _per_row_function(node)
        if called is not None:
            out.append(called)
            continue
        stack.extend(reversed(list(_children(node))))
    return out


def _token_text(sql: str, tok: object) -> str:
    text = sql[tok.start:tok.end + 1]  # type: ignore[attr-defined]  # end is inclusive
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _call_ranges(sql: str) -> list[tuple[int, int, str]] | None:
    """(start, end, name) in ``sql`` of each per-row function call outside a parenthesized
    sub-SELECT, found with the scanner; None when the text does not scan."""
    from pglast import parser as pg

    try:
        tokens = pg.scan(sql)
    except Exception:
        return None
    words = [_token_text(sql, t) for t in tokens]
    out: list[tuple[int, int, str]] = []
    subquery: list[bool] = []  # one per open parenthesis: does it open a sub-SELECT?
    i = 0
    while i < len(tokens):
        name = tokens[i].name
        if name == "ASCII_40":
            subquery.append(i + 1 < len(tokens) and tokens[i + 1].name in _SUBQUERY_STARTS)
        elif name == "ASCII_41":
            if subquery:
                subquery.pop()
        elif not any(subquery) and (i == 0 or tokens[i - 1].name != "ASCII_46"):
            called = None
            if words[i:i + 2] == ["auth", "."] and i + 3 < len(tokens) and \
                    words[i + 2] in _AUTH_FUNCTIONS and tokens[i + 3].name == "ASCII_40":
                called, paren = f"auth.{words[i + 2]}()", i + 3
            elif words[i:i + 3] == ["pg_catalog", ".", "current_setting"] and \
                    i + 3 < len(tokens) and tokens[i + 3].name == "ASCII_40":
                called, paren = "current_setting()", i + 3
            elif words[i] == "current_setting" and i + 1 < len(tokens) and \
                    tokens[i + 1].name == "ASCII_40":
                called, paren = "current_setting()", i + 1
            if called is not None:
                depth, j = 0, paren
                while j < len(tokens):
                    depth += {"ASCII_40": 1, "ASCII_41": -1}.get(tokens[j].name, 0)
                    if depth == 0:
                        break
                    j += 1
                if j == len(tokens):
                    return None
                out.append((tokens[i].start, tokens[j].end + 1, called))
                i = j + 1
                continue
        i += 1
    return out


def _wrap_fix(ctx: RuleContext, calls: list[str]) -> Fix | None:
    """One edit wrapping each call in ``(select ...)``, when the scanner finds exactly the
    calls the parse tree has (in order); otherwise no fix."""
    sql = ctx.stmt.sql
    ranges = _call_ranges(sql)
    if not ranges or [name for _, _, name in ranges] != calls:
        return None
    first, last = ranges[0][0], ranges[-1][1]
    parts, pos = [], first
    for start, end, _ in ranges:
        parts += [sql[pos:start], "(select ", sql[start:end], ")"]
        pos = end
    parts.append(sql[pos:last])
    base = ctx.stmt.span.start
    return Fix("wrap the calls in (select ...)", base + first, base + last, "".join(parts))


def _ident(name: str) -> str:
    """A policy name as SQL spells it: quoted unless it is a plain lower-case identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _policy_target(a: n.Action, ctx: RuleContext) -> str:
    rel = a.rel  # type: ignore[attr-defined]
    return f"policy {_ident(a.name)} on {ctx.q(rel)}"  # type: ignore[attr-defined]


def _counted(names: list[str]) -> str:
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    parts = [name if k == 1 else f"{name} ({k} times)" for name, k in seen.items()]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


@rule("SC016", "policy-function-per-row", "security", wants=("CreatePolicy", "AlterPolicy"),
      severity="warning", profile="supabase", fixable=True,
      summary="A policy expression that calls auth.uid(), auth.jwt(), auth.role(), "
              "auth.email() or current_setting() outside a sub-select evaluates it for every "
              "row; (select auth.uid()) evaluates it once per query.")
def policy_function_per_row(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if getattr(a, "rel", None) is None:
        return
    calls: list[str] = []
    clauses: list[str] = []
    for clause, expr in _policy_exprs(ctx):
        found = _unwrapped_calls(expr)
        if found:
            calls += found
            clauses.append(clause)
    if not calls:
        return
    yield Violation(
        f"{_policy_target(a, ctx)} calls {_counted(calls)} in {' and '.join(clauses)} outside "
        f"a sub-select: PostgreSQL evaluates {'it' if len(calls) == 1 else 'each call'} again "
        "for every row the policy checks, which on a large table can make queries through "
        "the policy many times slower",
        "Wrap each call in a scalar sub-select, e.g. (select auth.uid()) = user_id: the "
        "planner runs it once per query as an initplan and compares every row with the "
        "result.",
        fix=_wrap_fix(ctx, calls),
    )


# Schemas Supabase creates and manages (their policies are the platform's), as splinter skips
# them when it counts permissive policies.
_SUPABASE_SCHEMAS = frozenset({
    "auth", "cron", "extensions", "graphql", "graphql_public", "information_schema", "net",
    "pgsodium", "pgsodium_masks", "pgbouncer", "pg_catalog", "pgtle", "realtime", "storage",
    "supabase_functions", "supabase_migrations", "vault",
})
# Roles that bypass row level security on Supabase: policies naming them are never evaluated.
_BYPASS_ROLES = frozenset({"service_role", "supabase_admin", "supabase_auth_admin",
                           "supabase_storage_admin"})
_COMMANDS = ("select", "insert", "update", "delete")


@record
class _Permissive(MutableRecord):
    command: str
    roles: tuple[str, ...]
    noted: Noted
    order: int  # when its roles were last set: the finding goes to the latest of a group


def _applies(roles: tuple[str, ...], role: str) -> bool:
    return "public" in roles or role in roles


@rule("SC017", "multiple-permissive-policies", "security",
      wants=("CreatePolicy", "AlterPolicy", "Rename", "Drop", SET_END),
      severity="warning", profile="supabase",
      summary="Two or more permissive policies on a table for the same role and command are "
              "all evaluated for every row a query by that role touches.")
def multiple_permissive_policies(a: n.Action | None, ctx: RuleContext) -> Iterator[Violation]:
    # Judged on the policies left at the end of the set: table -> policy name -> policy.
    tables: dict[str, dict[str, _Permissive]] = per_lint(ctx, "SC017", dict)
    match a:
        case None:
            yield from _overlapping_policies(tables)
            tables.clear()
        case n.CreatePolicy() if a.rel is not None:
            policies = tables.setdefault(ctx.q(a.rel), {})
            if a.permissive:
                policies[a.name] = _Permissive(a.command, a.roles or ("public",),
                                               Noted.at(ctx, ctx.q(a.rel), detail=a.name),
                                               _next_order(ctx))
            else:
                policies.pop(a.name, None)
        case n.AlterPolicy(roles=(_, *_)):
            known = tables.get(ctx.q(a.rel), {}).get(a.name)
            if known is not None:
                known.roles = a.roles
                known.noted = Noted.at(ctx, ctx.q(a.rel), detail=a.name)
                known.order = _next_order(ctx)
        case n.Rename(objtype="policy") if a.rel is not None:
            policies = tables.get(ctx.q(a.rel), {})
            if a.old in policies:
                policies[a.new] = policies.pop(a.old)
        case n.Rename(objtype="table") if a.rel is not None:
            old = ctx.q(a.rel)
            if old in tables:
                tables[ctx.q(n.Rel(a.new, a.rel.schema))] = tables.pop(old)
        case n.Drop(objtype="policy"):
            for rel, name in zip(a.rels, a.names, strict=False):
                tables.get(ctx.q(rel), {}).pop(name.split(".")[-1], None)
        case n.Drop(objtype="table"):
            for rel in a.rels:
                tables.pop(ctx.q(rel), None)


def _next_order(ctx: RuleContext) -> int:
    counter: list[int] = per_lint(ctx, "SC017.order", lambda: [0])
    counter[0] += 1
    return counter[0]


def _overlapping_policies(tables: dict[str, dict[str, _Permissive]]) -> Iterator[Violation]:
    for table, policies in tables.items():
        if table.split(".")[0] in _SUPABASE_SCHEMAS or len(policies) < 2:
            continue
        # policy names -> the (role, command) pairs they all apply to
        groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for command in _COMMANDS:
            applying = {name: p for name, p in policies.items() if p.command in ("all", command)}
            roles = sorted({r for p in applying.values() for r in p.roles} - _BYPASS_ROLES)
            for role in roles:
                names = tuple(sorted(name for name, p in applying.items()
                                     if (_applies(p.roles, role) if role != "public"
                                         else "public" in p.roles)))
                if len(names) > 1:
                    groups.setdefault(names, []).append((role, command))
        for names, pairs in groups.items():
            latest = max((policies[name] for name in names), key=lambda p: p.order)
            commands = [c.upper() for c in _COMMANDS if any(c == pc for _, pc in pairs)]
            roles = sorted({r for r, _ in pairs})
            who = "every role (PUBLIC)" if roles == ["public"] else \
                ("role " if len(roles) == 1 else "roles ") + \
                ", ".join("PUBLIC" if r == "public" else r for r in roles)
            yield latest.noted.violation(
                f"policies {', '.join(_ident(x) for x in names)} on {table} are all permissive for "
                f"{', '.join(commands)} by {who}: PostgreSQL evaluates each of them for every "
                "row such a query reads or writes and ORs the results, so every extra policy "
                "adds its whole cost to those queries",
                "Give each role and command one permissive policy: combine the conditions "
                "with OR in one policy, or split them by role with TO (a public-read policy "
                "TO anon, the owner's policy TO authenticated) so a query evaluates only its "
                "own. A policy meant to narrow the others belongs AS RESTRICTIVE.")


_JSON_FIELD_OPS = frozenset({"->", "->>"})
_JSON_PATH_OPS = frozenset({"#>", "#>>"})
_JSON_PATH_FUNCS = frozenset({"jsonb_extract_path", "jsonb_extract_path_text",
                              "json_extract_path", "json_extract_path_text"})


def _string_const(node: object) -> str | None:
    if type(node).__name__ == "A_Const":
        return getattr(getattr(node, "val", None), "sval", None)
    if type(node).__name__ == "TypeCast":  # 'user_metadata'::text
        return _string_const(getattr(node, "arg", None))
    return None


def _jwt_claims(node: object) -> bool:
    """``node`` is or contains the JWT's claims: auth.jwt(), or current_setting() of
    request.jwt.claims (PostgREST's setting)."""
    from ..normalize import iter_nodes

    for sub in iter_nodes(node):
        name = _func_name(sub)
        if name == ("auth", "jwt"):
            return True
        if name in (("current_setting",), ("pg_catalog", "current_setting")):
            args = getattr(sub, "args", None) or ()
            setting = _string_const(args[0]) if args else None
            if setting is not None and setting.startswith("request.jwt.claims"):
                return True
    return False


def _path_head(node: object) -> str | None:
    """The first key of a #> path: '{user_metadata,role}' or ARRAY['user_metadata', ...]."""
    text = _string_const(node)
    if text is not None:
        head = text.strip().lstrip("{").split(",")[0].strip().strip('"')
        return head or None
    if type(node).__name__ == "A_ArrayExpr":
        elements = getattr(node, "elements", None) or ()
        return _string_const(elements[0]) if elements else None
    return None


def _reads_user_metadata(expr: object) -> str | None:
    """How ``expr`` reads the user-editable metadata, as the message quotes it, or None."""
    from ..normalize import iter_nodes

    for node in iter_nodes(expr):
        kind = type(node).__name__
        if kind == "A_Expr":
            op = ".".join(getattr(p, "sval", "") for p in getattr(node, "name", None) or ())
            left, right = getattr(node, "lexpr", None), getattr(node, "rexpr", None)
            if op in _JSON_FIELD_OPS and _string_const(right) == "user_metadata" and \
                    left is not None and _jwt_claims(left):
                return f"{op} 'user_metadata' of the JWT"
            if op in _JSON_PATH_OPS and _path_head(right) == "user_metadata" and \
                    left is not None and _jwt_claims(left):
                return f"{op} path under user_metadata of the JWT"
        elif kind == "FuncCall":
            name: tuple[str, ...] = _func_name(node) or ("",)
            args: tuple[object, ...] = getattr(node, "args", None) or ()
            if name[-1] in _JSON_PATH_FUNCS and len(args) > 1 and \
                    _string_const(args[1]) == "user_metadata" and _jwt_claims(args[0]):
                return f"{name[-1]}(..., 'user_metadata') of the JWT"
            if name in (("current_setting",), ("pg_catalog", "current_setting")) and args and \
                    (_string_const(args[0]) or "").startswith("request.jwt.claim.user_metadata"):
                return "the request.jwt.claim.user_metadata setting"
        elif kind == "ColumnRef":
            fields = getattr(node, "fields", None) or ()
            if fields and getattr(fields[-1], "sval", None) == "raw_user_meta_data":
                return "raw_user_meta_data (of auth.users)"
    return None


@rule("SC018", "policy-uses-user-metadata", "security", wants=("CreatePolicy", "AlterPolicy"),
      profile="supabase",
      summary="A policy that reads the JWT's user_metadata (or auth.users.raw_user_meta_data) "
              "trusts a value every signed-in user can set for themselves.")
def policy_uses_user_metadata(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if getattr(a, "rel", None) is None:
        return
    for clause, expr in _policy_exprs(ctx):
        how = _reads_user_metadata(expr)
        if how is None:
            continue
        yield Violation(
            f"{_policy_target(a, ctx)} reads {how} in {clause}: user metadata is whatever the "
            "signed-in user last saved with auth.updateUser({ data: ... }), so any user can "
            "give themselves the value this policy checks",
            "Decide access with data the user cannot write: app_metadata (raw_app_meta_data, "
            "set only with the service role), or a table of roles or memberships that only "
            "privileged code writes.",
        )
        return


# ---------------------------------------------------------------------------- API exposure
# Supabase's API roles: the default privileges of an exposed schema grant them every table,
# view and materialized view its owner creates there.
_API_ROLES = ("anon", "authenticated")


def _is_foreign_table(ctx: RuleContext) -> bool:
    return ctx.stmt.kind == "CreateForeignTableStmt"


def _acl_targets(a: n.Grant, ctx: RuleContext) -> tuple[list[str], list[str]]:
    """(qualified relations, schemas) a GRANT / REVOKE on tables names: ON ALL TABLES IN
    SCHEMA s (every relation in s at that moment) gives schemas."""
    from pglast import enums

    targtype = getattr(ctx.stmt.node, "targtype", None)
    if targtype == enums.GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
        return [], list(a.objects)
    rels = []
    for obj in a.objects:
        parts = obj.split(".")
        rels.append(ctx.q(n.Rel(parts[-1], parts[-2] if len(parts) > 1 else None)))
    return rels, []


@record
class _Exposed(MutableRecord):
    noted: Noted
    readers: set[str]  # API roles that may still select from it
    # An IMPORT FOREIGN SCHEMA without LIMIT TO: the remote schema it copies (the tables'
    # names are not in the migration).
    imported_from: str = ""


def _api_roles_reached(grant: n.Grant) -> set[str]:
    """The API roles a GRANT or REVOKE of SELECT (or ALL) on tables changes: GRANT TO PUBLIC
    reaches them, REVOKE FROM PUBLIC leaves their own grants."""
    if not {"select", "all"} & set(grant.privileges):
        return set()
    grantees = set(grant.grantees)
    if grant.is_grant and "public" in grantees:
        return set(_API_ROLES)
    return grantees & set(_API_ROLES)


def _exposure(kind: str, a: n.Action | None, ctx: RuleContext) -> Iterator[Violation]:
    """SC019 / SC020: note the relations created in an exposed schema; follow the REVOKEs,
    GRANTs, renames and drops after them; judge at the end of the set.

    Default privileges decide who reads a relation from its CREATE on. Supabase grants the API
    roles per schema (ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon,
    authenticated, ...), so an exposed schema starts with both; global default privileges
    (without IN SCHEMA) start with neither and add to every schema's, and a per-schema REVOKE
    only takes back a per-schema grant, as PostgreSQL combines them. FOR ROLE is not checked
    against the role that runs the migrations, which the linter does not know."""
    code = "SC019" if kind == "materialized view" else "SC020"
    pending: dict[str, _Exposed] = per_lint(ctx, code, dict)
    # schema ("" for the global defaults) -> API roles its default privileges grant SELECT.
    defaults: dict[str, set[str]] = per_lint(ctx, f"{code}-defaults", dict)
    match a:
        case None:
            for rel, exposed in pending.items():
                if not exposed.readers:
                    continue
                readers = [r for r in _API_ROLES if r in exposed.readers]
                if exposed.imported_from:
                    schema = rel.split(".")[0]
                    yield exposed.noted.violation(
                        f"IMPORT FOREIGN SCHEMA {exposed.imported_from} creates a foreign table "
                        f"in {schema}, a schema the API exposes, for every table of the remote "
                        f"schema; foreign tables cannot have row level security, so "
                        f"{' and '.join(readers)} may select every row of them through the API",
                        f"Import into a schema the API does not expose (IMPORT FOREIGN SCHEMA "
                        f"{exposed.imported_from} ... INTO private) and serve what the API "
                        "needs through a security_invoker view or a function that checks the "
                        "caller.")
                    continue
                yield exposed.noted.violation(
                    f"{kind} {rel} is in a schema the API exposes and cannot have row level "
                    f"security: {' and '.join(readers)} may select every row of it through the "
                    "API (the schema's default privileges grant it to them)",
                    f"Create it in a schema the API does not expose, or revoke the API roles' "
                    f"access: REVOKE ALL ON {rel} FROM anon, authenticated; (and serve it "
                    "through a security_invoker view or a function that checks the caller).",
                    recipe=f"REVOKE ALL ON {rel} FROM anon, authenticated;")
            pending.clear()
        case n.CreateTable(temporary=False) if a.materialized == (kind == "materialized view") \
                and _is_foreign_table(ctx) == (kind == "foreign table"):
            schema = a.rel.schema or ctx.state.search_schema
            if schema in ctx.config.exposed_schemas:
                created = ctx.q(a.rel)
                granted = defaults.get(schema, set(_API_ROLES)) | defaults.get("", set())
                pending[created] = _Exposed(Noted.at(ctx, created), granted)
        case n.ImportForeignSchema() if kind == "foreign table" and \
                a.local_schema in ctx.config.exposed_schemas:
            granted = defaults.get(a.local_schema, set(_API_ROLES)) | defaults.get("", set())
            for name in a.tables:
                created = f"{a.local_schema}.{name}"
                pending[created] = _Exposed(Noted.at(ctx, created), set(granted))
            if not a.tables:
                key = f"{a.local_schema}.<tables of {a.remote_schema}>"
                pending[key] = _Exposed(Noted.at(ctx, key), set(granted), a.remote_schema)
        case n.DefaultPrivileges(grant=n.Grant(objtype="table") as grant):
            for schema in a.schemas or ("",):
                roles = defaults.setdefault(schema, set() if schema == "" else set(_API_ROLES))
                if grant.is_grant:
                    roles |= _api_roles_reached(grant)
                else:
                    roles -= _api_roles_reached(grant)
        case n.Grant(objtype="table") if pending and \
                ({"select", "all"} & set(a.privileges)):
            rels, schemas = _acl_targets(a, ctx)
            api = _api_roles_reached(a)
            for target, exposed in pending.items():
                if target in rels or target.split(".")[0] in schemas:
                    if a.is_grant:
                        exposed.readers |= api
                    else:
                        exposed.readers -= api
        case n.Rename() if a.rel is not None and ctx.q(a.rel) in pending and \
                a.objtype in ("table", kind):
            old = ctx.q(a.rel)
            pending[ctx.q(n.Rel(a.new, a.rel.schema))] = pending.pop(old)
        case n.SetSchema() if a.rel is not None and ctx.q(a.rel) in pending and \
                a.objtype in ("table", kind):
            exposed = pending.pop(ctx.q(a.rel))
            if a.new_schema in ctx.config.exposed_schemas:
                pending[f"{a.new_schema}.{a.rel.name}"] = exposed
        case n.Drop() if a.objtype == kind:
            for dropped in a.rels:
                pending.pop(ctx.q(dropped), None)


@rule("SC019", "materialized-view-in-api", "security",
      wants=("CreateTable", "Grant", "DefaultPrivileges", "Rename", "SetSchema", "Drop", SET_END),
      severity="warning", profile="supabase",
      summary="A materialized view in an exposed schema cannot have row level security: the "
              "API roles read all of it unless the set revokes their access.")
def materialized_view_in_api(a: n.Action | None, ctx: RuleContext) -> Iterator[Violation]:
    yield from _exposure("materialized view", a, ctx)


@rule("SC020", "foreign-table-in-api", "security",
      wants=("CreateTable", "ImportForeignSchema", "Grant", "DefaultPrivileges", "Rename",
             "SetSchema", "Drop", SET_END),
      severity="warning", profile="supabase",
      summary="A foreign table in an exposed schema cannot have row level security: the API "
              "roles read (and may write) the remote data unless the set revokes their "
              "access.")
def foreign_table_in_api(a: n.Action | None, ctx: RuleContext) -> Iterator[Violation]:
    yield from _exposure("foreign table", a, ctx)
