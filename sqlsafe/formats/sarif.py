"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Positions: our lines and columns are 1-based and count characters (code points), which is what
SARIF calls ``columnKind: "unicodeCodePoints"``; we state it on the run rather than rely on the
default (``utf16CodeUnits``), so astral-plane characters before a finding don't shift it.
``endColumn`` is exclusive in SARIF, and so is ours.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any
from urllib.parse import quote

from .. import __version__, registry
from ..fingerprint import SARIF_KEY, fingerprints
from ..model import Finding, LintResult, Migration, Span
from ..parse import LineIndex

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/sqlsafe/sqlsafe"
# Rule pages live in rules/ at the repository root; helpUri points at the copy on main.
DOCS_BASE = "https://github.com/sqlsafe/sqlsafe/blob/main/"
SRCROOT = "%SRCROOT%"

LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def doc_url(doc: str) -> str:
    return DOCS_BASE + doc


def artifact_location(path: str) -> dict[str, Any]:
    """A relative path under %SRCROOT%; an absolute one as a file: URI (no base to resolve)."""
    if os.path.isabs(path):
        return {"uri": "file://" + quote(path.replace("\\", "/"), safe="/:")}
    rel = posixpath.normpath(path.replace("\\", "/"))
    return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}


def region(span: Span) -> dict[str, int]:
    line, col = max(span.line, 1), max(span.column, 1)
    end_line = max(span.end_line, line)
    end_col = span.end_column if end_line > line else max(span.end_column, col)
    return {"startLine": line, "startColumn": col, "endLine": end_line, "endColumn": end_col}


def _rule_meta(f: Finding) -> registry.RuleMeta | None:
    registry.load()
    return registry.lookup(f.code)


def _rule_descriptor(f: Finding) -> dict[str, Any]:
    meta = _rule_meta(f)
    summary = meta.summary if meta is not None else f.message
    default = meta.severity if meta is not None else f.severity
    doc = f.doc or (meta.doc if meta is not None else "")
    desc: dict[str, Any] = {
        "id": f.code,
        "name": f.rule,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": summary},
        "defaultConfiguration": {"level": LEVELS.get(default, "warning")},
        "properties": {"category": f.category, "tags": [f.category]},
    }
    help_text = summary + (f"\n\nRemedy: {f.help}" if f.help else "")
    if doc:
        desc["helpUri"] = doc_url(doc)
        help_text += f"\n\nDocumentation: {doc_url(doc)}"
    desc["help"] = {"text": help_text}
    return desc


def _section_index(migrations: tuple[Migration, ...]) -> dict[str, list[tuple[int, int, LineIndex]]]:
    """For each path, the character ranges of its sections and a line index over each."""
    out: dict[str, list[tuple[int, int, LineIndex]]] = {}
    for m in migrations:
        sections = [m.section] + ([m.down.section] if m.down is not None
                                  and m.down.path == m.path else [])
        for s in sections:
            out.setdefault(m.path, []).append(
                (s.char_offset, s.char_offset + len(s.text),
                 LineIndex(s.text, s.line_offset, s.char_offset)))
    return out


def _position(index: list[tuple[int, int, LineIndex]], offset: int) -> tuple[int, int] | None:
    for start, end, lines in index:
        if start <= offset <= end:
            # Sections start at the beginning of a line (after a dbmate/goose marker line), so
            # the column inside the section is the column in the file.
            return lines.position(offset - start)
    return None


def _fix(f: Finding, index: dict[str, list[tuple[int, int, LineIndex]]]) -> dict[str, Any] | None:
    if f.fix is None or f.path not in index:
        return None
    start = _position(index[f.path], f.fix.start)
    end = _position(index[f.path], f.fix.end)
    if start is None or end is None:
        return None
    safe = f.fix.safe
    return {
        "description": {"text": f.fix.description + ("" if safe else
                                                       " (unsafe: review before applying)")},
        "artifactChanges": [{
            "artifactLocation": artifact_location(f.path),
            "replacements": [{
                "deletedRegion": {"startLine": start[0], "startColumn": start[1],
                                  "endLine": end[0], "endColumn": end[1]},
                "insertedContent": {"text": f.fix.replacement},
            }],
        }],
        "properties": {"safe": safe},
    }


def sarif_log(result: LintResult) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    for f in result.findings:
        if f.code not in rule_index:
            rule_index[f.code] = len(rules)
            rules.append(_rule_descriptor(f))
    index = _section_index(result.migrations)
    results: list[dict[str, Any]] = []
    for f, fp in zip(result.findings, fingerprints(result.findings), strict=True):
        res: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": rule_index[f.code],
            "level": LEVELS.get(f.severity, "warning"),
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": artifact_location(f.path),
                "region": region(f.span),
            }}],
            "partialFingerprints": {SARIF_KEY: fp},
            "properties": {"category": f.category, "rule": f.rule},
        }
        fix = _fix(f, index)
        if fix is not None:
            res["fixes"] = [fix]
        results.append(res)
    notifications = [{"level": "error", "message": {"text": p.message},
                      "locations": [{"physicalLocation": {
                          "artifactLocation": artifact_location(p.path)}}]}
                     for p in result.problems]
    notifications += [{"level": "note", "message": {"text": n}} for n in result.notes]
    invocation: dict[str, Any] = {"executionSuccessful": not result.problems}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sqlsafe",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "invocations": [invocation],
            "originalUriBaseIds": {SRCROOT: {
                "description": {"text": "The directory sqlsafe ran in; paths are relative to it."}
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render(result: LintResult) -> str:
    return json.dumps(sarif_log(result), indent=2, ensure_ascii=False) + "\n"
