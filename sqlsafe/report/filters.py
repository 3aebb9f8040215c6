"""The jinja2 environment the report templates share: StrictUndefined (a typo in a template is
an error, never an empty cell) and the small formatting filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2

from ..dryrun.result import describe_sizes, measured_size
from .build import approx
from .model import (
    BackoutCheck,
    BlockingView,
    EstimateView,
    InjectionView,
    LockView,
    MigrationView,
    StatementView,
    VerifyQuery,
)


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


def size(value: int | None) -> str:
    """Bytes, two significant figures (an estimate: the exact figure would claim precision)."""
    if value is None:
        return "unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"≈ {value / scale:.2g} {unit}".replace("e+", "e")
    return f"≈ {value} B"


def _verb(blocked: bool | None) -> str:
    return "not probed" if blocked is None else ("blocked" if blocked else "not blocked")


def blocking(b: BlockingView, hold: EstimateView | None = None) -> str:
    """'public.t: blocked writes (for ≈ 1.2 s at production size); reads not blocked — as the
    lock table predicts for SHARE'."""
    ops = (("reads", b.reads_blocked), ("writes", b.writes_blocked))
    blocked = [op for op, v in ops if v]
    free = [op for op, v in ops if v is False]
    parts = []
    if blocked:
        text = "blocked " + " and ".join(blocked)
        if hold is not None and hold.lock_hold_ms is not None and hold.rows is not None:
            text += f" (for {approx(hold.lock_hold_ms)} at production size)"
        parts.append(text)
    if free:
        parts.append(" and ".join(free) + " not blocked")
    text = f"{b.relation}: " + "; ".join(parts or ["not probed"])
    if b.mode is None:
        return text + " — no lock of the statement's own on it"
    if b.agrees:
        return text + f" — as the lock table predicts for {b.mode}"
    return (text + f" — **differs from the lock table** for {b.mode}: "
            + "; ".join(b.discrepancies))


def est(e: EstimateView | None) -> str:
    """The statement-table cell: estimated duration and lock hold at production size."""
    if e is None:
        return "—"
    if e.estimated_ms is None:
        return "no production row count"
    text = approx(e.estimated_ms)
    if e.lock_hold_ms is not None and e.lock_hold_ms != e.estimated_ms:
        text += f", locks held {approx(e.lock_hold_ms)}"
    return text


def basis(e: EstimateView) -> str:
    """What an estimate rests on: sizes measured, the fit, the rows assumed and their source."""
    points = ", ".join(f"{p.rows:,} rows → {approx(p.ms).removeprefix('≈ ')}"
                       for p in e.measured)
    fit = {"constant": "constant (did not grow with the rows)"}.get(e.model, e.model + " fit")
    where = (f"{e.rows:,} rows of {e.relation} ({e.rows_source})" if e.rows is not None
             else f"{e.relation}: {e.rows_source}")
    text = f"measured at {points}; {fit}; at {where}"
    if e.relation_bytes is not None and e.rows:
        text += f"; table size after {size(e.relation_bytes)}"
    return text


def hold(m: MigrationView) -> str:
    """The summary cell: the longest estimated lock hold of the migration."""
    e = m.longest_hold
    if e is None:
        return "not estimated" if m.risk_basis.startswith("not estimated") else "—"
    where = f" ({e.lock_mode} on {e.lock_relation})" if e.existing else " (new tables only)"
    return approx(e.lock_hold_ms) + where


def thousands(value: int) -> str:
    return f"{value:,}"


def injection(i: InjectionView) -> str:
    verdict = {"ok": "retry ok", "failed": "retry **failed**",
               "schema differs": "retry **leaves a different schema**"}.get(i.retry, i.retry)
    text = f"interrupted {i.where}: {verdict}"
    if i.error:
        text += f" — {i.error}"
    if i.note:
        text += f" ({i.note})"
    return text


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
                       rewrite=rewrite, down=down, backout=backout, verdict=verdict,
                       approx=approx, size=size, measured_size=measured_size,
                       sizes=describe_sizes,
                       blocking=blocking, est=est, basis=basis,
                       hold=hold, injection=injection, thousands=thousands)
    return env
