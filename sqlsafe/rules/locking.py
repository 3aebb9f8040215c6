"""locking: statements that hold a lock blocking reads or writes while they scan or build."""

from __future__ import annotations

from collections.abc import Iterator

from .. import locks as lk
from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("LK001", "non-concurrent-index-creation", "locking", wants=("CreateIndex",),
      summary="CREATE INDEX without CONCURRENTLY on an existing table blocks writes while it builds.",
      fixable=True, dry_run=True)
def non_concurrent_index_creation(a: n.CreateIndex, ctx: RuleContext) -> Iterator[Violation]:
    if a.concurrently or not ctx.existing(a.rel):
        return
    table = ctx.state.table(a.rel)
    if table is not None and table.partitioned:
        return  # CONCURRENTLY is not supported on partitioned parents (PG <= 18)
    fix = ctx.insert_after(r"\bINDEX\b", " CONCURRENTLY", "build the index concurrently")
    if fix is not None and ctx.in_tx:
        # CONCURRENTLY cannot run in a transaction block: the edit alone would break the file.
        fix = type(fix)(fix.description, fix.start, fix.end, fix.replacement, safe=False)
    yield Violation(
        f"CREATE INDEX {ctx.lock_phrase(lk.SHARE, a.rel)} for the whole build",
        "Use CREATE INDEX CONCURRENTLY (outside a transaction block), which allows reads and "
        "writes while the index builds.",
        fix=fix,
    )
