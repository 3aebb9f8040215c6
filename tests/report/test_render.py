"""Renderers: golden files per format (durations and versions normalized), the go/no-go
policy, compact truncation, HTML escaping, and the lean lint path.

Refresh the golden files after an intended change: SQLSAFE_UPDATE_REPORTS=1 pytest tests/report
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from golden_files import assert_golden

from sqlsafe._record import replace
from sqlsafe.report import plan, render
from sqlsafe.report.build import build_report, relative_paths
from sqlsafe.report.markdown import COMPACT_LIMIT
from sqlsafe.report.model import CONDITIONAL, GO, NO_GO, BackoutCheck


def _report(synthetic, fixture: str, **kw):  # type: ignore[no-untyped-def]
    dry, res, disc = synthetic(fixture, **kw)
    paths = relative_paths(disc)
    queries = [replace(q, observed=q.expected) for q in plan.verification_queries(disc, paths)]
    return build_report(dry, res, disc, verification=queries,
                        backout_check=BackoutCheck("restored"))


@pytest.mark.parametrize("fixture", ["dlq_heartbeat", "prisma_backfill"])
@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("html", "html"), ("json", "json")])
def test_golden(synthetic, fixture: str, fmt: str, ext: str) -> None:  # type: ignore[no-untyped-def]
    assert_golden(render(_report(synthetic, fixture), fmt), f"{fixture}.{ext}")


def test_json_is_valid_and_versioned(synthetic) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(render(_report(synthetic, "dlq_heartbeat"), "json"))
    assert data["version"] == 1
    assert data["decision"]["verdict"] in (GO, CONDITIONAL, NO_GO)
    assert [m["path"] for m in data["migrations"]] == [
        "migrations/001_create_job_dlq.up.sql", "migrations/002_add_heartbeat_column.up.sql"]


def test_policy_no_go_on_locking_error(synthetic) -> None:  # type: ignore[no-untyped-def]
    # 002 builds an index without CONCURRENTLY on the existing qc_jobs: LK001 (locking, error).
    report = _report(synthetic, "dlq_heartbeat")
    assert report.decision.verdict == NO_GO
    assert any("LK001" in r for r in report.decision.reasons)
    assert report.migrations[1].risk == "HIGH"


def test_policy_no_go_on_failed_migration_and_bad_down(synthetic) -> None:  # type: ignore[no-untyped-def]
    report = _report(synthetic, "dlq_heartbeat", fail_at=0, restores=False)
    assert report.decision.verdict == NO_GO
    assert any("failed in the dry run" in r for r in report.decision.reasons)
    assert report.migrations[1].status == "skipped"
    report = _report(synthetic, "dlq_heartbeat", restores=False)
    assert any("does not restore" in r for r in report.decision.reasons)


def test_policy_conditional_and_go(synthetic) -> None:  # type: ignore[no-untyped-def]
    from sqlsafe.model import LintResult
    from sqlsafe.report.build import decide

    dry, res, disc = synthetic("dlq_heartbeat")
    only_warnings = LintResult(res.files, tuple(f for f in res.findings if f.code.startswith("TO")),
                               res.statements, migrations=res.migrations)
    report = build_report(dry, only_warnings, disc)
    assert report.decision.verdict == CONDITIONAL  # TO001 errors + write-blocking locks
    assert decide([], [], None).verdict == GO
    new_only = [replace(m, findings=(), statements=(), idempotent=True, down_status="absent")
                for m in report.migrations]
    assert decide(new_only, [], None).verdict == GO
    assert decide(new_only, [], BackoutCheck("differs", ("missing: x",))).verdict == CONDITIONAL



def test_policy_version_matrix(synthetic) -> None:  # type: ignore[no-untyped-def]
    from sqlsafe.report.build import decide
    from sqlsafe.report.model import VersionDifference, VersionView

    dry, res, disc = synthetic("dlq_heartbeat")
    report = build_report(dry, res, disc)
    quiet = [replace(m, findings=(), statements=(), idempotent=True, down_status="absent")
             for m in report.migrations]
    versions = [VersionView(15, "local", "15.18", 2, 0, 0, True),
                VersionView(18, "embedded", "18.6", 1, 1, 0, False)]
    fails_on_18 = VersionDifference("m/2.sql", None, "status", "...",
                                    {15: "applied", 18: "failed at line 3: boom"})
    decision = decide(quiet, [], None, [fails_on_18], versions)
    assert decision.verdict == NO_GO
    assert decision.reasons == ("m/2.sql failed on PostgreSQL 18: at line 3: boom",)
    # A failure of the report's own replay is a reason already: not repeated.
    fails_on_15 = replace(fails_on_18, by_version={15: "failed at line 3: boom", 18: "applied"})
    assert decide(quiet, [], None, [fails_on_15], versions).verdict == GO
    locks = VersionDifference("m/2.sql", 4, "locks", "locks differ", {15: "a", 18: "b"})
    decision = decide(quiet, [], None, [locks], versions)
    assert decision.verdict == CONDITIONAL
    assert decision.reasons == ("m/2.sql:4: PostgreSQL 15 and 18 differ: locks differ",)


def test_verification_mismatch_is_no_go(synthetic) -> None:  # type: ignore[no-untyped-def]
    dry, res, disc = synthetic("dlq_heartbeat")
    queries = plan.verification_queries(disc, relative_paths(disc))
    bad = [replace(queries[0], observed="0")]
    report = build_report(dry, res, disc, verification=bad)
    assert any("verification failed" in r for r in report.decision.reasons)


def test_operator_commands_single_transaction_never_with_concurrently(synthetic, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = _report(synthetic, "dlq_heartbeat")
    assert all("--single-transaction" in s.staging and "ON_ERROR_STOP=1" in s.staging
               for s in report.operator)
    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.lint import lint

    (tmp_path / "1_idx.sql").write_text("CREATE INDEX CONCURRENTLY i ON t (a);\n")
    disc = discover([str(tmp_path)])
    dry, _, _ = synthetic("dlq_heartbeat")
    r = build_report(replace(dry, migrations=()), lint(disc, Config()), disc)
    assert "--single-transaction" not in r.operator[0].staging


def test_compact_fits_a_pr_comment(synthetic) -> None:  # type: ignore[no-untyped-def]
    report = _report(synthetic, "dlq_heartbeat")
    many = replace(report, migrations=report.migrations * 400)
    full = render(many, "markdown")
    assert len(full) > COMPACT_LIMIT
    compact = render(many, "markdown", compact=True)
    assert len(compact) < COMPACT_LIMIT
    assert "Truncated to fit a pull-request comment" in compact
    assert compact.count("```") % 2 == 0


def test_html_escapes_sql(synthetic) -> None:  # type: ignore[no-untyped-def]
    report = _report(synthetic, "dlq_heartbeat")
    m = report.migrations[0]
    evil = replace(m.statements[0], sql="SELECT '<script>alert(1)</script>'")
    report = replace(report, migrations=(replace(m, statements=(evil,)),))
    html = render(report, "html")
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_lint_path_imports_neither_jinja2_nor_psycopg() -> None:
    code = ("import sys; import sqlsafe.cli, sqlsafe.commands.check, sqlsafe.commands.checksum;"
            "from sqlsafe import api; "
            "bad = [m for m in ('jinja2', 'psycopg') if m in sys.modules]; "
            "sys.exit(', '.join(bad) or 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
