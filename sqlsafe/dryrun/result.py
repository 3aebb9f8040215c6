"""What a dry run observed: the DryRunResult model and its JSON form (DESIGN.md, version 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Finding, LintResult


def measured_size(value: int | None) -> str:
    """Measured bytes as a reviewer reads them: 512 B, 28.0 kB, 1.4 MB, 2.10 GB."""
    if value is None:
        return "—"
    if value < 1 << 10:
        return f"{value} B"
    if value < 1 << 20:
        return f"{value / (1 << 10):.1f} kB"
    if value < 1 << 30:
        return f"{value / (1 << 20):.1f} MB"
    return f"{value / (1 << 30):.2f} GB"


def signed_size(delta: int) -> str:
    """A measured change in bytes with its sign: +28.0 kB, -1.4 MB, 0 B."""
    sign = "+" if delta > 0 else "-" if delta < 0 else ""
    return sign + measured_size(abs(delta))


def size_delta(changes: tuple[SizeChange, ...]) -> int:
    """The bytes a migration's or a statement's size changes add up to."""
    return sum(c.delta_bytes for c in changes)


def describe_sizes(changes: tuple[SizeChange, ...], limit: int = 5) -> str:
    """One line for a migration's size changes: the total, then the largest ones by name."""
    if not changes:
        return "unchanged"
    parts = [f"{c.relation} {signed_size(c.delta_bytes)}" for c in changes[:limit]]
    if len(changes) > limit:
        parts.append(f"{len(changes) - limit} more")
    return f"{signed_size(size_delta(changes))} ({', '.join(parts)})"


@dataclass(frozen=True)
class ObservedLock:
    relation: str  # schema-qualified
    mode: str  # pg_locks mode name
    relkind: str = "r"  # pg_class.relkind: r table, p partitioned, i index, m matview, S sequence

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "mode": self.mode}


@dataclass(frozen=True)
class StatementError:
    message: str
    line: int
    sqlstate: str | None = None
    # Set when the failure is a gap of the sandbox, not of the migration (e.g. an extension
    # the embedded server does not ship); names an engine that has it.
    sandbox_gap: str | None = None
    # Set when the failure may come from where the replay started rather than from the
    # migration: an object it needs that production may already have (``replay.START_HINT``).
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"message": self.message, "line": self.line}
        if self.sqlstate:
            d["sqlstate"] = self.sqlstate
        if self.sandbox_gap:
            d["sandbox_gap"] = self.sandbox_gap
        if self.hint:
            d["hint"] = self.hint
        return d


@dataclass(frozen=True)
class Blocking:
    """Issue 7: what a second session could not do while the statement held its locks."""

    relation: str
    operation: str  # read | write
    blocked: bool
    waited_ms: float = 0.0


@dataclass(frozen=True)
class LockQueue:
    """--measure-blocking: the statement asked for its lock while a query (standing in for
    production's traffic) held ACCESS SHARE on the table; while it waited, a new read of the
    table was tried."""

    relation: str
    waited_ms: float  # how long the statement waited behind the running query
    read_blocked: bool  # the new read queued behind the waiting statement
    read_waited_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "waited_ms": round(self.waited_ms, 1),
                "read_blocked": self.read_blocked,
                "read_waited_ms": round(self.read_waited_ms, 1)}


@dataclass(frozen=True)
class StatementResult:
    line: int
    sql: str
    duration_ms: float
    locks: tuple[ObservedLock, ...] = ()
    rewrites: tuple[str, ...] = ()
    rows: int | None = None
    error: StatementError | None = None
    in_transaction: bool = True
    end_line: int = 0
    predicted_locks: tuple[tuple[str, str], ...] = ()  # (relation, mode) from the static model
    predicted_rewrites: tuple[str, ...] = ()
    discrepancies: tuple[str, ...] = ()
    blocking: tuple[Blocking, ...] = ()
    # WAL the statement wrote (between the server's insert positions around it); None where
    # not read (statements that were not observed, COPY, servers before PostgreSQL 10).
    wal_bytes: int | None = None
    lock_queue: LockQueue | None = None  # --measure-blocking, ACCESS EXCLUSIVE statements
    # The relations whose size on disk it changed (--measure-sizes); None: not measured.
    sizes: tuple[SizeChange, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "line": self.line,
            "sql": self.sql,
            "duration_ms": round(self.duration_ms, 3),
            "locks": [lk.to_json() for lk in self.locks],
            "rewrites": list(self.rewrites),
            "error": self.error.to_json() if self.error else None,
        }
        if self.rows is not None:
            d["rows"] = self.rows
        if self.wal_bytes is not None:
            d["wal_bytes"] = self.wal_bytes
        d["in_transaction"] = self.in_transaction
        if self.predicted_locks or self.predicted_rewrites:
            d["predicted"] = {
                "locks": [{"relation": r, "mode": m} for r, m in self.predicted_locks],
                "rewrites": list(self.predicted_rewrites),
            }
        if self.discrepancies:
            d["discrepancies"] = list(self.discrepancies)
        if self.blocking:
            d["blocking"] = [
                {"relation": b.relation, "operation": b.operation, "blocked": b.blocked,
                 "waited_ms": round(b.waited_ms, 1)} for b in self.blocking
            ]
        if self.lock_queue is not None:
            d["lock_queue"] = self.lock_queue.to_json()
        if self.sizes is not None:
            d["sizes"] = sizes_json(self.sizes)
        return d


@dataclass(frozen=True)
class DownResult:
    status: str = "absent"  # absent | applied | failed
    restores_schema: bool | None = None
    error: StatementError | None = None
    differences: tuple[str, ...] = ()  # what the schema after down lacks or has extra

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"status": self.status}
        if self.status == "applied":
            d["restores_schema"] = self.restores_schema
            if self.differences:
                d["differences"] = list(self.differences)
        if self.error:
            d["error"] = self.error.to_json()
        return d


@dataclass(frozen=True)
class CatalogDiff:
    created: tuple[str, ...] = ()
    altered: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"created": list(self.created), "altered": list(self.altered),
                "dropped": list(self.dropped)}


@dataclass(frozen=True)
class SizeChange:
    """One relation whose size on disk a migration changed (``dry_run(measure_sizes=True)``):
    0 bytes before for one it created, after for one it dropped."""

    relation: str  # schema-qualified, its name after the migration (before, if dropped)
    relkind: str  # pg_class.relkind: r table, i index, m materialized view, S sequence
    before_bytes: int
    after_bytes: int

    @property
    def delta_bytes(self) -> int:
        return self.after_bytes - self.before_bytes

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "kind": self.relkind,
                "before_bytes": self.before_bytes, "after_bytes": self.after_bytes,
                "delta_bytes": self.delta_bytes}


def sizes_json(changes: tuple[SizeChange, ...]) -> dict[str, Any]:
    return {"delta_bytes": size_delta(changes), "relations": [c.to_json() for c in changes]}


def size_changes(before: dict[int, tuple[str, str, int]],
                 after: dict[int, tuple[str, str, int]]) -> tuple[SizeChange, ...]:
    """The relations whose size differs between two readings of ``RELATION_SIZES`` (oid ->
    (name, relkind, bytes)), the largest change first. Matched by oid, so a renamed relation
    is one change under its new name."""
    changes = []
    for oid in before.keys() | after.keys():
        old, new = before.get(oid), after.get(oid)
        was = old[2] if old else 0
        now = new[2] if new else 0
        if was != now:
            entry = new or old
            assert entry is not None
            changes.append(SizeChange(entry[0], entry[1], was, now))
    return tuple(sorted(changes, key=lambda c: (-abs(c.delta_bytes), c.relation)))


@dataclass(frozen=True)
class MigrationResult:
    path: str
    sha256: str
    status: str  # applied | failed | skipped
    duration_ms: float = 0.0
    idempotent: bool | None = None
    idempotency_error: str | None = None
    down: DownResult = field(default_factory=DownResult)
    statements: tuple[StatementResult, ...] = ()
    error: StatementError | None = None
    catalog: CatalogDiff = field(default_factory=CatalogDiff)
    findings: tuple[Finding, ...] = ()  # the lint findings for this migration
    # Issue 7 extras (failure injection, estimates) hang here as plain JSON-able data.
    extras: dict[str, Any] = field(default_factory=dict)
    # The relations whose size the migration changed; None when sizes were not measured.
    sizes: tuple[SizeChange, ...] | None = None

    @property
    def size_delta_bytes(self) -> int | None:
        return None if self.sizes is None else size_delta(self.sizes)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "idempotent": self.idempotent,
            "down": self.down.to_json(),
            "statements": [s.to_json() for s in self.statements],
            "error": self.error.to_json() if self.error else None,
            "catalog": self.catalog.to_json(),
        }
        if self.idempotency_error:
            d["idempotency_error"] = self.idempotency_error
        if self.sizes is not None:
            d["sizes"] = sizes_json(self.sizes)
        if self.findings:
            d["findings"] = [f.to_json() for f in self.findings]
        if self.extras:
            d.update(self.extras)
        return d


@dataclass(frozen=True)
class ServerInfo:
    engine: str
    version: str
    settings: tuple[tuple[str, str], ...] = ()  # --server-setting, in the order given

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"engine": self.engine, "version": self.version}
        if self.settings:
            d["settings"] = dict(self.settings)
        return d


@dataclass(frozen=True)
class DryRunResult:
    server: ServerInfo
    migrations: tuple[MigrationResult, ...]
    lint: LintResult | None = None
    schema_sha256: str | None = None  # hash of the final schema dump, for the report
    startup_ms: float = 0.0  # the sandbox's start (Sandbox.startup_ms)
    # The scratch database made ready: created (or cloned), connected, its catalog read.
    setup_ms: float = 0.0
    replay_ms: float = 0.0  # the migrations, from the first to the last (or the failing one)
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(m.status == "failed" for m in self.migrations)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": 1,
            "server": self.server.to_json(),
            "migrations": [m.to_json() for m in self.migrations],
        }
        if self.schema_sha256:
            d["schema_sha256"] = self.schema_sha256
        d["timing"] = {"startup_ms": round(self.startup_ms, 1), "setup_ms": round(self.setup_ms, 1),
                       "replay_ms": round(self.replay_ms, 1)}
        if self.notes:
            d["notes"] = list(self.notes)
        return d
