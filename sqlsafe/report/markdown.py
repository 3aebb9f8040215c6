"""dry_run_report.md: ``render(report) -> str``, pure."""

from __future__ import annotations

from .filters import environment
from .model import Report

# GitHub rejects comment bodies over 65,536 characters; keep a margin for the note.
COMPACT_LIMIT = 65_000
_NOTE = ("\n\n---\n*Truncated to fit a pull-request comment ({shown:,} of {total:,} characters). "
         "The full report is in the CI artifacts, or run `sqlsafe check` locally.*\n")


def render(report: Report, *, compact: bool = False) -> str:
    template = environment(autoescape=False).get_template("report.md.j2")
    text = template.render(r=report, compact=compact)
    if compact and len(text) >= COMPACT_LIMIT:
        text = truncate(text, COMPACT_LIMIT)
    return text


def truncate(text: str, limit: int) -> str:
    """Cut at a line boundary so that the result, note included, is shorter than ``limit``;
    close a code fence left open by the cut."""
    budget = limit - len(_NOTE.format(shown=limit, total=len(text))) - 8
    cut = text.rfind("\n", 0, budget)
    head = text[: cut if cut > 0 else budget]
    if head.count("\n```") % 2 == 1:
        head += "\n```"
    return head + _NOTE.format(shown=len(head), total=len(text))
