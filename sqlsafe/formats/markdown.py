"""``--format markdown``: a compact summary for a pull-request comment or the job summary.

GitHub rejects comments over 65,536 characters (squawk#603 hit exactly that), and the job
summary has a similar per-step cap, so the table is cut below ``LIMIT`` characters with a line
saying how many findings were left out. Errors come first so the cut drops the least important.
"""

from __future__ import annotations

from ..model import Finding, LintResult, severity_rank
from .sarif import doc_url

LIMIT = 65_000
# Lets a workflow find (and edit) the comment it posted before.
MARKER = "<!-- sqlsafe-lint -->"
_ICON = {"error": "🔴", "warning": "🟡", "info": "🔵"}


def _cell(text: str) -> str:
    # A table cell is one line; a '|' would end it early.
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def _row(f: Finding) -> str:
    code = f"[{f.code}]({doc_url(f.doc)})" if f.doc else f.code
    return (f"| `{_cell(f.path)}:{f.span.line}` | {code} | {_ICON.get(f.severity, '')} "
            f"{f.severity} | {_cell(f.message)} |")


def render(result: LintResult, *, limit: int = LIMIT) -> str:
    infos = len(result.findings) - result.errors - result.warnings
    head = [MARKER, "### sqlsafe lint", ""]
    if not result.findings:
        head.append(f"✅ No findings in {len(result.files)} migration file(s), "
                    f"{len(result.statements)} statement(s).")
        return "\n".join(head) + "\n"
    head += [f"**{result.errors} error(s), {result.warnings} warning(s), {infos} info** in "
             f"{len(result.files)} migration file(s).", "",
             "| location | rule | severity | message |", "|---|---|---|---|"]
    ordered = sorted(result.findings, key=lambda f: (-severity_rank(f.severity), f.sort_key()))
    body = "\n".join(head)
    # Reserve room for the note so adding it never crosses the limit.
    budget = limit - 200
    shown = 0
    for f in ordered:
        row = "\n" + _row(f)
        if len(body) + len(row) > budget:
            break
        body += row
        shown += 1
    cut = len(ordered) - shown
    if cut:
        body += (f"\n\n_… {cut} more finding(s) not shown (the comment size limit); "
                 "run `sqlsafe lint` locally or see the job log for all of them._")
    return body + "\n"
