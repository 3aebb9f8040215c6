"""The committed reports in reports/ are current: regenerate them with a real dry run and
compare, durations, versions, the schema hash and OIDs normalized.

Refresh: python -m sqlsafe.report.refresh   (or SQLSAFE_UPDATE_REPORTS=1 pytest tests/report)
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from sqlsafe.report import refresh

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(importlib.util.find_spec("sqlsafe.dryrun.replay") is None,
                       reason="sqlsafe.dryrun.replay not in this tree yet"),
]


@pytest.mark.parametrize("fixture", refresh.FIXTURES)
def test_committed_report_is_current(fixture: str) -> None:
    rendered = refresh.generate(fixture)
    if os.environ.get("SQLSAFE_UPDATE_REPORTS") == "1":
        for fmt, ext in refresh.EXTENSIONS.items():
            (refresh.REPO / "reports" / f"{fixture}.{ext}").write_text(rendered[fmt],
                                                                        encoding="utf-8")
    assert refresh.stale(fixture, rendered) == [], (
        "stale report; refresh with: python -m sqlsafe.report.refresh")
