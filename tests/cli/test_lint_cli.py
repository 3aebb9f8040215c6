"""`sqlsafe lint` end to end: layouts, positions, broken input, the corpus, lean imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe.cli import cli
from sqlsafe.discover import discover

REPO = Path(__file__).resolve().parents[2]
LAYOUTS = REPO / "fixtures" / "layouts"


def run_lint(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["lint", *args], input=input)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def lint_json(*args: str, input: str | None = None) -> tuple[int, dict]:
    code, out, _ = run_lint("--format", "json", *args, input=input)
    return code, json.loads(out)


@pytest.mark.parametrize("layout", sorted(p.name for p in LAYOUTS.iterdir() if p.is_dir()))
def test_json_lists_exactly_the_up_migrations_in_order(layout: str) -> None:
    path = str(LAYOUTS / layout)
    expected = [m.path for m in discover([path]).migrations]
    code, data = lint_json(path)
    assert code in (0, 1)
    assert data["files"] == expected
    assert not any(".down." in f or "/U" in f.rsplit("/", 1)[-1][:1] for f in data["files"])
    assert data["summary"]["files"] == len(expected)
    for f in data["findings"]:
        assert f["path"] in expected
        assert f["line"] >= 1 and f["column"] >= 1


def test_positions_count_characters_not_bytes(tmp_path: Path) -> None:
    sql = ("-- Änderung: Index für Benutzer 日本語\n"
           "SELECT 'ü日本';  CREATE INDEX users_email_idx ON users (email);\n")
    f = tmp_path / "001_index.sql"
    f.write_text(sql, encoding="utf-8")
    _, data = lint_json(str(f), "--select", "LK001")
    [finding] = data["findings"]
    line2 = sql.splitlines()[1]
    assert finding["line"] == 2
    assert finding["column"] == line2.index("CREATE") + 1  # 17 characters, 22 bytes
    assert finding["end_column"] == len(line2) + 1
    assert data["statements"][1]["line"] == 2


def test_broken_statement_does_not_hide_the_others(tmp_path: Path) -> None:
    f = tmp_path / "002_mixed.sql"
    f.write_text(
        "CREATE INDEX a_idx ON accounts (a);\n"
        "ALTER TABLE accounts ADD COLUMN b int NOT NULL DEFAULT;\n"
        "CREATE INDEX c_idx ON accounts (c);\n",
        encoding="utf-8",
    )
    code, data = lint_json(str(f), "--select", "LK001,SX001")
    got = sorted((x["line"], x["code"]) for x in data["findings"])
    assert got == [(1, "LK001"), (2, "SX001"), (3, "LK001")]
    syntax = next(x for x in data["findings"] if x["code"] == "SX001")
    assert syntax["category"] == "syntax"
    assert syntax["column"] == len("ALTER TABLE accounts ADD COLUMN b int NOT NULL DEFAULT") + 1
    assert code == 1


def test_psql_meta_commands_are_skipped(tmp_path: Path) -> None:
    f = tmp_path / "003_meta.sql"
    f.write_text("\\set ON_ERROR_STOP on\n\\echo hi\nCREATE TABLE IF NOT EXISTS t (id int);\n"
                 "COPY t FROM stdin;\n1\n2\n\\.\nSELECT 1;\n", encoding="utf-8")
    _, data = lint_json(str(f))
    assert [x for x in data["findings"] if x["code"] == "SX001"] == []
    assert [s["line"] for s in data["statements"]] == [3, 4, 8]


def test_dollar_quoted_bodies_and_do_blocks(tmp_path: Path) -> None:
    f = tmp_path / "004_do.sql"
    f.write_text(
        "DO $$\nBEGIN\n  CREATE TYPE mood AS ENUM ('sad');\nEXCEPTION WHEN duplicate_object THEN null;\n"
        "END $$;\nCREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
        "BEGIN RETURN 1; END;\n$body$;\n", encoding="utf-8")
    _, data = lint_json(str(f))
    assert [s["line"] for s in data["statements"]] == [1, 6]
    assert not [x for x in data["findings"] if x["code"] == "SX001"]


def test_stdin(tmp_path: Path) -> None:
    code, data = lint_json("-", "--select", "LK001", input="CREATE INDEX i ON t (a);\n")
    assert data["files"] == ["<stdin>"]
    assert [x["code"] for x in data["findings"]] == ["LK001"]
    assert code == 1


def test_bad_input_reports_and_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "001_idx.sql").write_text("CREATE INDEX i ON t (a);\n", encoding="utf-8")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    (empty_dir / "README.txt").write_text("no sql here", encoding="utf-8")
    binary = tmp_path / "002_binary.sql"
    binary.write_bytes(b"CREATE TABLE t (id int);\x00\x01\x02")
    latin1 = tmp_path / "003_latin1.sql"
    latin1.write_bytes("SELECT 'caf\xe9';\n".encode("latin-1"))
    empty = tmp_path / "004_empty.sql"
    empty.write_text("", encoding="utf-8")
    missing = tmp_path / "nope.sql"
    code, out, err = run_lint("--format", "json", "--select", "LK001", str(good),
                              str(empty_dir), str(binary), str(latin1), str(empty), str(missing))
    data = json.loads(out)
    assert code == 2  # some inputs could not be read
    assert "Traceback" not in err
    for bad in (empty_dir, binary, latin1, missing):
        assert str(bad) in err, err
    assert "003_latin1.sql:1:" in err  # the first bad byte's position
    assert [x["code"] for x in data["findings"] if x["code"] == "LK001"] == ["LK001"]
    assert any(f.endswith("001_idx.sql") for f in data["files"])
    assert all(line.startswith("sqlsafe: error: ") for line in err.strip().splitlines())


def test_huge_file_is_refused_with_one_line(tmp_path: Path) -> None:
    big = tmp_path / "005_big.sql"
    line = b"INSERT INTO t VALUES (1);\n"
    with open(big, "wb") as fh:
        chunk = line * 40_000
        for _ in range(100 * 1024 * 1024 // len(chunk) + 1):
            fh.write(chunk)
    code, _, err = run_lint(str(big))
    assert code == 2
    assert str(big) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_config_key_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.sqlsafe]\npg_verison = 14\n", encoding="utf-8")
    (tmp_path / "001.sql").write_text("SELECT 1;\n", encoding="utf-8")
    code, _, err = run_lint(str(tmp_path / "001.sql"))
    assert code == 2
    assert "pg_verison" in err and "unknown key" in err


def test_config_from_pyproject_and_cli_precedence(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.sqlsafe]\nignore = ["LK001"]\n', encoding="utf-8")
    sql = tmp_path / "001.sql"
    sql.write_text("CREATE INDEX i ON t (a);\n", encoding="utf-8")
    _, data = lint_json(str(sql))
    assert "LK001" not in {x["code"] for x in data["findings"]}
    _, data = lint_json(str(sql), "--select", "LK001")
    # --select on the command line narrows the set, but the file's ignore still applies
    assert "LK001" not in {x["code"] for x in data["findings"]}


def test_fail_on_warning_and_exit_codes(tmp_path: Path) -> None:
    sql = tmp_path / "001.sql"
    sql.write_text("CREATE TABLE t (id bigint PRIMARY KEY, at timestamp);\n", encoding="utf-8")
    code, _, _ = run_lint(str(sql), "--select", "ST001")
    assert code == 0  # a warning alone does not fail by default
    code, _, _ = run_lint(str(sql), "--select", "ST001", "--fail-on", "warning")
    assert code == 1


def test_unknown_rule_is_exit_2(tmp_path: Path) -> None:
    sql = tmp_path / "001.sql"
    sql.write_text("SELECT 1;\n", encoding="utf-8")
    code, _, err = run_lint(str(sql), "--select", "XX999")
    assert code == 2 and "XX999" in err


def test_fix_applies_safe_edits(tmp_path: Path) -> None:
    sql = tmp_path / "001.sql"
    sql.write_text("-- é\nCREATE TABLE t (id int);\n", encoding="utf-8")
    code, _, _ = run_lint(str(sql), "--select", "ID001", "--fix")
    assert sql.read_text(encoding="utf-8") == "-- é\nCREATE TABLE IF NOT EXISTS t (id int);\n"
    assert code == 0


def test_color_only_when_asked(tmp_path: Path) -> None:
    sql = tmp_path / "001.sql"
    sql.write_text("CREATE INDEX i ON t (a);\n", encoding="utf-8")
    _, out, _ = run_lint(str(sql))
    assert "\x1b[" not in out  # CliRunner is not a TTY
    _, out, _ = run_lint(str(sql), "--color", "always")
    assert "\x1b[" in out


def test_lint_whole_corpus_never_crashes(corpus: Path) -> None:
    for project in sorted(p for p in corpus.iterdir() if p.is_dir()):
        proc = subprocess.run([sys.executable, "-m", "sqlsafe", "lint", "--format", "json",
                               str(project)], capture_output=True, text=True, timeout=300)
        assert proc.returncode in (0, 1), (project.name, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        data = json.loads(proc.stdout)
        disc = discover([str(project)])
        assert data["files"] == [m.path for m in disc.migrations]
        if project.name == "supabase-auth":
            syntax = [f for f in data["findings"] if f["code"] == "SX001"]
            # A template inside a dollar-quoted DO body is string content, not a syntax error.
            templated = {m.path for m in disc.migrations
                         if "{{" in re.sub(r"\$(\w*)\$.*?\$\1\$", "", m.section.text, flags=re.S)}
            assert templated and templated <= {f["path"] for f in syntax}
            for f in syntax:
                text = next(m.section.text for m in disc.migrations if m.path == f["path"])
                line = text.splitlines()[f["line"] - 1]
                assert f["column"] <= len(line) + 1


def test_lint_path_imports_no_database_or_template_libraries() -> None:
    code = (
        "import sys\n"
        "from sqlsafe import cli, api, lint, discover\n"
        "from sqlsafe.formats import text, json_\n"
        "from sqlsafe import registry; registry.load()\n"
        "bad = [m for m in ('psycopg', 'jinja2', 'testcontainers', 'docker') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    # and a real lint run through the console entry point
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sqlsafe", "lint", "-", "--format", "json"],
        input="CREATE INDEX i ON t (a);\n", capture_output=True, text=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & {"psycopg", "jinja2", "testcontainers", "docker"}
    # Nor dataclasses: each @dataclass costs a fresh interpreter (every pre-commit run) about
    # 0.7 ms; the lint path's classes are records (sqlsafe/_record.py).
    assert "dataclasses" not in imported
    # Nor hashlib (a few ms): a lint never asks for a file's digest (model.FileBytes).
    assert "hashlib" not in imported
    # Nor the parse worker and pickle: a small set is parsed in process (lint._worker_for).
    assert "pickle" not in imported
    assert not any("pipeline" in line for line in proc.stderr.splitlines()
                   if line.startswith("import time:"))
