"""The report as one self-contained HTML page (no external assets): ``render(report) -> str``,
pure; autoescaped, so SQL and messages can never inject markup."""

from __future__ import annotations

from .filters import environment
from .model import Report


def render(report: Report) -> str:
    return environment(autoescape=True).get_template("report.html.j2").render(r=report)
