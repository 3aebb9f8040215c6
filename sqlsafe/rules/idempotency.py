"""idempotency: statements that fail or behave differently when the migration runs again."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext

_CREATE_KEYWORD = {
    "table": r"\bTABLE\b", "index": r"\bINDEX(\s+CONCURRENTLY)?\b", "schema": r"\bSCHEMA\b",
    "sequence": r"\bSEQUENCE\b", "extension": r"\bEXTENSION\b",
}


@rule("ID001", "create-without-if-not-exists", "idempotency",
      wants=("CreateTable", "CreateIndex", "CreateObject"), severity="warning",
      summary="CREATE TABLE/INDEX/SCHEMA/SEQUENCE/EXTENSION without IF NOT EXISTS fails when the "
              "migration is retried.", fixable=True, dry_run=True)
def create_without_if_not_exists(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    match a:
        case n.CreateTable(if_not_exists=False, as_select=False, temporary=False):
            kind, name = "table", str(a.rel)
        case n.CreateIndex(if_not_exists=False, name=str()):
            kind, name = "index", a.name
        case n.CreateObject(objtype="schema" | "sequence" | "extension", if_not_exists=False):
            kind, name = a.objtype, a.name
        case _:
            return
    if kind == "table" and getattr(a, "partition_of", None) is not None:
        pass
    fix = ctx.insert_after(_CREATE_KEYWORD[kind], " IF NOT EXISTS", "add IF NOT EXISTS")
    yield Violation(
        f"CREATE {kind.upper()} {name} fails if the migration runs again after a partial failure",
        f"Write CREATE {kind.upper()} IF NOT EXISTS so a retry is harmless.",
        fix=fix,
    )
