"""The Report: everything ``dry_run_report.md`` says, as plain frozen data.

Built once by ``build.py`` from the dry run, the lint and discovery (plus the verification and
backout results computed against the sandbox by ``verify.py``); every renderer reads only this,
so markdown, HTML and JSON can never disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

GO, CONDITIONAL, NO_GO = "GO", "CONDITIONAL GO", "NO-GO"

# The go/no-go policy, printed in the report itself so that a reader never has to guess it.
NO_GO_CATEGORIES = ("locking", "destructive", "backfill", "transaction", "security", "syntax")
POLICY = (
    "NO-GO when a migration failed in the dry run; when an error-severity finding in "
    + ", ".join(NO_GO_CATEGORIES) + " remains; when a down migration fails or does not restore "
    "the schema; or when a verification query does not return its expected result.",
    "CONDITIONAL GO when warnings or other error findings remain (timeout, idempotency, "
    "compatibility, style), when a migration is not idempotent when run twice, when the "
    "generated backout does not restore the schema, or when a statement takes a lock that "
    "blocks reads or writes on a table that existed before the migration set.",
    "GO otherwise.",
)


@dataclass(frozen=True)
class LockView:
    relation: str
    mode: str  # pg_locks name
    sql_name: str  # ACCESS EXCLUSIVE ...
    blocks: tuple[str, ...]  # reads / writes / DDL
    blocks_text: str
    existing: bool = True  # the relation existed before the migration set


@dataclass(frozen=True)
class StatementView:
    line: int
    sql: str  # shortened for display
    duration_ms: float | None
    predicted: tuple[LockView, ...]
    observed: tuple[LockView, ...]
    predicted_rewrites: tuple[str, ...] = ()
    observed_rewrites: tuple[str, ...] = ()
    rows: int | None = None
    error: str | None = None
    discrepancies: tuple[str, ...] = ()
    measured_blocking: tuple[str, ...] = ()  # "reads of public.t: blocked (waited 50 ms)"


@dataclass(frozen=True)
class FindingView:
    code: str
    rule: str
    category: str
    severity: str
    line: int
    message: str
    help: str = ""
    fix: str = ""
    recipe: str = ""
    doc: str = ""


@dataclass(frozen=True)
class MigrationView:
    index: int  # 1-based position in apply order
    path: str  # relative to the report's directory
    sha256: str
    status: str  # applied | failed | skipped | not-run
    risk: str  # LOW | MEDIUM | HIGH
    risk_reasons: tuple[str, ...]
    strongest_lock: LockView | None
    strongest_on: tuple[str, ...]
    rewrites: tuple[str, ...]
    duration_ms: float | None
    idempotent: bool | None
    idempotency_error: str | None
    destructive: tuple[str, ...]
    counts: dict[str, int]  # severity -> number of findings
    statements: tuple[StatementView, ...]
    findings: tuple[FindingView, ...]
    in_transaction: bool
    concurrently: bool
    error: str | None = None
    error_line: int | None = None
    sandbox_gap: str | None = None
    down_path: str | None = None
    down_status: str = "absent"
    down_restores: bool | None = None
    down_differences: tuple[str, ...] = ()
    down_error: str | None = None


@dataclass(frozen=True)
class Decision:
    verdict: str
    reasons: tuple[str, ...]  # what decided the verdict
    conditions: tuple[str, ...] = ()  # what else to review (CONDITIONAL GO items under a NO-GO)
    policy: tuple[str, ...] = POLICY


@dataclass(frozen=True)
class ChecksumLine:
    sha256: str
    path: str


@dataclass(frozen=True)
class OperatorStep:
    path: str
    staging: str
    production: str
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    path: str
    line: int
    code: str
    text: str


@dataclass(frozen=True)
class BackoutStep:
    """Generated rollback SQL for one migration (run in reverse apply order)."""

    path: str
    sql: tuple[str, ...]
    concurrently: bool = False  # holds DROP INDEX CONCURRENTLY: no --single-transaction


@dataclass(frozen=True)
class Irreversible:
    path: str
    line: int
    what: str


@dataclass(frozen=True)
class BackoutCheck:
    status: str  # restored | differs | failed | not-run
    differences: tuple[str, ...] = ()
    error: str | None = None
    note: str = ""


@dataclass(frozen=True)
class VerifyQuery:
    path: str  # the migration whose effect it checks
    description: str
    sql: str
    expected: str
    observed: str | None = None  # filled against the dry-run database

    @property
    def ok(self) -> bool | None:
        return None if self.observed is None else self.observed == self.expected


@dataclass(frozen=True)
class Report:
    title: str
    directory: str
    sqlsafe_version: str
    engine: str
    server_version: str
    schema_sha256: str | None
    generated_at: str | None
    decision: Decision
    migrations: tuple[MigrationView, ...]
    checksums: tuple[ChecksumLine, ...]
    checksum_file: str
    operator: tuple[OperatorStep, ...]
    recipes: tuple[Recipe, ...]
    backout: tuple[BackoutStep, ...]
    manual: tuple[Irreversible, ...]  # reversible, but not generated: do by hand
    irreversible: tuple[Irreversible, ...]
    backout_check: BackoutCheck
    verification: tuple[VerifyQuery, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    totals: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["verification"] = [{**dataclasses.asdict(q), "ok": q.ok} for q in self.verification]
        return {"version": 1, **d}
