"""Build the Report from what the dry run observed, what lint found and what discovery saw.

``build_report`` takes the verification and backout results already computed against the
sandbox (``verify.py``); it never touches a database itself, so the same inputs always give the
same report (no timestamp unless asked for).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from .. import checksum as cs
from .. import locks as lk
from .. import nodes as n
from ..dryrun.result import DryRunResult, MigrationResult, ObservedLock, StatementResult
from ..model import DiscoveryResult, Finding, LintResult, Migration, StatementInfo
from . import plan
from .model import (
    CONDITIONAL,
    GO,
    NO_GO,
    NO_GO_CATEGORIES,
    BackoutCheck,
    ChecksumLine,
    Decision,
    FindingView,
    LockView,
    MigrationView,
    OperatorStep,
    Recipe,
    Report,
    StatementView,
    VerifyQuery,
)

# Relations whose locks matter for traffic: tables, partitioned tables, matviews.
_TABLE_KINDS = ("r", "p", "m")
_SQL_WIDTH = 200


def relative_paths(discovery: DiscoveryResult) -> dict[str, str]:
    """Display path -> path relative to the migrations directory (what psql -f and
    checksum.txt use)."""
    root = os.path.abspath(discovery.root)
    out = {}
    for m in discovery.migrations:
        for display, abspath in ((m.path, m.abspath),
                                 (m.down.path, m.down.abspath) if m.down else (None, None)):
            if display and abspath:
                out[display] = Path(os.path.relpath(abspath, root)).as_posix()
            elif display:
                out[display] = display
    return out


def lock_view(relation: str, mode: str, existing: bool = True) -> LockView:
    return LockView(relation, mode, lk.SQL_NAMES.get(mode, mode), lk.blocks(mode),
                    lk.blocks_text(mode), existing)


def _short(sql: str, width: int = _SQL_WIDTH) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def build_report(dry: DryRunResult, lint_result: LintResult, discovery: DiscoveryResult, *,
                 verification: Sequence[VerifyQuery] = (),
                 backout_check: BackoutCheck | None = None, from_index: int = 0,
                 checksum_file: str = "checksum.txt", timestamp: str | None = None) -> Report:
    paths = relative_paths(discovery)
    by_path = {m.path: m for m in discovery.migrations}
    results = {r.path: r for r in dry.migrations}
    findings_by_path: dict[str, list[Finding]] = {}
    for f in lint_result.findings:
        findings_by_path.setdefault(f.path, []).append(f)
    infos: dict[tuple[str, int], StatementInfo] = {(s.path, s.span.line): s
                                                   for s in lint_result.statements}

    created: set[str] = set()  # tables created by the set so far (no traffic on them yet)
    views: list[MigrationView] = []
    for index, m in enumerate(discovery.migrations):
        if index < from_index:
            continue
        stmts = plan.statements_of(m.section)
        for s in stmts:
            for a in s.actions:
                if isinstance(a, n.CreateTable) and not a.temporary:
                    created.add(a.rel.qualified)
        res = results.get(m.path)
        fnds = findings_by_path.get(m.path, []) or list(res.findings if res else ())
        views.append(_migration_view(index + 1, m, res, fnds, infos, stmts, set(created), paths))

    steps, manual, lost = plan.backout(discovery, paths, from_index)
    checks = tuple(verification)
    decision = decide(views, checks, backout_check)
    totals = {
        "migrations": len(views),
        "statements": sum(len(v.statements) for v in views),
        "errors": sum(v.counts.get("error", 0) for v in views),
        "warnings": sum(v.counts.get("warning", 0) for v in views),
        "infos": sum(v.counts.get("info", 0) for v in views),
    }
    try:
        checksums = tuple(ChecksumLine(e.sha256, e.path) for e in cs.entries_of(discovery))
    except OSError:  # a file vanished since discovery: the checksum step reports it
        checksums = ()
    recipes = tuple(Recipe(v.path, f.line, f.code, f.recipe)
                    for v in views for f in v.findings if f.recipe)
    problems = tuple(f"{p.path}: {p.message}" for p in discovery.problems)
    return Report(
        title=f"Dry-run report: {Path(os.path.abspath(discovery.root)).name}",
        directory=Path(discovery.root).as_posix(),
        sqlsafe_version=__version__,
        engine=dry.server.engine,
        server_version=dry.server.version,
        schema_sha256=dry.schema_sha256,
        generated_at=timestamp,
        decision=decision,
        migrations=tuple(views),
        checksums=checksums,
        checksum_file=checksum_file,
        operator=tuple(_operator(discovery, paths, from_index)),
        recipes=recipes,
        backout=tuple(steps),
        manual=tuple(manual),
        irreversible=tuple(lost),
        backout_check=backout_check or BackoutCheck("not-run", note="no sandbox connection"),
        verification=checks,
        problems=problems,
        notes=tuple(dry.notes) + tuple(discovery.notes),
        totals=totals,
    )


def _observed(locks: tuple[ObservedLock, ...], created: set[str]) -> tuple[LockView, ...]:
    # The strongest mode per table: a statement that also holds ACCESS SHARE on a table it
    # locks in SHARE ROW EXCLUSIVE blocks what the stronger one blocks.
    strongest: dict[str, str] = {}
    for o in locks:
        if o.relkind in _TABLE_KINDS and lk.rank(o.mode) > lk.rank(strongest.get(o.relation, "")):
            strongest[o.relation] = o.mode
    return tuple(lock_view(rel, mode, rel not in created) for rel, mode in strongest.items())


def _statement_view(st: StatementResult, info: StatementInfo | None,
                    created: set[str]) -> StatementView:
    predicted_pairs = st.predicted_locks or (
        tuple((p.relation, p.mode) for p in info.locks) if info else ())
    predicted_rw = st.predicted_rewrites or (info.rewrites if info else ())
    blocking = tuple(
        f"{b.operation}s of {b.relation}: " + (f"blocked (waited {b.waited_ms:.0f} ms)"
                                               if b.blocked else "not blocked")
        for b in st.blocking)
    return StatementView(
        line=st.line, sql=_short(st.sql), duration_ms=st.duration_ms,
        predicted=tuple(lock_view(r, md, r not in created) for r, md in predicted_pairs),
        observed=_observed(st.locks, created),
        predicted_rewrites=tuple(predicted_rw), observed_rewrites=tuple(st.rewrites),
        rows=st.rows, error=st.error.message if st.error else None,
        discrepancies=tuple(st.discrepancies), measured_blocking=blocking)


def _migration_view(index: int, m: Migration, res: MigrationResult | None,
                    fnds: list[Finding], infos: dict[tuple[str, int], StatementInfo],
                    stmts: list[plan.Stmt], created: set[str],
                    paths: dict[str, str]) -> MigrationView:
    if res is not None:
        statements = tuple(_statement_view(st, infos.get((m.path, st.line)), created)
                           for st in res.statements)
    else:  # not replayed: show the static prediction only
        statements = tuple(
            StatementView(s.span.line, _short(s.sql), None,
                          tuple(lock_view(p.relation, p.mode, p.relation not in created)
                                for p in s.locks), (), tuple(s.rewrites))
            for (path, _), s in infos.items() if path == m.path)
    # Observed locks when the statement ran, else predicted: the report prefers measurement.
    held: list[LockView] = []
    for sv in statements:
        held.extend(sv.observed if res is not None and res.status != "skipped" else sv.predicted)
    existing = [lv for lv in held if lv.existing]
    strongest = max(existing or held, key=lambda lv: lk.rank(lv.mode), default=None)
    on = tuple(sorted({lv.relation for lv in (existing or held)
                       if strongest and lv.mode == strongest.mode}))
    rewrites = tuple(sorted({r for sv in statements
                             for r in (sv.observed_rewrites if res else sv.predicted_rewrites)
                             if r not in created}))
    destructive = tuple(_destructive(stmts))
    counts = {sev: sum(1 for f in fnds if f.severity == sev) for sev in ("error", "warning", "info")}
    fviews = tuple(FindingView(f.code, f.rule, f.category, f.severity, f.span.line, f.message,
                               f.help, f.fix.description if f.fix else "", f.recipe, f.doc)
                   for f in sorted(fnds, key=Finding.sort_key))
    risk, reasons = _risk(res, fviews, existing, rewrites, destructive)
    down = res.down if res else None
    err = res.error if res else None
    return MigrationView(
        index=index, path=paths.get(m.path, m.path), sha256=(res.sha256 if res else m.sha256),
        status=res.status if res else "not-run", risk=risk, risk_reasons=tuple(reasons),
        strongest_lock=strongest, strongest_on=on, rewrites=rewrites,
        duration_ms=res.duration_ms if res and res.status != "skipped" else None,
        idempotent=res.idempotent if res else None,
        idempotency_error=res.idempotency_error if res else None,
        destructive=destructive, counts=counts, statements=statements, findings=fviews,
        in_transaction=m.in_transaction, concurrently=plan.uses_concurrently(m.section),
        error=err.message if err else None, error_line=err.line if err else None,
        sandbox_gap=err.sandbox_gap if err else None,
        down_path=paths.get(m.down.path, m.down.path) if m.down else None,
        down_status=down.status if down else ("absent" if not m.down else "not-run"),
        down_restores=down.restores_schema if down else None,
        down_differences=tuple(down.differences) if down else (),
        down_error=down.error.message if down and down.error else None,
    )


def _destructive(stmts: list[plan.Stmt]) -> list[str]:
    out = []
    for s in stmts:
        for a in s.actions:
            if isinstance(a, (n.DropColumn, n.Truncate, n.Delete)) or (
                    isinstance(a, n.Drop) and a.objtype in ("table", "schema",
                                                            "materialized view")):
                out.append(f"line {s.line}: {_short(s.sql, 80)}")
                break
            if isinstance(a, n.Drop) and a.cascade:
                out.append(f"line {s.line}: {_short(s.sql, 80)} (CASCADE)")
                break
    return out


def _risk(res: MigrationResult | None, fviews: tuple[FindingView, ...],
          existing: list[LockView], rewrites: tuple[str, ...],
          destructive: tuple[str, ...]) -> tuple[str, list[str]]:
    high: list[str] = []
    medium: list[str] = []
    if res is not None and res.status == "failed":
        high.append("failed in the dry run")
    if res is not None and res.down.status == "failed":
        high.append("down migration failed")
    elif res is not None and res.down.status == "applied" and res.down.restores_schema is False:
        high.append("down migration does not restore the schema")
    if rewrites:
        high.append("rewrites " + ", ".join(rewrites))
    if destructive:
        high.append(f"{len(destructive)} destructive statement(s)")
    blocking = [lv for lv in existing if lk.is_dangerous(lv.mode)]
    if any(f.severity == "error" and f.category in NO_GO_CATEGORIES for f in fviews):
        high.append("error findings in " + ", ".join(sorted(
            {f.category for f in fviews if f.severity == "error" and f.category in NO_GO_CATEGORIES})))
    if blocking:
        medium.append("blocks " + "/".join(sorted({w for lv in blocking for w in lv.blocks
                                                    if w != "DDL"}))
                      + " on existing " + ", ".join(sorted({lv.relation for lv in blocking})))
    if res is not None and res.idempotent is False:
        medium.append("not idempotent")
    if any(f.severity in ("error", "warning") for f in fviews) and not high:
        medium.append("findings to review")
    if high:
        return "HIGH", high + medium
    if medium:
        return "MEDIUM", medium
    return "LOW", []


def decide(views: Sequence[MigrationView], checks: Sequence[VerifyQuery],
           backout_check: BackoutCheck | None) -> Decision:
    nogo: list[str] = []
    cond: list[str] = []
    for v in views:
        if v.status == "failed":
            gap = f" (sandbox gap: {v.sandbox_gap})" if v.sandbox_gap else ""
            nogo.append(f"{v.path} failed in the dry run at line {v.error_line}: {v.error}{gap}")
        for f in v.findings:
            if f.severity == "error" and f.category in NO_GO_CATEGORIES:
                nogo.append(f"{v.path}:{f.line} {f.code} {f.rule} ({f.category} error)")
            elif f.severity in ("error", "warning"):
                cond.append(f"{v.path}:{f.line} {f.code} {f.rule} ({f.category} {f.severity})")
        if v.down_status == "failed":
            nogo.append(f"{v.down_path}: down migration failed: {v.down_error}")
        elif v.down_status == "applied" and v.down_restores is False:
            nogo.append(f"{v.down_path}: down migration does not restore the schema")
        if v.idempotent is False:
            cond.append(f"{v.path}: fails or changes the schema when run a second time"
                        + (f" ({v.idempotency_error})" if v.idempotency_error else ""))
        blocking = sorted({(lv.relation, lv.sql_name) for s in v.statements
                           for lv in (s.observed or s.predicted)
                           if lv.existing and lk.is_dangerous(lv.mode)})
        for rel, mode in blocking:
            cond.append(f"{v.path}: {mode} on existing table {rel} "
                        f"({lk.blocks_text(_mode_of(mode))})")
    for q in checks:
        if q.ok is False:
            nogo.append(f"verification failed: {q.description}: got {q.observed!r}, "
                        f"expected {q.expected!r}")
    if backout_check is not None and backout_check.status in ("differs", "failed"):
        cond.append(f"generated backout does not restore the schema ({backout_check.status})")
    if nogo:
        return Decision(NO_GO, tuple(_dedupe(nogo)), tuple(_dedupe(cond)))
    if cond:
        return Decision(CONDITIONAL, tuple(_dedupe(cond)))
    return Decision(GO, ("every migration applied; no findings; no blocking locks on existing "
                         "tables",))


def _mode_of(sql_name: str) -> str:
    for mode, name in lk.SQL_NAMES.items():
        if name == sql_name:
            return mode
    return sql_name


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------- operator


def _operator(discovery: DiscoveryResult, paths: dict[str, str],
              from_index: int) -> list[OperatorStep]:
    out = []
    for m in discovery.migrations[from_index:]:
        rel = paths.get(m.path, m.path)
        note = ""
        flags = "-v ON_ERROR_STOP=1"
        conc = plan.uses_concurrently(m.section)
        if m.abspath is None:
            note = "read from stdin: save it to a file first"
        elif m.down is not None and m.down.abspath == m.abspath:
            note = (f"the file also holds the down section: apply it with {m.layout} "
                    f"(its up section starts at line {m.section.line_offset + 1}), not psql -f")
        if m.in_transaction and not conc and not plan.has_transaction_control(m.section):
            flags += " --single-transaction"
        elif conc:
            note = note or "CONCURRENTLY statements: runs without --single-transaction"
        out.append(OperatorStep(
            rel,
            f'psql "$STAGING_DATABASE_URL" {flags} -f {_shell(rel)}',
            f'psql "$PRODUCTION_DATABASE_URL" {flags} -f {_shell(rel)}',
            note))
    return out


def _shell(path: str) -> str:
    return path if re.fullmatch(r"[A-Za-z0-9_./@%+=:,-]+", path) else "'" + path.replace(
        "'", "'\\''") + "'"
