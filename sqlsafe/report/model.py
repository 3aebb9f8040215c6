"""The Report: everything ``dry_run_report.md`` says, as plain frozen data.

Built once by ``build.py`` from the dry run, the lint and discovery (plus the verification and
backout results computed against the sandbox by ``verify.py``); every renderer reads only this,
so markdown, HTML and JSON can never disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..dryrun.result import SizeChange

GO, CONDITIONAL, NO_GO = "GO", "CONDITIONAL GO", "NO-GO"

# The go/no-go policy, printed in the report itself so that a reader never has to guess it.
NO_GO_CATEGORIES = ("locking", "destructive", "backfill", "transaction", "security", "syntax")
# Lock budget at production size (``--estimate``): a lock held longer than this on a table that
# existed before the set is an outage of that table for that long. 5 s is what a typical client
# timeout and a connection pool's queue survive; estimates carry an error of about ±10%
# (docs/estimates.md), far inside the margin between this and estimate.risk_level's HIGH (2 s).
LOCK_BUDGET_MS = 5_000.0
POLICY = (
    "NO-GO when a migration failed in the dry run (with or without sample rows, on any of the "
    "majors of --versions); when an "
    "error-severity finding in " + ", ".join(NO_GO_CATEGORIES) + " remains; when a down "
    "migration fails or does not restore the schema; when a verification query does not "
    "return its expected result; or when a lock that blocks reads (ACCESS EXCLUSIVE) is "
    f"estimated to be held longer than {LOCK_BUDGET_MS / 1000:g} s at production size on a "
    "table that existed before the set (every query on it would queue for that long).",
    "CONDITIONAL GO when warnings or other error findings remain (timeout, idempotency, "
    "compatibility, style), when a locking error finding's statement is estimated LOW risk at "
    "production size (the measurement shows the lock brief: e.g. a rewrite of a 100-row "
    "table), when a migration is not idempotent when run twice, when failure "
    "injection finds a point after which a retry fails, leaves a different schema or an "
    "INVALID index (a deploy that dies there needs a human), when the generated backout does "
    "not restore the schema, when a lock that blocks only writes is estimated to be held longer "
    f"than {LOCK_BUDGET_MS / 1000:g} s at production size on an existing table (reads go on; "
    "writes queue: pick a quiet window), when the majors of --versions lock, rewrite or count "
    "rows differently, or when a statement takes a lock that blocks reads or "
    "writes on a table that existed before the migration set.",
    "GO otherwise.",
    "Risk levels: with production sizes (--estimate with --rows, --stats-file or --stats-from), "
    "each statement's risk is estimate.risk_level(estimated lock-hold time, lock mode): a lock "
    "that blocks reads is HIGH from 2 s held and MEDIUM from 200 ms, one that blocks only writes "
    "HIGH from 10 s and MEDIUM from 1 s; a migration's risk is its worst statement's, or HIGH "
    "for a failure, a destructive statement or a broken down migration. Without production "
    "sizes, risk comes from the lock mode only: a rewrite or an error finding is HIGH, a lock "
    "that blocks traffic on an existing table MEDIUM.",
    "Estimates are shown to two significant figures; they vary a little from run to run "
    "(timings on a shared machine), which is why the committed sample reports are compared "
    "with estimates normalized (sqlsafe/report/refresh.py).",
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
    measured_blocking: tuple[BlockingView, ...] = ()  # --measure-blocking, per table
    estimate: EstimateView | None = None  # --estimate: at production size
    risk: str | None = None  # LOW | MEDIUM | HIGH from the estimate; None without one
    wal_bytes: int | None = None  # WAL the statement wrote in the sandbox
    # --measure-blocking, ACCESS EXCLUSIVE statements: what waiting behind a running query did
    # ("waited 53 ms behind a running query on public.t; a new read queued behind it")
    lock_queue: str | None = None


@dataclass(frozen=True)
class BlockingView:
    """What a second session could do on one table while the statement held its locks
    (``--measure-blocking``), next to what the lock table predicts for the mode held."""

    relation: str
    reads_blocked: bool | None  # None: not probed (e.g. a write probe on a matview)
    writes_blocked: bool | None
    mode: str | None  # SQL name of the strongest mode observed on the table
    predicted_reads: bool | None  # what locks.blocks says for ``mode``
    predicted_writes: bool | None
    waited_ms: float  # the longest probe wait (a blocked probe gives up at lock_timeout)
    discrepancies: tuple[str, ...] = ()  # where the measurement contradicts the lock table

    @property
    def agrees(self) -> bool:
        return not self.discrepancies


@dataclass(frozen=True)
class EstimateView:
    """One statement at production size (``--estimate``): the extrapolated duration and
    lock-hold time and the basis they rest on."""

    relation: str | None  # the largest table the statement touches
    rows: int | None  # production rows of ``relation``; None: unknown
    rows_source: str  # --rows / stats file x / --stats-from / created by this set / unknown
    estimated_ms: float | None
    lock_hold_ms: float | None  # until COMMIT inside a transaction
    lock_mode: str | None  # SQL name of the strongest lock held on an existing table, if any
    lock_relation: str | None  # the existing table ``lock_mode`` is held on
    model: str  # linear | n log n | constant
    measured: tuple[MeasuredPoint, ...]  # what the fit rests on
    relation_bytes: int | None = None  # size of ``relation`` after the statement, estimated

    @property
    def existing(self) -> bool:
        """The statement locks a table that existed before the set (it has traffic)."""
        return self.lock_relation is not None


@dataclass(frozen=True)
class MeasuredPoint:
    rows: int  # rows per table in the replay
    ms: float  # the statement's best time at that size


@dataclass(frozen=True)
class InjectionView:
    """One interruption point of ``--inject-failures`` and what the retry did."""

    where: str  # "after statement 1 (line 3)" / "during statement 2 (line 5)"
    retry: str  # ok | failed | schema differs
    error: str | None = None
    note: str | None = None


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
    error_hint: str | None = None  # the failure may come from the empty starting database
    down_path: str | None = None
    down_status: str = "absent"
    down_restores: bool | None = None
    down_differences: tuple[str, ...] = ()
    down_error: str | None = None
    # Dry run with data: why the failure happened, if rows revealed it (--sample-rows) ...
    explanation: str | None = None
    # ... what each interruption + retry did (--inject-failures; () when not run) ...
    injection: tuple[InjectionView, ...] = ()
    injection_run: bool = False
    # ... and what the risk level rests on.
    risk_basis: str = ""
    longest_hold: EstimateView | None = None  # the statement estimate with the longest lock hold
    longest_hold_line: int | None = None
    # WAL the migration's observed statements wrote in the sandbox (None: none was read).
    wal_bytes: int | None = None
    # The relations whose size on disk it changed (None: sizes were not measured).
    sizes: tuple[SizeChange, ...] | None = None


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
class DataRun:
    """Which dry-run-with-data measurements the report holds (read from the results)."""

    blocking: bool
    injection: bool
    estimates: bool
    sizes: tuple[int, ...] = ()  # rows per table the estimates were measured at
    rows: tuple[tuple[str, int | None, str], ...] = ()  # (table, production rows, source)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionView:
    """One major of ``check --versions``: where the set was replayed and how it went."""

    pg_version: int
    engine: str
    server_version: str
    applied: int
    failed: int
    skipped: int
    primary: bool  # the replay the rest of the report shows


@dataclass(frozen=True)
class VersionDifference:
    path: str
    line: int | None
    kind: str  # status | sandbox-gap | locks | rewrites | rows | idempotent | down
    message: str
    by_version: dict[int, str] = field(default_factory=dict)  # what each major did


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
    data: DataRun | None = None  # what the dry run with data measured; None: an empty dry run
    # check --versions: every major replayed (the first is the report's own) and what the
    # servers did differently; empty for a single-version check.
    versions: tuple[VersionView, ...] = ()
    version_differences: tuple[VersionDifference, ...] = ()
    # --server-setting: "name = value" for each setting the sandbox was given
    server_settings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        from ..dryrun.result import sizes_json

        d = dataclasses.asdict(self)
        d["verification"] = [{**dataclasses.asdict(q), "ok": q.ok} for q in self.verification]
        # A migration's sizes as the dry-run JSON gives them (``sizes_json``).
        for view, out in zip(self.migrations, d["migrations"], strict=True):
            out["sizes"] = None if view.sizes is None else sizes_json(view.sizes)
        return {"version": 1, **d}
