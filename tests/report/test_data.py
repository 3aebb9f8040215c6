"""The report shows what the dry run with data measured: estimates at production size (and the
risk and go/no-go they drive), measured blocking next to the lock table, failure injection and
the explanation of failures only rows revealed. Renderer and policy tests run on a synthetic
result with fixed measurements; the committed sample report (tests/report/test_reports.py)
comes from a real dry run.

Refresh the golden files after an intended change: SQLSAFE_UPDATE_REPORTS=1 pytest tests/report
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from golden_files import assert_golden

from sqlsafe._record import replace
from sqlsafe.dryrun.result import Blocking, DryRunResult, SizeChange
from sqlsafe.report import plan, render
from sqlsafe.report.build import build_report, decide, relative_paths
from sqlsafe.report.model import (
    CONDITIONAL,
    GO,
    NO_GO,
    BackoutCheck,
    EstimateView,
    InjectionView,
    MeasuredPoint,
    Report,
)

FIXTURE = "with_data/rollout"
EXPLANATION = ("column heartbeat is NOT NULL with no default: existing rows violate it — add it "
               "nullable (or with a default), backfill, then SET NOT NULL")


def _estimate(line: int, relation: str, rows: int, ms: float, source: str = "--rows",
              model: str = "linear") -> dict[str, Any]:
    return {"line": line, "relation": relation, "rows": rows, "rows_source": source,
            "estimated_ms": ms, "lock_hold_ms": ms, "relation_bytes": rows * 90 or None,
            "fit": {"model": model, "a_ms": 1.0, "b_ms": 0.0007, "rmse_ms": 0.0},
            "measured": [{"rows": 5000, "ms": 4.5}, {"rows": 50000, "ms": 36.0}]}


def with_data(dry: DryRunResult, *, orders_ms: float = 71_540.0, settings_ms: float = 8.5,
              estimates: bool = True, read_blocked: bool = True) -> DryRunResult:
    """The synthetic result of fixtures/with_data/rollout with what --sample-rows,
    --measure-blocking, --inject-failures and --estimate would add."""
    basis = {"sizes": [5000, 50000], "notes": ["004_worker_heartbeat.sql:3: failed at 5000 "
                                               "rows per table; not estimated further"] * 2}
    extras: list[dict[str, Any]] = [
        {"estimates": [_estimate(4, "public.settings", 100, settings_ms)]},
        {"estimates": [_estimate(4, "public.orders", 100_000_000, orders_ms)]},
        {"estimates": [_estimate(3, "public.order_events", 0, 9.3,
                                 "created by this change set: empty in production", "constant"),
                       _estimate(8, "public.order_events", 0, 2.0,
                                 "created by this change set: empty in production", "constant")],
         "failure_injection": [{"after_statement": 1, "line": 3, "retry": "failed",
                                "error": 'line 3: relation "order_events" already exists'}]},
        {"explanation": EXPLANATION},
    ]
    out = []
    for m, extra in zip(dry.migrations, extras):
        if not estimates:
            extra = {k: v for k, v in extra.items() if k != "estimates"}
        else:
            extra = {**extra, "estimates_basis": basis}
        if "failure_injection" not in extra and m.status == "applied":
            extra["failure_injection"] = []
        stmts = tuple(
            replace(s, blocking=tuple(
                Blocking(lock.relation, op, blocked, 50.0 if blocked else 0.4)
                for lock in s.locks
                for op, blocked in (("read", read_blocked and lock.mode == "AccessExclusiveLock"),
                                    ("write", True))))
            for s in m.statements)
        out.append(replace(m, statements=stmts, extras=extra))
    return replace(dry, migrations=tuple(out))


def _report(synthetic: Any, **kw: Any) -> Report:
    dry, res, disc = synthetic(FIXTURE, fail_at=3)
    dry = with_data(dry, **kw)
    # fail_at's generic error: the explanation belongs to the NOT NULL failure of 004.
    paths = relative_paths(disc)
    queries = [replace(q, observed=q.expected) for q in plan.verification_queries(disc, paths)]
    return build_report(dry, res, disc, verification=queries,
                        backout_check=BackoutCheck("restored"))


@pytest.mark.parametrize("fmt,ext,compact", [("markdown", "md", False), ("html", "html", False),
                                             ("json", "json", False),
                                             ("markdown", "compact.md", True)])
def test_golden_with_data(synthetic: Any, fmt: str, ext: str, compact: bool) -> None:
    assert_golden(render(_report(synthetic), fmt, compact=compact), f"with_data_rollout.{ext}")


def test_every_measurement_is_in_every_format(synthetic: Any) -> None:
    report = _report(synthetic)
    md, html = render(report, "markdown"), render(report, "html")
    compact = render(report, "markdown", compact=True)
    for text in (md, html, compact):
        assert EXPLANATION in text
        assert "≈ 1.2 min" in text  # the orders rewrite at production size
        assert "order_events" in text and "already exists" in text  # html escapes quotes
        assert "retry" in text and "failed" in text
        assert "Risk basis" in text
    for text in (md, html):
        assert "100,000,000 rows of public.orders (--rows)" in text  # the basis
        assert "measured at 5,000 rows → 4.5 ms, 50,000 rows → 36 ms; linear fit" in text
        assert "blocked reads and writes (for ≈ 1.2 min at production size)" in text
        assert "as the lock table predicts for ACCESS EXCLUSIVE" in text
        assert "writes not blocked" not in text
    data = json.loads(render(report, "json"))
    orders = data["migrations"][1]["statements"][1]
    assert orders["estimate"]["lock_hold_ms"] == 71_540.0
    assert orders["estimate"]["measured"] == [{"rows": 5000, "ms": 4.5},
                                              {"rows": 50000, "ms": 36.0}]
    assert orders["risk"] == "HIGH"
    assert data["migrations"][2]["injection"][0]["retry"] == "failed"
    assert data["migrations"][3]["explanation"] == EXPLANATION
    assert data["data"]["sizes"] == [5000, 50000]
    assert len(data["data"]["notes"]) == 1  # repeated replays: one note


def test_risk_uses_estimates_same_rewrite_high_on_big_table_only(synthetic: Any) -> None:
    report = _report(synthetic)
    settings, orders = report.migrations[0], report.migrations[1]
    # The same ALTER COLUMN TYPE: 100 rows is not HIGH, 100M rows is.
    assert settings.statements[1].risk == "LOW" and settings.risk != "HIGH"
    assert orders.statements[1].risk == "HIGH" and orders.risk == "HIGH"
    assert any("≈ 1.2 min" in r for r in orders.risk_reasons)
    assert "public.orders 100,000,000 rows (--rows)" in orders.risk_basis
    assert report.migrations[3].risk_basis.startswith("not estimated")
    # A minute and a half becomes MEDIUM at 500 ms, LOW at 50 ms (reads blocked: 2 s / 200 ms).
    assert _report(synthetic, orders_ms=500.0).migrations[1].risk == "MEDIUM"
    assert _report(synthetic, orders_ms=50.0).migrations[1].statements[1].risk == "LOW"


def test_without_estimates_risk_from_lock_mode_and_says_so(synthetic: Any) -> None:
    report = _report(synthetic, estimates=False)
    for m in report.migrations:
        assert m.risk_basis == "no production sizes given: risk from lock mode only"
    assert report.migrations[0].risk == "HIGH"  # today's rule: a rewrite is HIGH
    assert "no production sizes given: risk from lock mode only" in render(report, "markdown")
    dry, res, disc = synthetic("dlq_heartbeat")  # no data options at all: no data section
    plain = build_report(dry, res, disc)
    assert plain.data is None and plain.migrations[0].risk_basis.startswith("no production")
    assert "Dry run with data" not in render(plain, "markdown")


def test_lock_budget_policy(synthetic: Any) -> None:
    report = _report(synthetic)
    assert report.decision.verdict == NO_GO
    over = [r for r in report.decision.reasons if "lock budget" in r]
    assert len(over) == 1 and "public.orders" in over[0] and "≈ 1.2 min" in over[0]
    # Under the budget (4 s): no lock-budget reason; the locking finding stays a NO-GO
    # (the estimate says HIGH, not LOW).
    under = _report(synthetic, orders_ms=4_000.0)
    assert not any("lock budget" in r for r in under.decision.reasons)
    # 100 rows: the LK010 locking error of 001 is judged by the estimate (LOW): a condition.
    assert not any("001_widen_setting_values.sql:4 LK010" in r for r in report.decision.reasons)
    assert any("001_widen_setting_values.sql:4 LK010" in c and "estimated LOW" in c
               for c in report.decision.conditions)


def _only(m: Any, **kw: Any) -> Any:
    return replace(m, findings=(), statements=(), idempotent=True, down_status="absent",
                   status="applied", **kw)


def _hold(mode: str, ms: float) -> EstimateView:
    return EstimateView("public.orders", 1_000_000, "--rows", ms, ms, mode, "public.orders",
                        "linear", (MeasuredPoint(5000, 1.0), MeasuredPoint(50000, 9.0)))


def test_lock_budget_by_mode_and_failed_retry(synthetic: Any) -> None:
    report = _report(synthetic)
    base = _only(report.migrations[1])
    stmt = report.migrations[1].statements[1]
    assert decide([base], [], None).verdict == GO
    # A lock that blocks reads over 5 s: NO-GO; one that blocks only writes: CONDITIONAL GO.
    big = replace(stmt, estimate=_hold("ACCESS EXCLUSIVE", 6_000.0), observed=(), predicted=())
    assert decide([replace(base, statements=(big,))], [], None).verdict == NO_GO
    share = replace(big, estimate=_hold("SHARE", 60_000.0))
    d = decide([replace(base, statements=(share,))], [], None)
    assert d.verdict == CONDITIONAL and "writes would queue" in d.reasons[0]
    small = replace(big, estimate=_hold("ACCESS EXCLUSIVE", 5_000.0))
    assert decide([replace(base, statements=(small,))], [], None).verdict == GO
    # Failure injection: a failed retry or a different schema is at least CONDITIONAL GO.
    for retry in ("failed", "schema differs"):
        inj = (InjectionView("after statement 1 (line 3)", retry, "boom"),)
        d = decide([replace(base, injection=inj, injection_run=True)], [], None)
        assert d.verdict == CONDITIONAL and "interrupted after statement 1" in d.reasons[0]
    ok = (InjectionView("after statement 1 (line 3)", "ok"),)
    assert decide([replace(base, injection=ok, injection_run=True)], [], None).verdict == GO


def test_blocking_discrepancy_is_visible(synthetic: Any) -> None:
    # ACCESS EXCLUSIVE held, yet the read probe got through: the report must say so.
    report = _report(synthetic, read_blocked=False)
    view = report.migrations[1].statements[1].measured_blocking[0]
    assert not view.agrees and view.predicted_reads is True and view.reads_blocked is False
    for fmt in ("markdown", "html"):
        text = render(report, fmt)
        assert "differs from the lock table" in text
        assert "Measured blocking differs from the lock table" in text
    assert "Measured blocking differs" in render(report, "markdown", compact=True)
    assert "differs from the lock table" not in render(_report(synthetic), "markdown")


def test_the_report_json_gives_sizes_as_the_dry_run_json_does(synthetic: Any) -> None:
    dry, res, disc = synthetic(FIXTURE, fail_at=3)
    sizes = (SizeChange("public.settings", "r", 81920, 73728),
             SizeChange("public.settings_pkey", "i", 0, 16384))
    first = replace(dry.migrations[0], sizes=sizes)
    dry = replace(dry, migrations=(first, *dry.migrations[1:]))
    report = json.loads(render(build_report(dry, res, disc), "json"))
    assert report["migrations"][0]["sizes"] == first.to_json()["sizes"]
    assert report["migrations"][0]["sizes"]["relations"][0]["kind"] == "r"
    assert report["migrations"][1]["sizes"] is None

