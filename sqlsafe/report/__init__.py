"""The dry-run report: model (``model.py``), builder (``build.py``), what it derives from the
statements (``plan.py``), what it checks against the sandbox (``verify.py``) and one pure
renderer per format (``markdown.py``, ``html.py``, ``json_.py``).

jinja2 and psycopg are imported by these modules only; the lint path never imports this package.
"""

from __future__ import annotations

FORMATS = ("markdown", "html", "json")


def render(report: object, fmt: str, *, compact: bool = False) -> str:
    if fmt == "markdown":
        from . import markdown

        return markdown.render(report, compact=compact)  # type: ignore[arg-type]
    if fmt == "html":
        from . import html

        return html.render(report)  # type: ignore[arg-type]
    if fmt == "json":
        from . import json_

        return json_.render(report)  # type: ignore[arg-type]
    raise ValueError(f"unknown report format {fmt!r}")
