"""security: statements that open holes."""

from __future__ import annotations

from collections.abc import Iterator

from .. import nodes as n
from ..registry import Violation, rule
from .context import RuleContext


@rule("SC001", "copy-program", "security", wants=("Copy",),
      summary="COPY ... PROGRAM runs a shell command on the database server.")
def copy_program(a: n.Copy, ctx: RuleContext) -> Iterator[Violation]:
    if not a.program:
        return
    yield Violation(
        "COPY ... PROGRAM runs a shell command on the database server as the postgres OS user",
        "Load data from the client (psql \\copy or COPY ... FROM STDIN) instead.",
    )
