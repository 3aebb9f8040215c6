"""style: conventions that don't endanger production but age badly."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("ST001", "prefer-timestamptz", "style", wants=("CreateTable", "AddColumn", "AlterColumnType"),
      severity="warning",
      summary="timestamp without time zone stores wall-clock times that are ambiguous across zones.")
def prefer_timestamptz(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    cols: list[tuple[str, n.TypeRef | None]] = []
    match a:
        case n.CreateTable():
            cols = [(c.name, c.type) for c in a.columns]
        case n.AddColumn():
            cols = [(a.column.name, a.column.type)]
        case n.AlterColumnType():
            cols = [(a.column, a.type)]
    for name, t in cols:
        if t is not None and t.name == "timestamp":
            yield Violation(
                f"column {name} is timestamp without time zone",
                "Use timestamptz, which stores an instant and converts to the session's zone.",
            )
