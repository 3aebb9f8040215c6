"""The committed reports in reports/ are current: regenerate them with a real dry run and
compare, durations, versions, the schema hash, OIDs and estimates normalized.

Refresh: python -m sqlsafe.report.refresh   (or SQLSAFE_UPDATE_REPORTS=1 pytest tests/report)
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os

import pytest

from sqlsafe.report import refresh

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(importlib.util.find_spec("sqlsafe.dryrun.replay") is None,
                       reason="sqlsafe.dryrun.replay not in this tree yet"),
]


@functools.cache
def _generate(fixture: str) -> dict[str, str]:
    return refresh.generate(fixture)


@pytest.mark.parametrize("fixture", refresh.FIXTURES)
def test_committed_report_is_current(fixture: str) -> None:
    rendered = _generate(fixture)
    if os.environ.get("SQLSAFE_UPDATE_REPORTS") == "1":
        for fmt, ext in refresh.EXTENSIONS.items():
            name = refresh.report_name(fixture)
            (refresh.REPO / "reports" / f"{name}.{ext}").write_text(rendered[fmt],
                                                                     encoding="utf-8")
    stale = refresh.stale(fixture, rendered)
    if stale:  # show what differs: a run-to-run difference must be found, not guessed
        import difflib

        name = refresh.report_name(fixture)
        old = (refresh.REPO / "reports" / f"{name}.md").read_text(encoding="utf-8")
        diff = [line for line in difflib.unified_diff(
            refresh.normalize(old).splitlines(), refresh.normalize(rendered["markdown"]).splitlines(),
            lineterm="", n=0) if not line.startswith(("---", "+++", "@@"))]
        pytest.fail(f"stale report {stale}; refresh with: python -m sqlsafe.report.refresh\n"
                    + "\n".join(diff[:40]))


def test_data_driven_report_shows_what_rows_measured() -> None:
    """A real dry run with --sample-rows, --measure-blocking, --inject-failures and estimates:
    what each measurement found reaches the report and drives its risk and verdict."""
    data = json.loads(_generate("with_data/rollout")["json"])
    settings, orders, events, heartbeat = data["migrations"]
    # On failure, show what was measured: estimates are timings on a shared machine.
    seen = json.dumps([[s.get("estimate"), s.get("risk"), s.get("measured_blocking")]
                       for m in data["migrations"] for s in m["statements"]], indent=1)
    # The same rewrite: not HIGH on 100 rows, HIGH and over the lock budget on 100M rows.
    assert settings["statements"][1]["risk"] == "LOW" and settings["risk"] != "HIGH", seen
    assert orders["statements"][1]["risk"] == "HIGH" and orders["risk"] == "HIGH", seen
    assert orders["statements"][1]["estimate"]["lock_hold_ms"] > 5_000, seen
    assert any("lock budget" in r and "public.orders" in r for r in data["decision"]["reasons"])
    # Measured blocking agrees with the lock table: ACCESS EXCLUSIVE blocks reads and writes.
    probe = orders["statements"][1]["measured_blocking"][0]
    assert (probe["reads_blocked"], probe["writes_blocked"], probe["discrepancies"]) == (
        True, True, []), seen
    # Failure injection: interrupted after CREATE TABLE, the retry fails.
    assert [i["retry"] for i in events["injection"]] == ["failed"], events["injection"]
    assert any("a retry fails" in c for c in data["decision"]["conditions"])
    # Only the rows revealed 004's failure; the report says why.
    assert heartbeat["status"] == "failed" and "NOT NULL" in heartbeat["explanation"]
    assert data["decision"]["verdict"] == "NO-GO"
