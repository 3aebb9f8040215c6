"""The report as JSON (version 1): ``render(report) -> str``, pure."""

from __future__ import annotations

import json

from .model import Report


def render(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
