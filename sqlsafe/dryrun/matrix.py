"""A version matrix: the same migrations replayed on several PostgreSQL majors, compared.

A migration that applies on the major a team develops against can fail on the one production
runs (a function or syntax that arrived later), or take another lock, or rewrite a table on
one and not the other. ``sqlsafe dry-run --versions 15,18`` replays the set once per major
(``api.run_matrix``) and ``differences`` lists what the servers did differently, migration by
migration and statement by statement. Timings are not compared (they always differ), nor the
catalog diffs (PostgreSQL 18 records NOT NULL as constraints, so every CREATE TABLE would
differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .result import DryRunResult, MigrationResult, StatementResult


@dataclass(frozen=True)
class VersionRun:
    pg_version: int
    engine: str
    result: DryRunResult

    def to_json(self) -> dict[str, Any]:
        return {"pg_version": self.pg_version, "engine": self.engine,
                "dry_run": self.result.to_json()}


@dataclass(frozen=True)
class Difference:
    """One thing the servers did differently. ``line`` is None for a migration as a whole."""

    path: str
    line: int | None
    kind: str  # status | sandbox-gap | locks | rewrites | rows | idempotent | down
    message: str
    by_version: dict[int, str]  # what each major did, as text

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "kind": self.kind,
                "message": self.message,
                "by_version": {str(v): text for v, text in self.by_version.items()}}


def _status(m: MigrationResult) -> str:
    if m.status == "failed" and m.error is not None:
        return f"failed at line {m.error.line}: {m.error.message}"
    return m.status


def _locks(s: StatementResult) -> str:
    """The strongest mode held on each relation, leaving out ACCESS SHARE (it only waits for
    ACCESS EXCLUSIVE, and versions differ in the indexes they open that way)."""
    from ..locks import SQL_NAMES, rank

    strongest: dict[str, str] = {}
    for lock in s.locks:
        if rank(lock.mode) > rank(strongest.get(lock.relation, "")):
            strongest[lock.relation] = lock.mode
    held = sorted((rel, mode) for rel, mode in strongest.items() if mode != "AccessShareLock")
    return ", ".join(f"{SQL_NAMES.get(mode, mode)} on {rel}" for rel, mode in held) or "none"


def _rewrites(s: StatementResult) -> str:
    return ", ".join(sorted(s.rewrites)) or "none"


def _rows(s: StatementResult) -> str:
    return "unknown" if s.rows is None else str(s.rows)


def _idempotent(m: MigrationResult) -> str:
    return {True: "yes", False: "no", None: "not checked"}[m.idempotent]


def _down(m: MigrationResult) -> str:
    if m.down.status != "applied":
        return m.down.status
    return {True: "restores the schema", False: "does not restore the schema",
            None: "applied"}[m.down.restores_schema]


def _differs(values: dict[int, str]) -> bool:
    return len(set(values.values())) > 1


def _says(values: dict[int, str]) -> str:
    return "; ".join(f"PostgreSQL {v}: {text}" for v, text in values.items())


def differences(runs: list[VersionRun]) -> list[Difference]:
    """What the servers did differently, in migration order. Statements are compared only
    where every server applied the migration (a failure is its own difference), matched by
    their line."""
    out: list[Difference] = []
    if len(runs) < 2:
        return out
    by_path: list[dict[int, MigrationResult]] = []
    for i, m in enumerate(runs[0].result.migrations):
        row = {runs[0].pg_version: m}
        for run in runs[1:]:
            others = run.result.migrations
            if i < len(others) and others[i].path == m.path:
                row[run.pg_version] = others[i]
        by_path.append(row)
    stopped: set[int] = set()  # versions whose replay stopped at a failed migration
    for full in by_path:
        if len(full) < len(runs):
            continue  # not the same set (cannot happen for one discovery)
        # After a failure a version skips the rest: only the others are compared on.
        row = {v: m for v, m in full.items() if v not in stopped}
        stopped |= {v for v, m in row.items() if m.status == "failed"}
        if len(row) < 2:
            continue
        path = next(iter(row.values())).path
        statuses = {v: _status(m) for v, m in row.items()}
        if _differs({v: m.status for v, m in row.items()}):
            failed = [v for v, m in row.items() if m.status == "failed"]
            rest = (" (the replay on PostgreSQL " + ", ".join(map(str, failed))
                    + " stopped here; later migrations are compared on the others)")
            gaps = [m.error.sandbox_gap for m in row.values()
                    if m.status == "failed" and m.error is not None and m.error.sandbox_gap]
            if gaps:
                # The sandbox lacks an extension: not something the version does differently.
                out.append(Difference(path, None, "sandbox-gap",
                                      f"not comparable: a sandbox lacks what the migration "
                                      f"needs ({'; '.join(gaps)}){rest}", statuses))
            else:
                out.append(Difference(path, None, "status",
                                      f"the migration does not do the same on every version "
                                      f"({_says(statuses)}){rest}", statuses))
            continue
        if any(m.status != "applied" for m in row.values()):
            continue
        out += _statement_differences(path, row)
        for kind, describe in (("idempotent", _idempotent), ("down", _down)):
            values = {v: describe(m) for v, m in row.items()}
            if _differs(values):
                what = "a second run" if kind == "idempotent" else "the down migration"
                out.append(Difference(path, None, kind,
                                      f"{what} differs between versions ({_says(values)})",
                                      values))
    return out


def _statement_differences(path: str, row: dict[int, MigrationResult]) -> list[Difference]:
    out: list[Difference] = []
    per_line: dict[int, dict[int, StatementResult]] = {}
    for v, m in row.items():
        for s in m.statements:
            per_line.setdefault(s.line, {})[v] = s
    for line in sorted(per_line):
        stmts = per_line[line]
        if len(stmts) < len(row):
            continue
        for kind, describe, what in (("locks", _locks, "locks"),
                                     ("rewrites", _rewrites, "rewrites"),
                                     ("rows", _rows, "rows affected")):
            values = {v: describe(s) for v, s in stmts.items()}
            if _differs(values):
                out.append(Difference(path, line, kind,
                                      f"{what} differ between versions ({_says(values)})",
                                      values))
    return out
