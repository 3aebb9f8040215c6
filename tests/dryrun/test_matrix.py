"""``sqlsafe dry-run --versions``: the same set replayed on several majors, compared.

The comparison itself is checked on results built by hand (every kind of difference, and what
is not one); the command end to end on the embedded PostgreSQL 18 and the local 15.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dryrun_helpers import local_available, needs_local, write_tree

from sqlsafe.dryrun.matrix import VersionRun, differences
from sqlsafe.dryrun.result import (
    DownResult,
    DryRunResult,
    MigrationResult,
    ObservedLock,
    ServerInfo,
    StatementError,
    StatementResult,
)

SQLSAFE = [sys.executable, "-m", "sqlsafe"]


def _stmt(line: int, *locks: tuple[str, str], rewrites: tuple[str, ...] = (),
          rows: int | None = None) -> StatementResult:
    return StatementResult(line, "x", 1.0, tuple(ObservedLock(r, m) for r, m in locks),
                           rewrites, rows)


def _mig(path: str, status: str = "applied", *stmts: StatementResult,
         error: StatementError | None = None, idempotent: bool | None = True,
         down: DownResult | None = None) -> MigrationResult:
    return MigrationResult(path, "0" * 64, status, 1.0, idempotent, None,
                           down or DownResult(), tuple(stmts), error)


def _run(version: int, *migs: MigrationResult) -> VersionRun:
    return VersionRun(version, "local", DryRunResult(ServerInfo("local", str(version)), migs))


def test_identical_runs_have_no_differences() -> None:
    a = _mig("1.sql", "applied", _stmt(1, ("public.t", "AccessExclusiveLock"), rows=3))
    assert differences([_run(15, a), _run(18, a)]) == []
    assert differences([_run(15, a)]) == []  # one version: nothing to compare


def test_a_failure_on_one_version_and_the_skips_after_it() -> None:
    err = StatementError("function random_normal() does not exist", 1, "42883")
    runs = [
        _run(15, _mig("1.sql"), _mig("2.sql", "failed", error=err), _mig("3.sql", "skipped")),
        _run(18, _mig("1.sql"), _mig("2.sql"), _mig("3.sql")),
    ]
    (d,) = differences(runs)  # 3.sql is skipped on 15 because of 2.sql: not reported again
    assert (d.path, d.line, d.kind) == ("2.sql", None, "status")
    assert d.by_version == {15: "failed at line 1: function random_normal() does not exist",
                            18: "applied"}
    assert "stopped here" in d.message


def test_a_sandbox_gap_is_not_a_version_difference() -> None:
    err = StatementError('extension "pgcrypto" is not available', 3, "0A000",
                         sandbox_gap="the embedded server does not have pgcrypto")
    runs = [_run(15, _mig("1.sql")), _run(18, _mig("1.sql", "failed", error=err))]
    (d,) = differences(runs)
    assert d.kind == "sandbox-gap" and "pgcrypto" in d.message


def test_lock_rewrite_and_row_differences_by_line() -> None:
    runs = [
        _run(15, _mig("1.sql", "applied",
                      _stmt(1, ("public.t", "AccessExclusiveLock"), rewrites=("public.t",)),
                      _stmt(2, ("public.t", "RowExclusiveLock"), rows=10),
                      _stmt(3, ("public.t", "ShareLock")))),
        _run(18, _mig("1.sql", "applied",
                      _stmt(1, ("public.t", "ShareUpdateExclusiveLock")),
                      _stmt(2, ("public.t", "RowExclusiveLock"), rows=12),
                      # only an extra ACCESS SHARE on an index: not a difference
                      _stmt(3, ("public.t", "ShareLock"), ("public.t_pkey", "AccessShareLock")))),
    ]
    got = {(d.line, d.kind): d.by_version for d in differences(runs)}
    assert got == {
        (1, "locks"): {15: "ACCESS EXCLUSIVE on public.t",
                       18: "SHARE UPDATE EXCLUSIVE on public.t"},
        (1, "rewrites"): {15: "public.t", 18: "none"},
        (2, "rows"): {15: "10", 18: "12"},
    }


def test_idempotency_and_down_differences() -> None:
    runs = [
        _run(15, _mig("1.sql", idempotent=True,
                      down=DownResult("applied", restores_schema=True))),
        _run(18, _mig("1.sql", idempotent=False,
                      down=DownResult("applied", restores_schema=False))),
    ]
    assert {d.kind for d in differences(runs)} == {"idempotent", "down"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SQLSAFE, "dry-run", *args], capture_output=True, text=True,
                          timeout=180)


@pytest.mark.postgres
@needs_local()
def test_versions_15_and_18_end_to_end(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "migrations/001_orders.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, total int);\n",
        # random_normal() arrived in PostgreSQL 16
        "migrations/002_score.sql":
            "ALTER TABLE orders ADD COLUMN score double precision DEFAULT random_normal();\n",
        "migrations/003_index.sql": "CREATE INDEX orders_total_idx ON orders (total);\n",
    })
    proc = _cli("--versions", "15,18", "--format", "json", "--no-down", str(root))
    assert proc.returncode == 1, proc.stderr  # a migration failed on one version
    data = json.loads(proc.stdout)
    assert [(r["pg_version"], r["engine"]) for r in data["matrix"]] == \
        [(15, "local"), (18, "embedded")]
    assert [r["dry_run"]["server"]["version"].split(".")[0] for r in data["matrix"]] == \
        ["15", "18"]
    statuses = [[m["status"] for m in r["dry_run"]["migrations"]] for r in data["matrix"]]
    assert statuses == [["applied", "failed", "skipped"], ["applied", "applied", "applied"]]
    (diff,) = data["differences"]
    assert diff["path"].endswith("002_score.sql") and diff["kind"] == "status"
    assert "random_normal" in diff["by_version"]["15"] and diff["by_version"]["18"] == "applied"
    text = _cli("--versions", "15,18", "--no-down", str(root))
    assert "== PostgreSQL 15 (local) ==" in text.stdout
    assert "Differences between PostgreSQL 15 and 18:" in text.stdout


@pytest.mark.parametrize(("args", "said"), [
    (("--versions", "18"), "at least two"),
    (("--versions", "15,x"), "separated by commas"),
    (("--versions", "15,99"), "99"),
    (("--versions", "15,18", "--engine", "url", "--database-url", "postgresql://h/db"),
     "url engine"),
    (("--versions", "15,18", "--engine", "docker", "--image", "postgres:16"), "--image"),
])
def test_versions_usage_errors_are_exit_2(tmp_path: Path, args: tuple[str, ...],
                                          said: str) -> None:
    write_tree(tmp_path, {"001.sql": "SELECT 1;\n"})
    proc = _cli(*args, str(tmp_path))
    assert proc.returncode == 2
    assert said in proc.stderr and "Traceback" not in proc.stderr


def _not_installed() -> int:
    missing = [v for v in (11, 12, 13, 14) if not local_available(v)]
    if not missing:
        pytest.skip("PostgreSQL 11 to 14 are all installed here")
    return missing[0]


def test_a_version_nothing_here_can_run_names_docker(tmp_path: Path) -> None:
    write_tree(tmp_path, {"001.sql": "SELECT 1;\n"})
    v = _not_installed()
    proc = _cli("--versions", f"{v},18", str(tmp_path))
    assert proc.returncode == 2
    assert f"PostgreSQL {v}" in proc.stderr and "--engine docker" in proc.stderr


@needs_local()
def test_local_engine_replays_on_the_version_asked_for(tmp_path: Path) -> None:
    write_tree(tmp_path, {"001.sql": "SELECT 1;\n"})
    v = _not_installed()
    proc = _cli("--engine", "local", "--pg-version", str(v), str(tmp_path))
    assert proc.returncode == 2
    assert f"no PostgreSQL {v} server binaries found" in proc.stderr


@pytest.mark.postgres
@needs_local()
def test_check_versions_puts_the_matrix_in_the_report(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {
        "migrations/001_orders.sql":
            "CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, total int);\n",
        "migrations/002_score.sql":
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS score double precision "
            "DEFAULT random_normal();\n",
    })
    report = tmp_path / "report.json"
    proc = subprocess.run([*SQLSAFE, "check", "--versions", "18,15", "--format", "json",
                           "--report", str(report), str(root)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr  # NO-GO
    data = json.loads(report.read_text(encoding="utf-8"))
    assert [(v["pg_version"], v["engine"], v["primary"], v["failed"])
            for v in data["versions"]] == [(18, "embedded", True, 0), (15, "local", False, 1)]
    assert data["server_version"].startswith("18.")  # the report's own replay is the first
    (diff,) = data["version_differences"]
    assert diff["path"] == "migrations/002_score.sql" and diff["kind"] == "status"
    assert data["decision"]["verdict"] == "NO-GO"
    assert any(r.startswith("migrations/002_score.sql failed on PostgreSQL 15")
               and "random_normal" in r for r in data["decision"]["reasons"])
    # The report of a single version has no matrix.
    single = tmp_path / "single.json"
    subprocess.run([*SQLSAFE, "check", "--format", "json", "--report", str(single), str(root)],
                   capture_output=True, text=True, timeout=180)
    data = json.loads(single.read_text(encoding="utf-8"))
    assert data["versions"] == [] and data["version_differences"] == []
