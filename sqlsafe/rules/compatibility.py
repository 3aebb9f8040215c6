"""compatibility: changes that break application code still running during the deploy."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("CP001", "not-null-column-without-default", "compatibility", wants=("AddColumn",),
      summary="ADD COLUMN ... NOT NULL without a DEFAULT on an existing table fails on rows and "
              "breaks INSERTs of code that does not know the column.", dry_run=True)
def not_null_column_without_default(a: n.AddColumn, ctx: RuleContext) -> Iterator[Violation]:
    col = a.column
    if not col.not_null or col.default is not None or col.identity or col.serial:
        return
    if col.generated_stored or not ctx.existing(a.rel):
        return
    yield Violation(
        f"column {col.name} is NOT NULL with no DEFAULT: the ALTER fails if {ctx.q(a.rel)} has "
        "rows, and INSERTs from code that does not set the column fail",
        "Add the column nullable (or with a DEFAULT), backfill it, then add the NOT NULL "
        "constraint in a later migration.",
        recipe=(
            f"ALTER TABLE {a.rel} ADD COLUMN {col.name} {col.type};\n"
            f"-- backfill in batches, in its own migration\n"
            f"ALTER TABLE {a.rel} ADD CONSTRAINT {a.rel.name}_{col.name}_not_null "
            f"CHECK ({col.name} IS NOT NULL) NOT VALID;\n"
            f"ALTER TABLE {a.rel} VALIDATE CONSTRAINT {a.rel.name}_{col.name}_not_null;\n"
            f"ALTER TABLE {a.rel} ALTER COLUMN {col.name} SET NOT NULL;"
        ),
    )
