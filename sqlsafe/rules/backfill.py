"""backfill: constraints that existing rows must satisfy with no backfill before them."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("BF001", "not-null-without-backfill", "backfill", wants=("SetNotNull",),
      summary="SET NOT NULL on a column added earlier in the set that no UPDATE has backfilled.",
      dry_run=True)
def not_null_without_backfill(a: n.SetNotNull, ctx: RuleContext) -> Iterator[Violation]:
    col = ctx.state.column(a.rel, a.column)
    if col is None or col.added_in is None or col.has_default or col.backfilled:
        return
    if ctx.state.is_new(a.rel):
        return  # the table itself is new: it has no rows
    if ctx.state.has_valid_not_null_check(a.rel, a.column):
        return
    yield Violation(
        f"{ctx.q(a.rel)}.{a.column} was added in {col.added_in} and nothing backfills it before "
        "SET NOT NULL: the statement fails on the existing rows",
        "Backfill the column (UPDATE in batches, in its own migration) before adding NOT NULL.",
    )
