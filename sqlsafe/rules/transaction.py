"""transaction: statements in the wrong transaction context."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


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
    why = "an explicit BEGIN" if ctx.state.tx.explicit else (
        f"the transaction {ctx.migration.layout} wraps each migration in")
    yield Violation(
        f"{what} cannot run inside a transaction block, and this statement runs inside {why}",
        "Put it in a migration of its own that is not wrapped in a transaction (e.g. dbmate "
        "transaction:false, goose NO TRANSACTION, a popx .autocommit. file).",
    )
