"""Shared helpers for rule tests: lint a few SQL strings as consecutive migrations."""

from __future__ import annotations

from sqlsafe.config import Config
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, Finding, Migration, Section


def migrations(*sqls: str, in_transaction: bool = False, layout: str = "file") -> DiscoveryResult:
    """One migration per string, in order (``000_m.sql``, ``001_m.sql``, ...)."""
    migs = []
    for i, sql in enumerate(sqls):
        path = f"{i:03d}_m.sql"
        migs.append(Migration(path=path, abspath=None, layout=layout, version=str(i), name="m",
                              section=Section(path, sql), in_transaction=in_transaction))
    return DiscoveryResult(tuple(migs))


def run(code: str, *sqls: str, pg: int = 15, in_transaction: bool = False,
        **config: object) -> list[Finding]:
    """Findings of rule ``code`` alone (engine findings excluded) over the migrations."""
    cfg = Config(select=(code,), pg_version=pg, **config)  # type: ignore[arg-type]
    result = lint(migrations(*sqls, in_transaction=in_transaction), cfg)
    return [f for f in result.findings if f.code == code]


def lines(code: str, *sqls: str, **kw: object) -> list[tuple[str, int]]:
    """(path, line) of each finding of ``code``: compact to assert on."""
    return [(f.path, f.span.line) for f in run(code, *sqls, **kw)]  # type: ignore[arg-type]
