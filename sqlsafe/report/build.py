"""Build the Report from what the dry run observed, what lint found and what discovery saw.

``build_report`` takes the verification and backout results already computed against the
sandbox (``verify.py``); it never touches a database itself, so the same inputs always give the
same report (no timestamp unless asked for).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .. import checksum as cs
from .. import locks as lk
from .. import nodes as n
from ..dryrun import blocking as bk
from ..dryrun import estimate as est
from ..dryrun.result import Blocking, DryRunResult, MigrationResult, ObservedLock, StatementResult
from ..model import DiscoveryResult, Finding, LintResult, Migration, StatementInfo
from . import plan
from .model import (
    CONDITIONAL,
    GO,
    LOCK_BUDGET_MS,
    NO_GO,
    NO_GO_CATEGORIES,
    BackoutCheck,
    BlockingView,
    ChecksumLine,
    DataRun,
    Decision,
    EstimateView,
    FindingView,
    InjectionView,
    LockView,
    MeasuredPoint,
    MigrationView,
    OperatorStep,
    Recipe,
    Report,
    StatementView,
    VerifyQuery,
    VersionDifference,
    VersionView,
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
                 checksum_file: str = "checksum.txt", timestamp: str | None = None,
                 matrix: tuple[Sequence[Any], Sequence[Any]] | None = None) -> Report:
    """The report's model. ``matrix``: (VersionRuns, differences) of ``check --versions``,
    the first run being ``dry``'s."""
    paths = relative_paths(discovery)
    results = {r.path: r for r in dry.migrations}
    findings_by_path: dict[str, list[Finding]] = {}
    for f in lint_result.findings:
        findings_by_path.setdefault(f.path, []).append(f)
    infos: dict[tuple[str, int], StatementInfo] = {(s.path, s.span.line): s
                                                   for s in lint_result.statements}

    data = _data_run(dry)
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
        views.append(_migration_view(index + 1, m, res, fnds, infos, stmts, set(created), paths,
                                     estimates_run=data is not None and data.estimates))

    steps, manual, lost = plan.backout(discovery, paths, from_index)
    checks = tuple(verification)
    versions, differences = _matrix_views(matrix, paths)
    decision = decide(views, checks, backout_check, differences, versions)
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
        server_settings=tuple(f"{name} = {value}" for name, value in dry.server.settings),
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
        data=data,
        versions=versions,
        version_differences=differences,
    )


def _matrix_views(matrix: tuple[Sequence[Any], Sequence[Any]] | None, paths: dict[str, str],
                  ) -> tuple[tuple[VersionView, ...], tuple[VersionDifference, ...]]:
    if matrix is None:
        return (), ()
    runs, diffs = matrix
    versions = tuple(
        VersionView(r.pg_version, r.engine, r.result.server.version,
                    sum(m.status == "applied" for m in r.result.migrations),
                    sum(m.status == "failed" for m in r.result.migrations),
                    sum(m.status == "skipped" for m in r.result.migrations), i == 0)
        for i, r in enumerate(runs))
    return versions, tuple(VersionDifference(paths.get(d.path, d.path), d.line, d.kind,
                                             d.message, dict(d.by_version)) for d in diffs)


def _data_run(dry: DryRunResult) -> DataRun | None:
    """What the dry run with data measured, read off the results (the replay records no
    options; --sample-rows alone shows only as explanations)."""
    blocking = any(s.blocking for m in dry.migrations for s in m.statements)
    injection = any("failure_injection" in m.extras for m in dry.migrations)
    bases = [m.extras["estimates_basis"] for m in dry.migrations if "estimates_basis" in m.extras]
    explained = any(m.extras.get("explanation") for m in dry.migrations)
    if not (blocking or injection or bases or explained):
        return None
    sizes = tuple(int(n) for n in bases[0].get("sizes", ())) if bases else ()
    rows: dict[str, tuple[str, int | None, str]] = {}
    for m in dry.migrations:
        for item in m.extras.get("estimates", ()):
            rel = item.get("relation")
            if rel and rel not in rows:
                rows[rel] = (rel, item.get("rows"), str(item.get("rows_source", "")))
    # Each size is replayed more than once: the same note repeats.
    notes = tuple(dict.fromkeys(str(n) for b in bases for n in b.get("notes", ())))
    return DataRun(blocking, injection, bool(bases), sizes, tuple(sorted(rows.values())), notes)


def _observed(locks: tuple[ObservedLock, ...], created: set[str]) -> tuple[LockView, ...]:
    # The strongest mode per table: a statement that also holds ACCESS SHARE on a table it
    # locks in SHARE ROW EXCLUSIVE blocks what the stronger one blocks.
    strongest: dict[str, str] = {}
    for o in locks:
        if o.relkind in _TABLE_KINDS and lk.rank(o.mode) > lk.rank(strongest.get(o.relation, "")):
            strongest[o.relation] = o.mode
    return tuple(lock_view(rel, mode, rel not in created) for rel, mode in strongest.items())


def _statement_view(st: StatementResult, info: StatementInfo | None,
                    created: set[str], held: dict[str, str],
                    estimate: dict[str, Any] | None = None) -> StatementView:
    predicted_pairs = st.predicted_locks or (
        tuple((p.relation, p.mode) for p in info.locks) if info else ())
    predicted_rw = st.predicted_rewrites or (info.rewrites if info else ())
    ev = _estimate_view(estimate, st.locks, created) if estimate is not None else None
    risk = None
    if ev is not None and ev.rows is not None:
        mode = _mode_of(ev.lock_mode) if ev.lock_mode else None
        risk = est.risk_level(ev.lock_hold_ms if ev.lock_hold_ms is not None
                              else ev.estimated_ms, mode).upper()
    return StatementView(
        line=st.line, sql=_short(st.sql), duration_ms=st.duration_ms,
        predicted=tuple(lock_view(r, md, r not in created) for r, md in predicted_pairs),
        observed=_observed(st.locks, created),
        predicted_rewrites=tuple(predicted_rw), observed_rewrites=tuple(st.rewrites),
        rows=st.rows, error=st.error.message if st.error else None, wal_bytes=st.wal_bytes,
        discrepancies=tuple(st.discrepancies),
        measured_blocking=_blocking_views(st.blocking, held), estimate=ev, risk=risk,
        lock_queue=_lock_queue_text(st))


def _lock_queue_text(st: StatementResult) -> str | None:
    q = st.lock_queue
    if q is None:
        return None
    then = ("a new read of the table queued behind it: while it waits, the table is closed to "
            "all traffic" if q.read_blocked else "a new read still went through")
    return f"waited {q.waited_ms:.0f} ms behind a running query on {q.relation}; {then}"


def _blocking_views(probes: tuple[Blocking, ...], held: dict[str, str]) -> tuple[BlockingView, ...]:
    """One view per probed table. ``held``: the strongest mode per table held when the probe
    ran — inside a transaction that includes earlier statements' locks, which the probe
    (after the statement, before COMMIT) meets too; comparing with this statement's own locks
    only would report a discrepancy that is not one."""
    by_rel: dict[str, list[Blocking]] = {}
    for b in probes:
        by_rel.setdefault(b.relation, []).append(b)
    held_locks = [ObservedLock(rel, mode) for rel, mode in held.items()]
    out = []
    for rel, items in by_rel.items():
        ops = {b.operation: b.blocked for b in items}
        mode = held.get(rel)
        predicted = bk.predicted(mode) if mode else {}
        out.append(BlockingView(
            relation=rel, reads_blocked=ops.get("read"), writes_blocked=ops.get("write"),
            mode=lk.SQL_NAMES.get(mode, mode) if mode else None,
            predicted_reads=predicted.get("read"), predicted_writes=predicted.get("write"),
            waited_ms=max(b.waited_ms for b in items),
            discrepancies=tuple(bk.compare(items, held_locks))))
    return tuple(out)


def _estimate_view(item: dict[str, Any], locks: tuple[ObservedLock, ...],
                   created: set[str]) -> EstimateView:
    relation = item.get("relation")
    source = str(item.get("rows_source", ""))
    existing = relation not in created and not source.startswith("created")
    # The lock that matters for traffic: the one on the estimated table when it has traffic,
    # else the strongest one on any table that existed before the set.
    on_rel = [o for o in locks if o.relation == relation] if existing else []
    on_existing = [o for o in locks if o.relation not in created and o.relkind in _TABLE_KINDS]
    candidates = on_rel or on_existing
    best = max(candidates, key=lambda o: lk.rank(o.mode)) if candidates else None
    fit = item.get("fit") or {}
    return EstimateView(
        relation=relation, rows=item.get("rows"), rows_source=source,
        estimated_ms=item.get("estimated_ms"), lock_hold_ms=item.get("lock_hold_ms"),
        lock_mode=lk.SQL_NAMES.get(best.mode, best.mode) if best else None,
        lock_relation=best.relation if best else None,
        model=str(fit.get("model", "")),
        measured=tuple(MeasuredPoint(int(x["rows"]), float(x["ms"]))
                       for x in item.get("measured", ())),
        relation_bytes=item.get("relation_bytes"))


def _held_after(held: dict[str, str], st: StatementResult) -> dict[str, str]:
    """Strongest mode per table held once ``st`` ran (locks last until the transaction ends)."""
    now = dict(held) if st.in_transaction else {}
    for o in st.locks:
        if lk.rank(o.mode) > lk.rank(now.get(o.relation, "")):
            now[o.relation] = o.mode
    return now


def _injection_views(entries: list[dict[str, Any]]) -> tuple[InjectionView, ...]:
    out = []
    for e in entries:
        if "during_statement" in e:
            where = f"during statement {e['during_statement']} (line {e['line']})"
        elif e.get("after_statement") and e.get("note"):
            where = f"before COMMIT, after statement {e['after_statement']}"
        else:
            where = f"after statement {e['after_statement']} (line {e['line']})"
        out.append(InjectionView(where, str(e.get("retry", "")), e.get("error"), e.get("note")))
    return tuple(out)


def _migration_view(index: int, m: Migration, res: MigrationResult | None,
                    fnds: list[Finding], infos: dict[tuple[str, int], StatementInfo],
                    stmts: list[plan.Stmt], created: set[str],
                    paths: dict[str, str], *, estimates_run: bool = False) -> MigrationView:
    if res is not None:
        # A statement that touches no table (SET ...) has nothing to extrapolate.
        estimates = {int(e["line"]): e for e in res.extras.get("estimates", ())
                     if e.get("relation")}
        views_: list[StatementView] = []
        in_force: dict[str, str] = {}  # locks held when the blocking probe ran
        for st in res.statements:
            in_force = _held_after(in_force, st)
            views_.append(_statement_view(st, infos.get((m.path, st.line)), created, in_force,
                                          estimates.get(st.line)))
            if st.sql.lstrip().upper().startswith(("COMMIT", "END", "ROLLBACK", "ABORT")):
                in_force = {}
        statements = tuple(views_)
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
    risk, reasons, basis = _risk(res, fviews, existing, rewrites, destructive, statements,
                                 estimates_run)
    holds = [(sv.line, sv.estimate) for sv in statements
             if sv.estimate is not None and sv.estimate.lock_hold_ms is not None]
    longest = max(holds, key=lambda h: (h[1].existing, h[1].lock_hold_ms or 0.0), default=None)
    extras = res.extras if res else {}
    down = res.down if res else None
    err = res.error if res else None
    return MigrationView(
        index=index, path=paths.get(m.path, m.path), sha256=(res.sha256 if res else m.sha256),
        status=res.status if res else "not-run", risk=risk, risk_reasons=tuple(reasons),
        strongest_lock=strongest, strongest_on=on, rewrites=rewrites,
        duration_ms=res.duration_ms if res and res.status != "skipped" else None,
        wal_bytes=_wal_total(res), sizes=res.sizes if res else None,
        idempotent=res.idempotent if res else None,
        idempotency_error=res.idempotency_error if res else None,
        destructive=destructive, counts=counts, statements=statements, findings=fviews,
        in_transaction=m.in_transaction, concurrently=plan.uses_concurrently(m.section),
        error=err.message if err else None, error_line=err.line if err else None,
        sandbox_gap=err.sandbox_gap if err else None,
        error_hint=err.hint if err else None,
        down_path=paths.get(m.down.path, m.down.path) if m.down else None,
        down_status=down.status if down else ("absent" if not m.down else "not-run"),
        down_restores=down.restores_schema if down else None,
        down_differences=tuple(down.differences) if down else (),
        down_error=down.error.message if down and down.error else None,
        explanation=extras.get("explanation"),
        injection=_injection_views(extras.get("failure_injection", [])),
        injection_run="failure_injection" in extras, risk_basis=basis,
        longest_hold=longest[1] if longest else None,
        longest_hold_line=longest[0] if longest else None,
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
          destructive: tuple[str, ...], statements: tuple[StatementView, ...] = (),
          estimates_run: bool = False) -> tuple[str, list[str], str]:
    """(LOW | MEDIUM | HIGH, reasons, basis). Where a statement has an estimate at production
    size, its lock risk is ``estimate.risk_level`` of the estimated lock-hold time: a rewrite
    is HIGH on a big table and LOW on a tiny one. Statements without one keep the lock-mode
    rule (a rewrite is HIGH, a lock that blocks traffic on an existing table MEDIUM)."""
    high: list[str] = []
    medium: list[str] = []
    # Statements whose lock risk the estimate decides (a production row count was known).
    measured = {sv.line: sv for sv in statements if sv.risk is not None and sv.estimate}
    if res is not None and res.status == "failed":
        high.append("failed in the dry run")
    if res is not None and res.down.status == "failed":
        high.append("down migration failed")
    elif res is not None and res.down.status == "applied" and res.down.restores_schema is False:
        high.append("down migration does not restore the schema")
    for sv in sorted(measured.values(), key=lambda s: s.line):
        e = sv.estimate
        assert e is not None and sv.risk is not None
        if sv.risk == "LOW":
            continue
        text = (f"line {sv.line}: {e.lock_mode or 'its locks'} on "
                f"{e.lock_relation or e.relation} held {approx(e.lock_hold_ms)} at "
                f"{e.rows:,} rows of {e.relation} (estimated)")
        (high if sv.risk == "HIGH" else medium).append(text)
    unmeasured_rw = sorted({r for sv in statements if sv.line not in measured
                            for r in (sv.observed_rewrites or sv.predicted_rewrites)
                            if r in rewrites})
    if not statements:
        unmeasured_rw = list(rewrites)
    if unmeasured_rw:
        high.append("rewrites " + ", ".join(unmeasured_rw))
    if destructive:
        high.append(f"{len(destructive)} destructive statement(s)")
    # A locking finding on a statement with an estimate is judged by the estimate.
    nogo_cats = sorted({f.category for f in fviews
                        if f.severity == "error" and f.category in NO_GO_CATEGORIES
                        and not (f.category == "locking" and f.line in measured)})
    if nogo_cats:
        high.append("error findings in " + ", ".join(nogo_cats))
    measured_rels = {lv.relation for sv in measured.values()
                     for lv in (sv.observed or sv.predicted)}
    blocking = [lv for lv in existing if lk.is_dangerous(lv.mode)
                and not (measured and lv.relation in measured_rels)]
    if blocking:
        medium.append("blocks " + "/".join(sorted({w for lv in blocking for w in lv.blocks
                                                    if w != "DDL"}))
                      + " on existing " + ", ".join(sorted({lv.relation for lv in blocking})))
    if res is not None and res.idempotent is False:
        medium.append("not idempotent")
    if res is not None and any(e.get("retry") != "ok"
                               for e in res.extras.get("failure_injection", ())):
        medium.append("a retry after an interruption fails or differs")
    if any(f.severity in ("error", "warning") for f in fviews) and not high:
        medium.append("findings to review")
    basis = _risk_basis(statements, estimates_run, res)
    if high:
        return "HIGH", high + medium, basis
    if medium:
        return "MEDIUM", medium, basis
    return "LOW", [], basis


def _risk_basis(statements: tuple[StatementView, ...], estimates_run: bool,
                res: MigrationResult | None) -> str:
    if not estimates_run:
        return "no production sizes given: risk from lock mode only"
    ests = [sv.estimate for sv in statements if sv.estimate is not None]
    if not ests:
        why = ("the migration did not run at every size" if res is not None
               and res.status != "applied" else "no statement was measured")
        return f"not estimated ({why}): risk from lock mode only"
    unknown = sorted({e.relation or "?" for e in ests if e.rows is None})
    known = sorted({(e.relation or "?", e.rows or 0, e.rows_source) for e in ests
                    if e.rows is not None and e.existing})
    parts = [f"{rel} {rows:,} rows ({src})" for rel, rows, src in known]
    text = ("estimated lock-hold time at production size"
            + (": " + "; ".join(parts) if parts else " (new tables only: empty in production)"))
    if unknown:
        text += ("; no production row count for " + ", ".join(unknown)
                 + ": risk from lock mode only there (pass --rows or --stats-file)")
    return text


def approx(ms: float | None) -> str:
    """An estimate to two significant figures, in a unit a reader takes in at a glance."""
    if ms is None:
        return "unknown"
    if ms < 1000:
        value, unit = ms, "ms"
    elif ms < 60_000:
        value, unit = ms / 1000, "s"
    elif ms < 3_600_000:
        value, unit = ms / 60_000, "min"
    else:
        value, unit = ms / 3_600_000, "h"
    if value == 0:
        return "≈ 0 ms"
    digits = max(0, 1 - math.floor(math.log10(abs(value))))
    text = f"{round(value, digits):.{digits}f}"
    return f"≈ {text} {unit}"


def decide(views: Sequence[MigrationView], checks: Sequence[VerifyQuery],
           backout_check: BackoutCheck | None,
           differences: Sequence[VersionDifference] = (),
           versions: Sequence[VersionView] = ()) -> Decision:
    nogo: list[str] = []
    cond: list[str] = []
    majors = " and ".join(str(v.pg_version) for v in versions)
    primary = versions[0].pg_version if versions else None
    for d in differences:
        where = d.path if d.line is None else f"{d.path}:{d.line}"
        if d.kind == "status":
            # A migration that fails on one of the versions the set must run on (a failure
            # of the report's own replay is a reason already).
            nogo += [f"{where} failed on PostgreSQL {v}: {text.removeprefix('failed ')}"
                     for v, text in d.by_version.items()
                     if v != primary and text.startswith("failed")]
        else:
            cond.append(f"{where}: PostgreSQL {majors} differ: {d.message}")
    for v in views:
        if v.status == "failed":
            gap = f" (sandbox gap: {v.sandbox_gap})" if v.sandbox_gap else ""
            why = f" — rows revealed it: {v.explanation}" if v.explanation else ""
            nogo.append(f"{v.path} failed in the dry run at line {v.error_line}: "
                        f"{v.error}{gap}{why}")
        brief = {s.line: s.estimate for s in v.statements if s.risk == "LOW" and s.estimate}
        for f in v.findings:
            if f.severity == "error" and f.category == "locking" and f.line in brief:
                # The measurement at production size outranks the rule's guess about size.
                low = brief[f.line]
                assert low is not None and low.rows is not None
                cond.append(f"{v.path}:{f.line} {f.code} {f.rule} (locking error; estimated "
                            f"LOW risk at production size: locks held "
                            f"{approx(low.lock_hold_ms)} at {low.rows:,} rows of "
                            f"{low.relation}, {low.rows_source})")
            elif f.severity == "error" and f.category in NO_GO_CATEGORIES:
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
        for inj in v.injection:
            if inj.retry == "failed":
                cond.append(f"{v.path}: interrupted {inj.where}, a retry fails ({inj.error}): a "
                            f"deploy that dies there needs a manual fix — make each statement "
                            f"safe to repeat (IF NOT EXISTS) or run the file in one transaction")
            elif inj.retry != "ok":
                cond.append(f"{v.path}: interrupted {inj.where}, a retry leaves a different "
                            f"schema ({inj.error}): check for it after a failed deploy")
        for s in v.statements:
            e = s.estimate
            if e is None or e.lock_hold_ms is None or e.lock_mode is None or e.rows is None:
                continue
            if e.lock_hold_ms <= LOCK_BUDGET_MS:
                continue
            what = lk.blocks(_mode_of(e.lock_mode))
            text = (f"{v.path}:{s.line}: {e.lock_mode} on existing table {e.lock_relation} "
                    f"estimated to be held {approx(e.lock_hold_ms)} at {e.rows:,} rows of "
                    f"{e.relation} ({e.rows_source}), over the {LOCK_BUDGET_MS / 1000:g} s "
                    f"lock budget")
            if "reads" in what:
                nogo.append(text + ": every query on the table would queue that long — use the "
                            "online recipe, or schedule a maintenance window and re-run")
            elif "writes" in what:
                cond.append(text + ": writes would queue that long — run it in a quiet window")
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


def _wal_total(res: MigrationResult | None) -> int | None:
    """The WAL a migration's statements wrote, summed over those where it was read."""
    known = [st.wal_bytes for st in res.statements if st.wal_bytes is not None] if res else []
    return sum(known) if known else None
