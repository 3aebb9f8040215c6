"""Runtime and size estimates at production scale, measured instead of asserted.

"Estimated runtime < 5 seconds" in a hand-written rollout document is a guess. Here each
migration is replayed at two or more sizes (every table filled with N synthetic rows, on clones
of the database as it was before the change set), each statement's time is fitted against N,
and the fit is extrapolated to the row counts production has:

- fits: ``t = a + b·n`` (scans, rewrites, backfills) and ``t = a + b·n·log2(n)`` (sorts: index
  builds, PRIMARY KEY / UNIQUE constraints, CLUSTER, REINDEX). With three or more sizes the
  model with the smaller residual wins; with two both fit exactly and the statement's kind
  decides. A negative slope (noise on tiny timings) is clamped to zero;
- production row counts, by priority: ``--rows table=N,...``; a stats file exported from
  production (CSV or JSON of :data:`STATS_QUERY`, see docs/estimates.md); ``--stats-from URL``
  (read-only: ``SET default_transaction_read_only = on`` and only that query). A table the
  change set creates is empty in production when the set is deployed;
- per statement: estimated duration and lock-hold time (for a statement inside a transaction,
  its locks are held until COMMIT: its own time plus every later statement's of that
  transaction), the touched relation's size after the statement, and the basis — sizes
  measured, the fit, the rows assumed and where that figure came from.

Results go to ``MigrationResult.extras["estimates"]``; :func:`risk_level` turns one statement's
estimate and its lock mode into ``low`` / ``medium`` / ``high`` for the report.

psycopg is imported only by the dry run, never on the lint path.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import locks as lk
from .._record import replace
from ..model import Migration

if TYPE_CHECKING:
    from .result import DryRunResult
    from .sandbox import Sandbox

__all__ = [
    "DEFAULT_SIZES", "STATS_QUERY", "Fit", "TableStats", "attach", "estimate", "fit",
    "load_stats_file", "measure", "parse_rows_option", "risk_level", "stats_from_url",
]

DEFAULT_SIZES = (5_000, 50_000)

# Run on production (read-only) and save as CSV or JSON: docs/estimates.md.
STATS_QUERY = (
    "SELECT n.nspname, c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema')"
)

# Risk thresholds on the estimated lock-hold time (ms). A lock that blocks reads stalls every
# query on the table — and queues everything behind it — so its budget is the smallest.
_HIGH_READS_MS = 2_000.0
_MEDIUM_READS_MS = 200.0
_HIGH_WRITES_MS = 10_000.0
_MEDIUM_WRITES_MS = 1_000.0
# Locks that block neither (SHARE UPDATE EXCLUSIVE: CONCURRENTLY builds, VALIDATE) still hold
# off autovacuum and other DDL for as long as they run.
_MEDIUM_OTHER_MS = 3_600_000.0


# --------------------------------------------------------------------------------------------
# Production row counts


@dataclass(frozen=True)
class TableStats:
    rows: int | None  # None: never analyzed (reltuples = -1 on PostgreSQL 14+)
    bytes: int | None = None
    source: str = "stats"


def _qualify(name: str) -> str:
    name = name.strip().strip('"')
    return name if "." in name else f"public.{name}"


def _count(text: str) -> int:
    """'1000000', '1_000_000', '1e6', '5M', '20k' -> int."""
    t = text.strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:e\d+)?)([kKmMgGbB]?)", t)
    if not m:
        raise ValueError(f"not a row count: {text!r}")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def parse_rows_option(text: str) -> dict[str, TableStats]:
    """``--rows orders=5M,public.users=120000`` -> {qualified table: TableStats}."""
    out: dict[str, TableStats] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--rows expects table=N[,table=N...], got {part!r}")
        out[_qualify(name)] = TableStats(_count(value), None, "--rows")
    return out


def _stats_row(schema: Any, name: Any, rows: Any, size: Any, source: str) -> tuple[str, TableStats]:
    n = int(float(rows)) if rows not in (None, "") else None
    return f"{schema}.{name}", TableStats(n if n is None or n >= 0 else None,
                                          int(float(size)) if size not in (None, "") else None,
                                          source)


def load_stats_file(path: str) -> dict[str, TableStats]:
    """Read :data:`STATS_QUERY` output saved as CSV (``psql --csv`` or ``\\copy ... csv``,
    with or without a header) or JSON (a list of objects or of 4-item lists, or an object
    ``{"schema.table": rows}``)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    source = f"stats file {Path(path).name}"
    out: dict[str, TableStats] = {}
    if text.lstrip().startswith(("[", "{")):
        data = json.loads(text)
        if isinstance(data, dict):
            for name, rows in data.items():
                out[_qualify(name)] = TableStats(int(rows), None, source)
            return out
        for item in data:
            if isinstance(item, dict):
                schema = item.get("nspname", item.get("schema", "public"))
                name = item.get("relname", item.get("table"))
                rows = item.get("reltuples", item.get("rows"))
                size = item.get("pg_total_relation_size", item.get("bytes", item.get("size")))
            else:
                schema, name, rows, size = (list(item) + [None] * 4)[:4]
            key, stats = _stats_row(schema, name, rows, size, source)
            out[key] = stats
        return out
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 3 or row[0].strip().lower() in ("nspname", "schema"):
            continue  # header or blank
        key, stats = _stats_row(row[0].strip(), row[1].strip(), row[2].strip(),
                                row[3].strip() if len(row) > 3 else None, source)
        out[key] = stats
    return out


def stats_from_url(url: str) -> dict[str, TableStats]:
    """Run :data:`STATS_QUERY` on a production server, read-only, and nothing else."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        # Every transaction of this session is read-only; the query reads catalogs only.
        conn.execute("SET default_transaction_read_only = on")
        rows = conn.execute(STATS_QUERY).fetchall()
    return dict(_stats_row(s, n, r, b, "--stats-from") for s, n, r, b in rows)


# --------------------------------------------------------------------------------------------
# Fitting


@dataclass(frozen=True)
class Fit:
    model: str  # "linear" | "n log n" | "constant"
    a: float  # ms
    b: float  # ms per row (linear) or per n·log2(n) unit
    residual: float = 0.0  # root mean square error of the fit, ms

    def at(self, n: float) -> float:
        return max(0.0, self.a + self.b * _basis(self.model, n))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "a_ms": round(self.a, 4), "b_ms": self.b,
                "rmse_ms": round(self.residual, 4)}


def _basis(model: str, n: float) -> float:
    return n * math.log2(n) if model == "n log n" and n > 1 else (0.0 if model == "n log n"
                                                                  else float(n))


def _least_squares(points: Sequence[tuple[float, float]], model: str) -> Fit:
    xs = [_basis(model, n) for n, _ in points]
    ys = [t for _, t in points]
    k = len(points)
    mx, my = sum(xs) / k, sum(ys) / k
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    if b < 0:  # timing noise on a statement that does not grow with rows
        b, a = 0.0, my
    else:
        a = my - b * mx
    rmse = math.sqrt(sum((a + b * x - y) ** 2 for x, y in zip(xs, ys)) / k)
    return Fit(model, a, b, rmse)


def fit(points: Sequence[tuple[float, float]], prefer: str = "linear") -> Fit:
    """Fit (rows, ms) points with both models; the smaller residual wins, ``prefer`` breaks
    ties (two points fit both exactly).

    A statement whose time barely moves while the rows grow tenfold (catalog-only DDL: ADD
    COLUMN without default, SET DEFAULT) is ``constant``: a slope fitted to two noisy
    sub-millisecond timings would be multiplied by a thousand at production size."""
    distinct = {n for n, _ in points}
    mean = sum(t for _, t in points) / len(points) if points else 0.0
    if len(distinct) < 2:
        return Fit(prefer, mean, 0.0, 0.0)
    small = [t for n, t in points if n == min(distinct)]
    large = [t for n, t in points if n == max(distinct)]
    t_small, t_large = sum(small) / len(small), sum(large) / len(large)
    if t_large - t_small < max(_NOISE_MS, _NOISE_SHARE * t_small):
        return Fit("constant", max(t for _, t in points), 0.0, 0.0)
    fits = {m: _least_squares(points, m) for m in ("linear", "n log n")}
    a, b = fits[prefer], fits["n log n" if prefer == "linear" else "linear"]
    # Within 5% (or 0.05 ms) of each other: not a real difference, keep the preferred model.
    if b.residual < a.residual * 0.95 and a.residual - b.residual > 0.05:
        return b
    return a


# Below these, the growth between the smallest and the largest size is noise.
_NOISE_MS = 0.25
_NOISE_SHARE = 0.5

_SORTING = ("CreateIndex", "Reindex", "Cluster")


def preferred_model(node: Any) -> str:
    """``n log n`` for statements that sort the table (index builds), else ``linear``."""
    from .. import nodes as n
    from ..normalize import normalize

    if node is None:
        return "linear"
    try:
        actions = normalize(node)
    except Exception:  # best effort: an unusual statement is fitted linearly
        return "linear"
    for action in actions:
        name = type(action).__name__
        if name in _SORTING:
            return "n log n"
        if isinstance(action, n.AddConstraint) and action.constraint.kind in ("primary", "unique"):
            return "n log n"
    return "linear"


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class StatementTimings:
    line: int
    sql: str
    tables: list[str]
    model: str
    in_transaction: bool  # its locks are held until a later COMMIT
    block: int  # statements with the same block number commit together
    ms: dict[int, float] = field(default_factory=dict)  # rows per table -> ms
    bytes: dict[int, int] = field(default_factory=dict)  # rows -> size of the first table after


@dataclass
class Measurements:
    sizes: tuple[int, ...]
    migrations: dict[int, list[StatementTimings]]
    existing: set[str]  # tables that existed before the change set
    notes: list[str] = field(default_factory=list)


def _blocks(statements: Sequence[Any], wrap: bool) -> list[tuple[bool, int]]:
    """(runs inside a transaction, commit-block number) per statement."""
    out: list[tuple[bool, int]] = []
    block, depth = 0, 0
    for stmt in statements:
        node = stmt.node
        kind = getattr(getattr(node, "kind", None), "name", "") \
            if node is not None and type(node).__name__ == "TransactionStmt" else ""
        if wrap:
            out.append((True, 0))
            continue
        if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
            depth, block = 1, block + 1
            out.append((True, block))
        elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
            out.append((True, block))
            depth = 0
        elif depth:
            out.append((True, block))
        else:
            block += 1
            out.append((False, block))
    return out


def measure(sandbox: Sandbox, migrations: Sequence[Migration], *,
            sizes: Sequence[int] = DEFAULT_SIZES, template: str | None = None,
            from_index: int = 0, repeat: int = 2,
            on_progress: Callable[[str], None] | None = None) -> Measurements:
    """Replay the migrations at each size on a clone of ``template`` (default: the scratch
    database, which must have no open connections), every empty table filled with that many
    rows before each migration, and time each statement (the best of ``repeat`` clones)."""
    from .blocking import statement_tables
    from .inject import run_statements, statements_of, wraps
    from .sampledata import fill

    base = template or sandbox.dbname
    parsed = [statements_of(m.section) for m in migrations]
    with sandbox.connect(base) as conn:
        existing = {str(r[0]) for r in conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')")}
    out: dict[int, list[StatementTimings]] = {}
    for index, (migration, statements) in enumerate(zip(migrations, parsed)):
        if index < from_index:
            continue
        wrap = wraps(migration, statements)
        out[index] = [
            StatementTimings(s.span.line, s.sql, [t for t, _ in statement_tables(s.node)],
                             preferred_model(s.node), in_tx, block)
            for s, (in_tx, block) in zip(statements, _blocks(statements, wrap))
        ]
    result = Measurements(tuple(sizes), out, existing)
    serial = 0
    for size in sizes:
        for _ in range(max(1, repeat)):
            serial += 1
            name = f"estimate{serial}"
            sandbox.create_database(name, template=base)
            try:
                if on_progress:
                    on_progress(f"estimates: replaying at {size} rows per table")
                _replay_at(sandbox, name, migrations, parsed, size, result, fill,
                           run_statements, wraps, from_index)
            finally:
                sandbox.drop_database(name)
    return result


def _replay_at(sandbox: Sandbox, dbname: str, migrations: Sequence[Migration],
               parsed: Sequence[Any], size: int, result: Measurements, fill: Any,
               run_statements: Any, wraps: Any, from_index: int) -> None:
    with sandbox.connect(dbname) as conn:
        for index, (migration, statements) in enumerate(zip(migrations, parsed)):
            filled = fill(conn, size, top_up=True)
            for note in filled.notes:
                if note not in result.notes:
                    result.notes.append(note)
            # ANALYZE as production's autovacuum would have: plans (and so timings) of
            # backfills depend on statistics.
            conn.execute("ANALYZE")
            timings = result.migrations.get(index)

            def record(i: int, ms: float, timings: list[StatementTimings] | None = timings
                       ) -> None:
                if timings is None:
                    return
                t = timings[i]
                t.ms[size] = min(ms, t.ms.get(size, math.inf))
                if t.tables and conn.info.transaction_status != 3:  # not in a failed block
                    row = conn.execute("SELECT pg_total_relation_size(to_regclass(%s))",
                                       (t.tables[0],)).fetchone()
                    if row and row[0] is not None:
                        t.bytes[size] = int(row[0])

            run = run_statements(conn, statements, wrap=wraps(migration, statements),
                                 on_statement=record)
            if run.error is not None:
                if index >= from_index:
                    result.notes.append(f"{migration.path}:{run.error_line}: failed at {size} "
                                        f"rows per table: {run.error}; not estimated further")
                return


# --------------------------------------------------------------------------------------------
# Estimating


def estimate(measured: Measurements,
             stats: dict[str, TableStats]) -> dict[int, list[dict[str, Any]]]:
    """Per migration index, the JSON-able ``extras["estimates"]`` list (one item per
    statement that was measured at every size)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for index, timings in measured.migrations.items():
        items: list[dict[str, Any]] = []
        for t in timings:
            if len(t.ms) < len(measured.sizes):
                continue  # not reached at some size (an earlier failure)
            f = fit(sorted(t.ms.items()), t.model)
            relation, rows, source = _production_rows(t.tables, stats, measured.existing)
            item: dict[str, Any] = {
                "line": t.line,
                "relation": relation,
                "rows": rows,
                "rows_source": source,
                "estimated_ms": round(f.at(rows), 1) if rows is not None else None,
                "fit": f.to_json(),
                "measured": [{"rows": n, "ms": round(ms, 3)} for n, ms in sorted(t.ms.items())],
                "_block": (t.in_transaction, t.block),
            }
            if rows is not None and len(t.bytes) >= 2:
                size_fit = _least_squares([(n, float(b)) for n, b in sorted(t.bytes.items())],
                                          "linear")
                item["relation_bytes"] = int(size_fit.at(rows))
            items.append(item)
        _lock_hold(items)
        out[index] = items
    return out


def _production_rows(tables: list[str], stats: dict[str, TableStats],
                     existing: set[str]) -> tuple[str | None, int | None, str]:
    """The touched table with the most production rows, its row count and the source."""
    candidates: list[tuple[str | None, int | None, str]] = []
    for table in tables:
        s = stats.get(table)
        if s is not None and s.rows is not None:
            candidates.append((table, s.rows, s.source))
        elif table not in existing:
            candidates.append((table, 0, "created by this change set: empty in production"))
        else:
            candidates.append((table, None,
                               "no production row count (use --rows or --stats-file)"))
    known = [c for c in candidates if c[1] is not None]
    unknown = [c for c in candidates if c[1] is None]
    if known and max(c[1] or 0 for c in known) > 0:
        return max(known, key=lambda c: c[1] or 0)
    if unknown:
        return unknown[0]
    return known[0] if known else (None, 0, "touches no table")


def _lock_hold(items: list[dict[str, Any]]) -> None:
    """lock_hold_ms: a statement's locks last until its transaction commits."""
    for i, item in enumerate(items):
        in_tx, block = item.pop("_block")
        if item["estimated_ms"] is None:
            item["lock_hold_ms"] = None
            continue
        if not in_tx:
            item["lock_hold_ms"] = item["estimated_ms"]
            continue
        later = [x for x in items[i:] if x.get("_block", (in_tx, block))[1] == block]
        if any(x["estimated_ms"] is None for x in later):
            item["lock_hold_ms"] = None
        else:
            item["lock_hold_ms"] = round(sum(x["estimated_ms"] for x in later), 1)


def risk_level(statement_estimate: dict[str, Any] | float | None, lock_mode: str | None) -> str:
    """``low`` | ``medium`` | ``high`` for one statement: how long it is estimated to hold
    ``lock_mode`` at production size, against what that mode blocks (``locks.blocks``).

    ``statement_estimate`` is an ``extras["estimates"]`` item or a lock-hold time in ms; with
    no estimate, a lock that blocks reads or writes is ``medium`` (size unknown), else ``low``.
    """
    if isinstance(statement_estimate, dict):
        hold = statement_estimate.get("lock_hold_ms", statement_estimate.get("estimated_ms"))
    else:
        hold = statement_estimate
    blocked = lk.blocks(lock_mode) if lock_mode else ()
    if hold is None:
        return "medium" if ("reads" in blocked or "writes" in blocked) else "low"
    if "reads" in blocked:
        return "high" if hold >= _HIGH_READS_MS else "medium" if hold >= _MEDIUM_READS_MS else "low"
    if "writes" in blocked:
        return "high" if hold >= _HIGH_WRITES_MS else "medium" if hold >= _MEDIUM_WRITES_MS \
            else "low"
    return "medium" if hold >= _MEDIUM_OTHER_MS else "low"


def attach(result: DryRunResult, estimates: dict[int, list[dict[str, Any]]],
           basis: dict[str, Any]) -> DryRunResult:
    """Put each migration's estimates into its ``extras["estimates"]``, with the risk level
    from the strongest lock the replay observed on the statement's line."""
    migrations = list(result.migrations)
    for index, items in estimates.items():
        if index >= len(migrations):
            continue
        m = migrations[index]
        modes = {s.line: lk.strongest([x.mode for x in s.locks]) for s in m.statements}
        enriched = [{**item, "lock_mode": modes.get(item["line"]),
                     "risk": risk_level(item, modes.get(item["line"]))} for item in items]
        migrations[index] = replace(m, extras={**m.extras, "estimates": enriched,
                                               "estimates_basis": basis})
    return replace(result, migrations=tuple(migrations))
