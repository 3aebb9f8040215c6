"""timeout: locks that queue behind running queries with no lock_timeout to give up."""

from __future__ import annotations

from collections.abc import Iterator

from .. import locks as lk
from .. import nodes as n
from ..registry import STATEMENT, Violation, rule
from .context import RuleContext


@rule("TO001", "lock-without-timeout", "timeout", wants=(STATEMENT,),
      summary="A statement takes ACCESS EXCLUSIVE or SHARE ROW EXCLUSIVE on an existing table with "
              "no lock_timeout in force.", fixable=True)
def lock_without_timeout(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.timeout_set("lock_timeout"):
        return
    strong = []
    for rel, mode in ctx.prediction.locks.items():
        if lk.rank(mode) < lk.rank(lk.SHARE_ROW_EXCLUSIVE):
            continue
        t = ctx.state.table(rel)
        if t is not None and t.created_in == ctx.migration.path and \
                t.created_index == ctx.migration_index:
            continue  # created in this migration: nobody else can hold a lock on it
        strong.append((rel, mode))
    if not strong:
        return
    rel, mode = max(strong, key=lambda rm: lk.rank(rm[1]))
    yield Violation(
        f"waits for {lk.SQL_NAMES[mode]} on {rel} with no lock_timeout: while it waits behind a "
        f"long query, every new query on {rel} queues behind it",
        "Set a short lock_timeout before the statement (and retry on failure), e.g. "
        "SET lock_timeout = '2s';",
        fix=ctx.insert_before_statement("SET lock_timeout = '2s';\n", "set lock_timeout first"),
    )
