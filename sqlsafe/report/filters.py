"""The jinja2 environment the report templates share: StrictUndefined (a typo in a template is
an error, never an empty cell) and the small formatting filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2

from .model import BackoutCheck, LockView, MigrationView, StatementView, VerifyQuery


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms"


def yesno(value: bool | None) -> str:
    return "not checked" if value is None else ("yes" if value else "**no**")


def cell(value: Any) -> str:
    """Text safe inside a Markdown table cell (and inside backticks there)."""
    return " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")


def md(value: Any) -> str:
    return " ".join(str(value).split())


def locks(views: Sequence[LockView]) -> str:
    if not views:
        return "none"
    return "<br>".join(f"{v.sql_name} {v.relation}" + ("" if v.existing else " (new)")
                       for v in views)


def blocks(views: Sequence[LockView]) -> str:
    parts = []
    for v in views:
        if not v.existing:
            continue  # a table created by the set has no traffic to block yet
        what = "/".join(v.blocks) or "nothing"
        parts.append(f"{what} on {v.relation}")
    return "<br>".join(dict.fromkeys(parts)) or "nothing (new tables only)"


def rewrite(s: StatementView) -> str:
    if s.observed_rewrites:
        return "yes: " + ", ".join(s.observed_rewrites)
    if s.predicted_rewrites and s.duration_ms is None:
        return "predicted: " + ", ".join(s.predicted_rewrites)
    return "no"


def down(m: MigrationView) -> str:
    if m.down_status == "absent":
        return "none"
    if m.down_status == "applied":
        return {True: "restores schema", False: "**does not restore schema**",
                None: "applied"}[m.down_restores]
    return m.down_status


def backout(b: BackoutCheck) -> str:
    return {"restored": "restores the schema", "differs": "does not fully restore the schema",
            "failed": "failed", "not-run": "not run"}.get(b.status, b.status)


def verdict(q: VerifyQuery) -> str:
    if q.ok is None:
        return "not run"
    return f"✅ `{cell(q.observed)}`" if q.ok else f"❌ `{cell(q.observed)}`"


def environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sqlsafe", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(ms=ms, yesno=yesno, cell=cell, md=md, locks=locks, blocks=blocks,
                       rewrite=rewrite, down=down, backout=backout, verdict=verdict)
    return env
