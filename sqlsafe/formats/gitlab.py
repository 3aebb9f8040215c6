"""``--format gitlab``: GitLab Code Quality report (a JSON array of issues).

Use it as ``artifacts: reports: codequality:`` in a job; GitLab then shows new and fixed
findings on the merge request by comparing fingerprints between the source and target branch.
The fingerprint is the shared statement hash (``sqlsafe.fingerprint``), which holds no line
number, so inserting lines above a finding doesn't make it "fixed" and "new" at once.
"""

from __future__ import annotations

import json
from typing import Any

from ..fingerprint import fingerprints
from ..model import Finding, LintResult

# GitLab's scale is info < minor < major < critical < blocker.
_BASE = {"info": "info", "warning": "minor", "error": "major"}
# Data loss and security holes outrank an ordinary error; a statement that does not parse
# blocks everything after it, so it is the one "blocker".
_ESCALATE = {"destructive": "critical", "security": "critical", "syntax": "blocker"}
# Code Climate categories, which GitLab accepts in "categories".
_CATEGORIES = {"security": "Security", "style": "Style", "syntax": "Bug Risk"}


def severity(f: Finding) -> str:
    if f.severity == "error" and f.category in _ESCALATE:
        return _ESCALATE[f.category]
    return _BASE.get(f.severity, "minor")


def issues(result: LintResult) -> list[dict[str, Any]]:
    out = []
    for f, fp in zip(result.findings, fingerprints(result.findings), strict=True):
        out.append({
            "type": "issue",
            "check_name": f"{f.code} {f.rule}",
            "description": f"{f.code} {f.message}",
            "content": {"body": f.help} if f.help else {"body": f.message},
            "categories": [_CATEGORIES.get(f.category, "Bug Risk")],
            "fingerprint": fp,
            "severity": severity(f),
            "location": {"path": f.path, "lines": {"begin": f.span.line,
                                                   "end": max(f.span.end_line, f.span.line)}},
            "engine_name": "sqlsafe",
        })
    return out


def render(result: LintResult) -> str:
    return json.dumps(issues(result), indent=2, ensure_ascii=False) + "\n"
