"""Every report format, parsed back and checked against the fixture files themselves.

Positions are checked against the source text (the region must point at the statement the
finding names), not against another renderer's output, so a shared off-by-one cannot hide.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe import api
from sqlsafe._record import replace
from sqlsafe.cli import cli
from sqlsafe.config import Config
from sqlsafe.fingerprint import SARIF_KEY
from sqlsafe.formats import github, gitlab, junit, markdown, sarif
from sqlsafe.model import Fix, LintResult, Span

REPO = Path(__file__).resolve().parents[2]
FLYWAY = "fixtures/layouts/flyway"
DBMATE = "fixtures/layouts/dbmate"


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    # Display paths are relative to the working directory, as when a user runs sqlsafe.
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def lint_result(*paths: str, **cfg: object) -> LintResult:
    return api.run_lint(api.LintRun(paths=paths, config=Config(**cfg))).result  # type: ignore[arg-type]


def region_text(path: str, region: dict[str, int]) -> str:
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    first = lines[region["startLine"] - 1]
    if region["endLine"] == region["startLine"]:
        return first[region["startColumn"] - 1:region["endColumn"] - 1]
    return first[region["startColumn"] - 1:]


def offset_of(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[:line - 1]) + column - 1


# ---------------------------------------------------------------------------- SARIF


def test_sarif_shape_and_rules() -> None:
    result = lint_result(FLYWAY)
    assert result.findings, "the fixture is meant to have findings"
    log = json.loads(sarif.render(result))
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    driver = run["tool"]["driver"]
    assert driver["name"] == "sqlsafe" and driver["version"] and driver["informationUri"]
    rules = driver["rules"]
    assert {r["id"] for r in rules} == {f.code for f in result.findings}
    assert len(rules) == len({r["id"] for r in rules}), "each rule listed once"
    for r in rules:
        assert r["helpUri"].startswith(sarif.DOCS_BASE)
        assert r["helpUri"].endswith(f"rules/{r['id']}-{r['name']}.md")
        assert r["shortDescription"]["text"] and r["help"]["text"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
        assert r["properties"]["category"]
    assert run["invocations"][0]["executionSuccessful"] is True
    assert len(run["results"]) == len(result.findings)
    for res, f in zip(run["results"], result.findings, strict=True):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] == f.code
        assert res["level"] == {"error": "error", "warning": "warning", "info": "note"}[f.severity]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": f.path, "uriBaseId": "%SRCROOT%"}
        # The region starts where the statement starts in the file.
        text = region_text(f.path, loc["region"])
        assert f.statement.split("\n")[0].startswith(text[:20]), (text, f.statement)
        assert len(res["partialFingerprints"][SARIF_KEY]) == 64


def test_sarif_region_matches_known_statement() -> None:
    result = lint_result(FLYWAY)
    log = json.loads(sarif.render(result))
    lk = [r for r in log["runs"][0]["results"] if r["ruleId"] == "LK001"]
    assert len(lk) == 1
    loc = lk[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == f"{FLYWAY}/V1_1__customers_email_index.sql"
    region = loc["region"]
    line = Path(FLYWAY, "V1_1__customers_email_index.sql").read_text().split("\n")[0]
    assert (region["startLine"], region["startColumn"], region["endLine"]) == (1, 1, 1)
    # endColumn is exclusive: the statement ends with its semicolon, the last character.
    assert region["endColumn"] == len(line) + 1


@pytest.mark.parametrize("fixture", [FLYWAY, DBMATE])
def test_sarif_fixes_rewrite_the_same_text_as_the_offsets(fixture: str) -> None:
    result = lint_result(fixture)
    log = json.loads(sarif.render(result))
    checked = 0
    for res, f in zip(log["runs"][0]["results"], result.findings, strict=True):
        if f.fix is None:
            assert "fixes" not in res
            continue
        text = Path(f.path).read_text(encoding="utf-8")
        expected = text[:f.fix.start] + f.fix.replacement + text[f.fix.end:]
        (change,) = res["fixes"][0]["artifactChanges"]
        (rep,) = change["replacements"]
        d = rep["deletedRegion"]
        start = offset_of(text, d["startLine"], d["startColumn"])
        end = offset_of(text, d["endLine"], d["endColumn"])
        assert text[:start] + rep["insertedContent"]["text"] + text[end:] == expected
        checked += 1
    assert checked, f"{fixture} should have at least one fixable finding"


def test_sarif_columns_count_code_points(tmp_path: Path) -> None:
    # Astral characters count as one column (UTF-16 would count two): check the region text.
    (tmp_path / "001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (a text);\n")
    mig = tmp_path / "002_idx.sql"
    mig.write_text("-- ünïcødé\n/* 😀 ünïcødé 😀 */ CREATE INDEX t_a_idx ON t (a);\n",
                   encoding="utf-8")
    result = lint_result(str(tmp_path))
    log = json.loads(sarif.render(result))
    found = [r for r in log["runs"][0]["results"] if r["ruleId"] == "LK001"]
    assert len(found) == 1
    loc = found[0]["locations"][0]["physicalLocation"]
    assert loc["region"]["startLine"] == 2
    assert region_text(str(mig), loc["region"]) == "CREATE INDEX t_a_idx ON t (a);"


def test_sarif_input_problem_marks_execution_failed(tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("SELECT 1;\n")
    (tmp_path / "002_bin.sql").write_bytes(b"\xff\xfe\x00binary")
    result = lint_result(str(tmp_path))
    inv = json.loads(sarif.render(result))["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["level"] == "error"


# ---------------------------------------------------------------------------- GitHub

_ANNOTATION = re.compile(r"^::(?P<cmd>error|warning|notice) (?P<props>[^:]*)::(?P<msg>.*)$")


def _unescape(s: str) -> str:
    return (s.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


def parse_annotation(line: str) -> tuple[str, dict[str, str], str]:
    m = _ANNOTATION.match(line)
    assert m, line
    props = dict(p.split("=", 1) for p in m.group("props").split(","))
    return m.group("cmd"), {k: _unescape(v) for k, v in props.items()}, _unescape(m.group("msg"))


def test_github_annotations_point_at_findings() -> None:
    result = lint_result(FLYWAY)
    lines = github.render(result).splitlines()
    annotations = [parse_annotation(x) for x in lines if x.startswith("::")]
    assert len(annotations) == len(result.findings)
    for (cmd, props, msg), f in zip(annotations, result.findings, strict=True):
        assert cmd == {"error": "error", "warning": "warning", "info": "notice"}[f.severity]
        assert props["file"] == f.path
        assert int(props["line"]) == f.span.line and int(props["endLine"]) == f.span.end_line
        assert props["title"] == f"{f.code} {f.rule}"
        assert msg.startswith(f.message)
        if f.span.line == f.span.end_line:
            assert (int(props["col"]), int(props["endColumn"])) == (f.span.column,
                                                                   f.span.end_column)
        else:
            assert "col" not in props


def test_github_escaping() -> None:
    f = lint_result(FLYWAY).findings[0]
    odd = replace(f, path="a,b:c%.sql", message="100% sure\r\nsecond: line, more", help="")
    line = github.annotation(odd)
    assert "\n" not in line and "\r" not in line
    _, props, msg = parse_annotation(line)
    assert props["file"] == "a,b:c%.sql"
    assert msg.startswith("100% sure\r\nsecond: line, more")


def test_github_is_default_under_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = CliRunner().invoke(cli, ["lint", FLYWAY]).output
    assert out.startswith("::")


# ---------------------------------------------------------------------------- GitLab


def test_gitlab_code_quality() -> None:
    result = lint_result(FLYWAY)
    issues = json.loads(gitlab.render(result))
    assert len(issues) == len(result.findings)
    assert len({i["fingerprint"] for i in issues}) == len(issues), "fingerprints are unique"
    for issue, f in zip(issues, result.findings, strict=True):
        assert issue["check_name"].startswith(f.code)
        assert f.message in issue["description"]
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["location"]["path"] == f.path
        assert issue["location"]["lines"]["begin"] == f.span.line
    sev = {f.severity for f in result.findings}
    assert "error" in sev and "warning" in sev
    assert {i["severity"] for i in issues} >= {"major", "minor"}


# ---------------------------------------------------------------------------- JUnit


def test_junit_one_suite_per_file() -> None:
    result = lint_result(FLYWAY)
    root = ET.fromstring(junit.render(result))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == list(result.files)
    for suite in suites:
        mine = [f for f in result.findings if f.path == suite.get("name")]
        failures = suite.findall("testcase/failure")
        assert len(failures) == len(mine) == int(suite.get("failures", "-1"))
        for case, f in zip(suite.findall("testcase"), mine, strict=False):
            assert case.get("line") == str(f.span.line)
            assert case.find("failure").get("message") == f.message  # type: ignore[union-attr]
        if not mine:
            assert len(suite.findall("testcase")) == 1
    assert int(root.get("failures", "-1")) == len(result.findings)


def test_junit_syntax_errors_are_errors(tmp_path: Path) -> None:
    (tmp_path / "001_bad.sql").write_text("CREATE TABLE (;\n")
    root = ET.fromstring(junit.render(lint_result(str(tmp_path))))
    assert root.findall("testsuite/testcase/error")
    assert root.get("errors") == "1"


# ---------------------------------------------------------------------------- Markdown


def test_markdown_table() -> None:
    result = lint_result(FLYWAY)
    out = markdown.render(result)
    rows = [x for x in out.splitlines() if x.startswith("| `")]
    assert len(rows) == len(result.findings)
    assert f"{result.errors} error(s)" in out
    # Errors first.
    sev = ["error" if "🔴" in r else "other" for r in rows]
    assert sev == sorted(sev, key=lambda s: s != "error")
    assert "not shown" not in out


def test_markdown_truncates_under_the_comment_limit() -> None:
    result = lint_result(FLYWAY)
    f = result.findings[0]
    many = tuple(replace(f, message=f"{f.message} #{i} " + "x" * 200,
                         span=Span(i + 1, 1, i + 1, 2)) for i in range(2000))
    big = replace(result, findings=many)
    out = markdown.render(big)
    assert len(out) < 65_000
    shown = len([x for x in out.splitlines() if x.startswith("| `")])
    assert 0 < shown < len(many)
    m = re.search(r"(\d+) more finding\(s\) not shown", out)
    assert m and int(m.group(1)) == len(many) - shown


def test_markdown_escapes_pipes() -> None:
    f = lint_result(FLYWAY).findings[0]
    out = markdown.render(replace(lint_result(FLYWAY), findings=(replace(
        f, message="a | b\nc", fix=Fix("x", 0, 0, "")),)))
    row = [x for x in out.splitlines() if x.startswith("| `")][0]
    assert row.count(" | ") == 3 and "a \\| b c" in row


def test_formats_selectable_from_the_cli(tmp_path: Path) -> None:
    for fmt in ("sarif", "gitlab", "junit", "markdown", "github"):
        out = tmp_path / f"report.{fmt}"
        res = CliRunner().invoke(cli, ["lint", FLYWAY, "--format", fmt, "--output", str(out)])
        assert res.exit_code == 1, res.output  # the fixture has errors
        assert out.read_text(encoding="utf-8").strip()
