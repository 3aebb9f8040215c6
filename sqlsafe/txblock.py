"""Statements PostgreSQL refuses inside a transaction block (``PreventInTransactionBlock``).

One list for both halves: the replay runs these outside the migration's transaction, and the
lint (TX001, TX002) reports them where the migration tool wraps the file in one.
``tests/dryrun/test_tx_block_refusals.py`` checks every entry, and the statements next to them
that are accepted, against real PostgreSQL 15 and 18 servers.
"""

from __future__ import annotations

from typing import Any

from .plpgsql import ends_transaction

_ALWAYS = {
    "CreatedbStmt": "CREATE DATABASE", "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM", "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    # Refused when the subscription has a replication slot, which it has unless it was
    # created (or altered) with slot_name = NONE: not known from the statement.
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}

# Every statement kind (pglast node class) ``refuses_transaction_block`` can refuse: callers
# that know only a statement's kind ask for its node only for these.
MAY_REFUSE = frozenset({
    "IndexStmt", "DropStmt", "ReindexStmt", "VacuumStmt", "ClusterStmt",
    "CreateSubscriptionStmt", "DoStmt", "AlterEnumStmt", "AlterTableStmt", *_ALWAYS})

_FALSE_WORDS = frozenset({"false", "off", "0"})


def _bool_option(options: Any, name: str) -> bool | None:
    """A boolean ``WITH (name = value)`` option: None when absent; a bare name is true."""
    for opt in options or ():
        if getattr(opt, "defname", None) != name:
            continue
        arg = getattr(opt, "arg", None)
        if arg is None:
            return True
        value = getattr(arg, "sval", None)
        if value is None:
            value = getattr(arg, "boolval", getattr(arg, "ival", True))
        return str(value).lower() not in _FALSE_WORDS
    return None


def _do_ends_transaction(node: Any) -> bool:
    """A PL/pgSQL DO block that runs COMMIT or ROLLBACK: PostgreSQL refuses those inside a
    transaction block ('invalid transaction termination')."""
    from .nodes import DoBlock
    from .normalize import normalize

    block = next(iter(normalize(node)), None)  # the DO statement's body and language
    return isinstance(block, DoBlock) and block.language == "plpgsql" and \
        ends_transaction(block.body)


DO_BLOCK_COMMITS = "a DO block that commits or rolls back"


def refuses_transaction_block(node: Any, server_version_num: int) -> str | None:
    """What PostgreSQL calls the statement when it refuses to run it inside a transaction
    block (e.g. ``CREATE INDEX CONCURRENTLY``), or None when it runs there.

    CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY (PG 12+), REINDEX SCHEMA / DATABASE /
    SYSTEM, VACUUM (not ANALYZE alone), CLUSTER without a table, ALTER TABLE ... DETACH
    PARTITION CONCURRENTLY (PG 14+), CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER
    SYSTEM, CREATE SUBSCRIPTION that creates its slot, DROP SUBSCRIPTION, a DO block that
    COMMITs or ROLLBACKs (refused with 'invalid transaction termination' rather than
    PreventInTransactionBlock's error), and ALTER TYPE ... ADD VALUE before PostgreSQL 12
    (unless the type was created in the same transaction, which only the lint's schema state
    knows).
    """
    if node is None:
        return None
    name = type(node).__name__
    if name == "IndexStmt":
        return "CREATE INDEX CONCURRENTLY" if node.concurrent else None
    if name == "DropStmt":
        return "DROP INDEX CONCURRENTLY" if getattr(node, "concurrent", False) else None
    if name == "ReindexStmt":
        kind = getattr(node.kind, "name", "")
        if kind in ("REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_SCHEMA"):
            return "REINDEX " + kind.rsplit("_", 1)[1]
        if any(getattr(p, "defname", None) == "concurrently" for p in node.params or ()):
            return "REINDEX CONCURRENTLY"
        return None
    if name == "VacuumStmt":
        return "VACUUM" if node.is_vacuumcmd else None
    if name == "ClusterStmt":
        return "CLUSTER without a table" if node.relation is None else None
    if name == "CreateSubscriptionStmt":
        # create_slot follows connect (default true) unless given; connect = false and
        # create_slot = true together is an error of its own.
        slot = _bool_option(node.options, "create_slot")
        if slot is None:
            slot = _bool_option(node.options, "connect") is not False
        return "CREATE SUBSCRIPTION that creates its replication slot" if slot else None
    if name == "DoStmt":
        return DO_BLOCK_COMMITS if _do_ends_transaction(node) else None
    if name in _ALWAYS:
        return _ALWAYS[name]
    if name == "AlterEnumStmt":
        if server_version_num < 120000 and node.oldVal is None:
            return f"ALTER TYPE ... ADD VALUE (PostgreSQL {server_version_num // 10000} < 12)"
        return None
    if name == "AlterTableStmt":
        for cmd in node.cmds or ():
            if getattr(cmd.subtype, "name", "") == "AT_DetachPartition" and \
                    getattr(cmd.def_, "concurrent", False):
                return "DETACH PARTITION CONCURRENTLY"
    return None
