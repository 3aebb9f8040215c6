"""The dry-run report: model (``model.py``), builder (``build.py``), what it derives from the
statements (``plan.py``), what it checks against the sandbox (``verify.py``) and one pure
renderer per format (``markdown.py``, ``html.py``, ``json_.py``).

jinja2 and psycopg are imported by these modules only; the lint path never imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Report

FORMATS = ("markdown", "html", "json")


def render(report: Report, fmt: str, *, compact: bool = False) -> str:
    if fmt == "markdown":
        from . import markdown

        return markdown.render(report, compact=compact)
    if fmt == "html":
        from . import html

        return html.render(report)
    if fmt == "json":
        from . import json_

        return json_.render(report)
    raise ValueError(f"unknown report format {fmt!r}")
