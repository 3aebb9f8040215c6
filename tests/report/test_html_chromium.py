"""The HTML report renders in a real browser (headless Chromium): every section and table is
in the DOM and no template error text leaked. Needs Debian's chromium package:
apt-get update && apt-get install -y chromium"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sqlsafe._record import replace
from sqlsafe.report import plan, render
from sqlsafe.report.build import build_report, relative_paths
from sqlsafe.report.model import BackoutCheck

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                                "(apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("fixture", ["dlq_heartbeat", "prisma_backfill"])
def test_html_report_renders_in_chromium(synthetic, tmp_path: Path, fixture: str) -> None:  # type: ignore[no-untyped-def]
    dry, res, disc = synthetic(fixture)
    paths = relative_paths(disc)
    queries = [replace(q, observed=q.expected) for q in plan.verification_queries(disc, paths)]
    report = build_report(dry, res, disc, verification=queries,
                          backout_check=BackoutCheck("restored"))
    page = tmp_path / "report.html"
    page.write_text(render(report, "html"), encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    for section in ("recommendation", "summary", "migrations", "operator", "backout",
                    "verification", "checksums", "environment"):
        assert f'id="{section}"' in dom, section
    assert report.decision.verdict in dom
    # One summary row and one statements table per migration; one row per verification query.
    summary = dom.split('id="summary"', 1)[1].split("</table>", 1)[0]
    assert summary.count("<tr>") == len(report.migrations) + 1
    assert dom.count('class="statements"') == len(report.migrations)
    verification = dom.split('id="verification"', 1)[1].split("</table>", 1)[0]
    assert verification.count("<tr>") == len(queries) + 1
    assert not re.search(r"Undefined|jinja2|Traceback|\{\{|\{%", dom)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert shot.stat().st_size > 10_000  # a blank page compresses to a few hundred bytes
