"""``--format junit``: JUnit XML, for CI systems that show test reports (GitLab, Jenkins, ...).

One ``<testsuite>`` per migration file, one ``<testcase>`` per finding (a clean file gets one
passing test case, so the report shows it was checked). Findings are ``<failure>``; a statement
that does not parse is an ``<error>``, JUnit's word for "the check could not run".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..model import Finding, LintResult


def _case(suite: ET.Element, f: Finding) -> None:
    case = ET.SubElement(suite, "testcase", {
        "classname": f.path,
        "name": f"{f.code} {f.rule} at line {f.span.line}",
        "file": f.path,
        "line": str(f.span.line),
        "time": "0",
    })
    tag = "error" if f.category == "syntax" else "failure"
    node = ET.SubElement(case, tag, {"message": f.message, "type": f"{f.code} {f.severity}"})
    details = [f"{f.path}:{f.span.line}:{f.span.column}: {f.code} {f.severity} [{f.rule}]",
               f.message]
    if f.help:
        details.append(f"help: {f.help}")
    if f.statement:
        details.append(f"statement: {f.statement}")
    if f.doc:
        details.append(f"see: {f.doc}")
    node.text = "\n".join(details)


def render(result: LintResult) -> str:
    by_path: dict[str, list[Finding]] = {p: [] for p in result.files}
    for f in result.findings:
        by_path.setdefault(f.path, []).append(f)
    root = ET.Element("testsuites", {"name": "sqlsafe"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for path, findings in by_path.items():
        suite = ET.SubElement(root, "testsuite", {"name": path})
        if not findings:
            ET.SubElement(suite, "testcase", {"classname": path, "name": "no findings",
                                              "file": path, "time": "0"})
        for f in findings:
            _case(suite, f)
        counts = {"tests": max(len(findings), 1),
                  "failures": sum(1 for f in findings if f.category != "syntax"),
                  "errors": sum(1 for f in findings if f.category == "syntax")}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("skipped", "0")
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
