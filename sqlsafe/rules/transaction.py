"""transaction: statements in the wrong transaction context."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .. import nodes as n
from ..plpgsql import ends_transaction
from ..registry import MIGRATION_END, STATEMENT, Violation, rule
from ..txblock import DO_BLOCK_COMMITS, MAY_REFUSE, refuses_transaction_block
from .context import RuleContext

# Layouts whose tool sends the whole file as one multi-statement query: PostgreSQL runs it in
# one implicit transaction, which an explicit BEGIN ... COMMIT in the file replaces (legal).
IMPLICIT_TX_LAYOUTS = frozenset({"prisma", "golang-migrate", "popx"})


def _tool(ctx: RuleContext) -> str:
    layout = ctx.migration.layout
    return "the migration tool" if layout in ("file", "plain", "stdin", "mixed") else layout


def _tx_origin(ctx: RuleContext) -> str:
    if ctx.do_block:
        # Inside BEGIN or not: PostgreSQL refuses these from a function or DO block.
        return "a function body (PostgreSQL: 'cannot be executed from a function')"
    if ctx.state.tx.explicit:
        return "an explicit BEGIN"
    if ctx.migration.layout in IMPLICIT_TX_LAYOUTS:
        return (f"the implicit transaction PostgreSQL opens for a multi-statement query "
                f"({ctx.migration.layout} sends the whole file as one query)")
    return f"the transaction {_tool(ctx)} wraps each migration in"


def _concurrently(a: n.Action) -> str | None:
    match a:
        case n.CreateIndex(concurrently=True):
            return "CREATE INDEX CONCURRENTLY"
        case n.Drop(objtype="index", concurrently=True):
            return "DROP INDEX CONCURRENTLY"
        case n.Reindex(concurrently=True):
            return "REINDEX CONCURRENTLY"
        case n.DetachPartition(concurrently=True):
            return "DETACH PARTITION CONCURRENTLY"
    return None


@rule("TX001", "concurrently-in-transaction", "transaction",
      wants=("CreateIndex", "Drop", "Reindex", "DetachPartition"),
      summary="A CONCURRENTLY statement inside a transaction block fails.", dry_run=True)
def concurrently_in_transaction(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    what = _concurrently(a)
    if what is None or not ctx.in_tx:
        return
    yield Violation(
        f"{what} cannot run inside a transaction block, and this statement runs inside "
        f"{_tx_origin(ctx)}",
        "Put it in a migration of its own that is not wrapped in a transaction (e.g. dbmate "
        "transaction:false, goose NO TRANSACTION, a popx .autocommit. file, Flyway "
        "executeInTransaction=false); in a multi-statement file it must be the only statement.",
    )


def _no_tx_statement(a: n.Action, ctx: RuleContext) -> str | None:
    match a:
        case n.Vacuum(analyze_only=False):
            return "VACUUM"  # ANALYZE alone may run in a transaction block
        case n.AlterSystem():
            return "ALTER SYSTEM"
        case n.CreateDatabase():
            return "CREATE DATABASE"
        case n.Cluster(rel=None):
            return "CLUSTER without a table"
        case n.DoBlock(language="plpgsql"):
            return DO_BLOCK_COMMITS if ends_transaction(a.body) else None
        case n.Other(node="CallStmt"):
            name = _called(ctx.stmt.node)
            if name in ctx.state.committing_procedures:
                return f"CALL {name}(), a procedure that commits or rolls back,"
            return None
        case n.Other(node=node) if node == ctx.stmt.kind and node in MAY_REFUSE:
            # The whole statement (DROP DATABASE, tablespaces, subscriptions), judged by the
            # list the replay uses too.
            return refuses_transaction_block(ctx.stmt.node, ctx.pg * 10000)
        case n.Reindex(target="schema" | "database" | "system", concurrently=False):
            return f"REINDEX {a.target.upper()}"
        case n.AlterEnum(old_value=None) if a.new_value is not None and ctx.pg < 12:
            # Before PostgreSQL 12, ADD VALUE refuses a transaction block unless the enum type
            # was created in the same transaction.
            if ctx.state.type_created_tx.get(a.name.name) == ctx.state.tx.serial:
                return None
            return f"ALTER TYPE ... ADD VALUE (PostgreSQL {ctx.pg} < 12)"
    return None


def _called(node: Any) -> str:
    """The unqualified, lower-case name of the procedure a CALL statement calls."""
    names = getattr(getattr(node, "funccall", None), "funcname", None) or ()
    return str(getattr(names[-1], "sval", "")).lower() if names else ""


@rule("TX002", "statement-cannot-run-in-transaction", "transaction",
      wants=("Vacuum", "AlterSystem", "CreateDatabase", "Other", "Reindex", "AlterEnum",
             "Cluster", "DoBlock"),
      dry_run=True,
      summary="VACUUM, ALTER SYSTEM, CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, REINDEX "
              "SCHEMA/DATABASE/SYSTEM, CLUSTER without a table, CREATE SUBSCRIPTION with a "
              "slot, DROP SUBSCRIPTION, a DO block that commits (and ADD VALUE before "
              "PostgreSQL 12) fail inside a transaction block.")
def statement_cannot_run_in_transaction(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not ctx.in_tx:
        return
    what = _no_tx_statement(a, ctx)
    if what is None:
        return
    yield Violation(
        f"{what} cannot run inside a transaction block, and this statement runs inside "
        f"{_tx_origin(ctx)}",
        "Move it to a migration of its own that the tool does not wrap in a transaction (or, "
        "for ADD VALUE, target PostgreSQL 12+).",
    )


def _literal_re(value: str) -> re.Pattern[str]:
    return re.compile("'" + re.escape(value.replace("'", "''")) + "'")


@rule("TX003", "new-enum-value-used-in-transaction", "transaction", wants=(STATEMENT,),
      dry_run=True,
      summary="An enum value added by ALTER TYPE ... ADD VALUE is used before the transaction "
              "that added it commits (PostgreSQL 12+).")
def new_enum_value_used_in_transaction(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    # Before 12 the ADD VALUE itself fails in a transaction block (TX002).
    if ctx.pg < 12 or not ctx.in_tx or not ctx.state.tx.enum_values_added:
        return
    if any(isinstance(x, n.AlterEnum) for x in ctx.actions):
        return
    for type_name, value in sorted(ctx.state.tx.enum_values_added):
        if ctx.state.type_created_tx.get(type_name) == ctx.state.tx.serial:
            continue  # a type created in the same transaction may use its new values
        if _literal_re(value).search(ctx.sql):
            yield Violation(
                f"'{value}' was added to {type_name} earlier in this transaction and cannot be "
                "used before it commits: the statement fails with 'unsafe use of new value'",
                "Commit the ADD VALUE first: put it in a migration of its own (or end the "
                "transaction before using the value).",
            )


@rule("TX004", "uncommitted-transaction", "transaction", wants=(MIGRATION_END,),
      summary="BEGIN with no COMMIT: the migration ends with its transaction still open.")
def uncommitted_transaction(a: None, ctx: RuleContext) -> Iterator[Violation]:
    tx = ctx.state.tx
    if not tx.open or not tx.explicit:
        return
    if ctx.migration.in_transaction and ctx.migration.layout not in IMPLICIT_TX_LAYOUTS:
        return  # the tool commits its own transaction (TX007 flags the BEGIN)
    yield Violation(
        "the migration opens a transaction with BEGIN and never commits it: its changes are "
        "rolled back when the session ends, or get committed later with whatever runs next on "
        "the connection",
        "End the transaction with COMMIT at the end of the file.",
    )


_STRAY = {"commit": "COMMIT", "rollback": "ROLLBACK", "savepoint": "SAVEPOINT",
          "release": "RELEASE SAVEPOINT", "rollback_to": "ROLLBACK TO SAVEPOINT"}


@rule("TX005", "commit-without-begin", "transaction", wants=("Transaction",),
      summary="COMMIT/ROLLBACK/SAVEPOINT with no transaction open.")
def commit_without_begin(a: n.Transaction, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.in_tx or a.op not in _STRAY:
        return
    what = _STRAY[a.op]
    if a.op in ("commit", "rollback"):
        effect = ("PostgreSQL only warns 'there is no transaction in progress', but the "
                  "statements before it already committed one by one")
    else:
        effect = "it fails: savepoints only exist inside a transaction block"
    yield Violation(
        f"{what} with no transaction open: {effect}",
        "Add the missing BEGIN where the transaction should start, or remove the statement.",
    )


@rule("TX006", "nested-begin", "transaction", wants=("Transaction",),
      summary="BEGIN inside a transaction that an earlier BEGIN opened.")
def nested_begin(a: n.Transaction, ctx: RuleContext) -> Iterator[Violation]:
    if a.op != "begin" or not ctx.in_tx or not ctx.state.tx.explicit:
        return
    yield Violation(
        "BEGIN while a transaction is already open: PostgreSQL has no nested transactions, it "
        "warns and ignores it, and the first COMMIT ends the outer transaction",
        "Remove the inner BEGIN (use SAVEPOINT for a partial rollback).",
    )


@rule("TX007", "transaction-control-in-wrapped-migration", "transaction",
      wants=("Transaction",),
      summary="BEGIN/COMMIT/ROLLBACK in a migration the tool already runs in a transaction.")
def transaction_control_in_wrapped_migration(a: n.Transaction, ctx: RuleContext
                                             ) -> Iterator[Violation]:
    if not ctx.migration.in_transaction or not ctx.in_tx:
        return
    implicit = ctx.migration.layout in IMPLICIT_TX_LAYOUTS
    tool_tx = not ctx.state.tx.explicit
    if a.op == "begin" and tool_tx and not implicit:
        yield Violation(
            f"BEGIN inside the transaction {_tool(ctx)} already wraps the migration "
            "in: PostgreSQL ignores it with a warning, and the file's COMMIT then ends the "
            "tool's transaction early",
            "Remove BEGIN/COMMIT from the file; the tool provides the transaction.",
        )
    elif a.op in ("commit", "rollback") and ctx.do_block:
        return  # refused in a transaction block: TX002 reports the DO statement
    elif a.op in ("commit", "rollback") and (not implicit or tool_tx):
        verb = a.op.upper()
        origin = "the implicit transaction of the multi-statement query" if implicit else (
            f"the transaction {_tool(ctx)} wraps the migration in")
        yield Violation(
            f"{verb} ends {origin}: the statements after it run outside it, and a failure "
            "there leaves the migration half applied",
            "Remove it; let the tool commit (or turn the tool's transaction off for this file "
            "and manage BEGIN/COMMIT yourself).",
        )
