"""destructive: statements that lose data."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("DS001", "drop-table", "destructive", wants=("Drop",),
      summary="DROP TABLE deletes the table and every row in it.")
def drop_table(a: n.Drop, ctx: RuleContext) -> Iterator[Violation]:
    if a.objtype != "table":
        return
    for rel in a.rels:
        if ctx.state.is_new(rel):
            continue  # created and dropped in the same migration: nothing is lost
        yield Violation(
            f"DROP TABLE {rel} deletes the table and all its rows; running code that still "
            "reads or writes it starts failing",
            "Stop using the table in the application first, take a backup, and drop it in a "
            "later release.",
        )
