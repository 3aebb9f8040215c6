"""``--format json``: the version-1 contract of DESIGN.md."""

from __future__ import annotations

import json
from typing import Any

from ..model import LintResult


def lint_payload(result: LintResult) -> dict[str, Any]:
    return {
        "version": 1,
        "files": list(result.files),
        "findings": [f.to_json() for f in result.findings],
        "statements": [s.to_json() for s in result.statements],
        "summary": {
            "files": len(result.files),
            "statements": len(result.statements),
            "errors": result.errors,
            "warnings": result.warnings,
        },
    }


def render(result: LintResult) -> str:
    return json.dumps(lint_payload(result), indent=2, ensure_ascii=False) + "\n"
