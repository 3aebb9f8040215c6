"""Report tests. ``synthetic_result`` builds a DryRunResult from a fixture's static prediction
with fixed durations, so renderer tests run without a server; tests marked ``postgres`` use a
real one (the embedded engine)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.dryrun.result import (
    DownResult,
    DryRunResult,
    MigrationResult,
    ObservedLock,
    ServerInfo,
    StatementError,
    StatementResult,
)
from sqlsafe.lint import lint
from sqlsafe.model import DiscoveryResult, LintResult

REPO = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("SQLSAFE_UPDATE_REPORTS") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: starts or needs a real PostgreSQL server")


Synth = Callable[..., tuple[DryRunResult, LintResult, DiscoveryResult]]


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch) -> Synth:
    def make(fixture: str, *, fail_at: int | None = None, idempotent: bool | None = True,
             restores: bool | None = True) -> tuple[DryRunResult, LintResult, DiscoveryResult]:
        monkeypatch.chdir(REPO)
        disc = discover([f"fixtures/{fixture}"])
        res = lint(disc, Config())
        migrations = []
        failed = False
        for i, m in enumerate(disc.migrations):
            if failed:
                migrations.append(MigrationResult(m.path, m.sha256, "skipped"))
                continue
            stmts = []
            for s in (s for s in res.statements if s.path == m.path):
                stmts.append(StatementResult(
                    s.span.line, s.sql, 1.5,
                    tuple(ObservedLock(p.relation, p.mode) for p in s.locks), s.rewrites,
                    rows=2 if s.kind == "Update" else None))
            error = None
            if i == fail_at:
                error = StatementError('relation "nope" does not exist', stmts[-1].line, "42P01")
                failed = True
            down = DownResult("applied", restores) if m.down else DownResult()
            migrations.append(MigrationResult(
                m.path, m.sha256, "failed" if error else "applied", 2.0 * len(stmts),
                idempotent if not error else None, down=down, statements=tuple(stmts),
                error=error))
        dry = DryRunResult(ServerInfo("embedded", "18.6"), tuple(migrations),
                           schema_sha256="0" * 64)
        return dry, res, disc

    return make
