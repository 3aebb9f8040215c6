"""``--write-baseline`` / ``--baseline``: adopt sqlsafe on an old history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe.cli import cli


@pytest.fixture
def migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "001_accounts.sql").write_text(
        "CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text);\n")
    (d / "002_index.sql").write_text("CREATE INDEX accounts_email ON accounts (email);\n")
    return d


def lint(*args: str) -> tuple[int, list[dict], str]:
    res = CliRunner().invoke(cli, ["lint", "migrations", "--format", "json", *args])
    out = json.loads(res.stdout) if res.exit_code in (0, 1) else {"findings": []}
    return res.exit_code, out["findings"], res.stderr


def test_baseline_hides_known_findings(migrations: Path) -> None:
    code, before, _ = lint("--write-baseline", "baseline.json")
    assert code == 1 and before, "the set has findings to record"
    data = json.loads(Path("baseline.json").read_text())
    assert data["version"] == 1 and len(data["findings"]) == len(before)
    code, after, _ = lint("--baseline", "baseline.json")
    assert (code, after) == (0, [])


def test_new_findings_are_still_reported(migrations: Path) -> None:
    lint("--write-baseline", "baseline.json")
    (migrations / "003_more.sql").write_text("CREATE INDEX accounts_id2 ON accounts (id);\n")
    code, after, _ = lint("--baseline", "baseline.json")
    assert code == 1
    assert {f["path"] for f in after} == {"migrations/003_more.sql"}


def test_baseline_survives_lines_inserted_above(migrations: Path) -> None:
    lint("--write-baseline", "baseline.json")
    idx = migrations / "002_index.sql"
    idx.write_text("-- why: search by email\n\n\n" + idx.read_text())
    code, after, _ = lint("--baseline", "baseline.json")
    assert (code, after) == (0, [])


def test_baseline_is_a_multiset(migrations: Path) -> None:
    lint("--write-baseline", "baseline.json")
    idx = migrations / "002_index.sql"
    idx.write_text(idx.read_text() * 2)  # the same dangerous statement once more
    _, after, _ = lint("--baseline", "baseline.json")
    assert [(f["code"], f["line"]) for f in after if f["code"] == "LK001"] == [("LK001", 2)]


@pytest.mark.parametrize("content", [None, "{not json", '{"version": 1}', '[1, 2]',
                                     '{"version": 99, "findings": []}',
                                     '{"version": 1, "findings": [{"code": "LK001"}]}'])
def test_missing_or_corrupt_baseline_is_a_usage_error(migrations: Path,
                                                      content: str | None) -> None:
    if content is not None:
        Path("baseline.json").write_text(content)
    code, _, err = lint("--baseline", "baseline.json")
    assert code == 2
    assert "baseline.json" in err and err.startswith("sqlsafe: error:")
