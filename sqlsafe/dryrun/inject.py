"""Failure injection: does a migration survive being interrupted after statement k and retried?

A deploy can die anywhere: the pod is killed, the connection drops, a statement times out.
What happens next depends on the file's transaction semantics:

- the tool wraps the file in one transaction (``Migration.in_transaction``): an interruption
  rolls everything back, and the retry starts from a clean slate. We check that once — abort
  just before COMMIT, retry — and say the transaction protects it;
- otherwise every statement commits on its own (or inside the file's own BEGIN ... COMMIT): an
  interruption after statement k leaves statements 1..k applied. For each k we apply 1..k on a
  clone of the database as it was before the migration, then retry the whole file from the top
  (migration tools do: the file is not recorded as applied), and compare the schema with a
  clean single run. A retry that fails (CREATE TABLE without IF NOT EXISTS) or leaves the
  schema different is reported;
- a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY) can also die in
  the middle, and that leaves an INVALID index behind (``pg_index.indisvalid``) that
  ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` then silently keeps. We interrupt it for real:
  a REPEATABLE READ transaction in a third session holds a snapshot the build must wait for
  before it can mark the index valid; we cancel the build while it waits.

Each clone is made with ``CREATE DATABASE ... TEMPLATE`` from a base database that advances
one migration at a time. Results: ``MigrationResult.extras["failure_injection"]``, a list of
``{after_statement, line, retry: "ok" | "failed" | "schema differs", error}``.

psycopg is imported only by the dry run, never on the lint path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model import Migration, Section
from ..parse import ParsedStatement, parse_section

if TYPE_CHECKING:
    import psycopg

    from .sandbox import Sandbox

__all__ = ["FileRun", "inject_failures", "run_statements", "statements_of"]

# How long to wait for a CONCURRENTLY build to reach its wait for older snapshots.
_INTERRUPT_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------
# Running a file the way a migration tool does (shared with estimate.py)


@dataclass
class FileRun:
    executed: int  # statements that completed
    error: str | None = None
    error_line: int | None = None
    sqlstate: str | None = None
    durations_ms: tuple[float, ...] = ()


def statements_of(section: Section) -> tuple[ParsedStatement, ...]:
    return parse_section(section).statements


def _is_txn_control(stmt: ParsedStatement) -> bool:
    return stmt.node is not None and type(stmt.node).__name__ == "TransactionStmt"


def wraps(migration: Migration, statements: Sequence[ParsedStatement]) -> bool:
    """Whether the tool runs the file in one transaction (as the replay decides it)."""
    return migration.in_transaction and not any(_is_txn_control(s) for s in statements)


def run_statements(conn: psycopg.Connection, statements: Sequence[ParsedStatement], *,
                   wrap: bool, stop_after: int | None = None,
                   on_statement: Callable[[int, float], None] | None = None) -> FileRun:
    """Run statements on an autocommit connection; ``wrap`` puts BEGIN ... COMMIT around them.

    ``stop_after=k`` stops after k statements as if the connection died there: an open
    transaction is rolled back (what the server does when the client goes away)."""
    import psycopg

    durations: list[float] = []
    if wrap:
        conn.execute("BEGIN")
    for i, stmt in enumerate(statements):
        if stop_after is not None and i >= stop_after:
            break
        t0 = time.perf_counter()
        try:
            conn.execute(stmt.sql)
        except psycopg.Error as exc:
            if conn.info.transaction_status != 0:
                conn.execute("ROLLBACK")
            diag = getattr(exc, "diag", None)
            message = (getattr(diag, "message_primary", None) or str(exc).strip() or
                       type(exc).__name__).splitlines()[0]
            return FileRun(i, message, stmt.span.line, getattr(exc, "sqlstate", None),
                           tuple(durations))
        ms = (time.perf_counter() - t0) * 1000
        durations.append(ms)
        if on_statement is not None:
            on_statement(i, ms)
    if conn.info.transaction_status != 0:
        conn.execute("ROLLBACK" if stop_after is not None else "COMMIT")
    return FileRun(len(durations), durations_ms=tuple(durations))


# --------------------------------------------------------------------------------------------
# Interrupting a CONCURRENTLY build in the middle


def _interrupt_concurrently(sandbox: Sandbox, dbname: str, stmt: ParsedStatement) -> str | None:
    """Run ``stmt`` (CREATE INDEX / REINDEX CONCURRENTLY) and cancel it while it waits for
    older snapshots, leaving what a mid-build failure leaves. Returns why that was not
    possible, or None."""
    import psycopg

    holder = sandbox.connect(dbname, autocommit=False)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    worker = sandbox.connect(dbname)
    outcome: list[BaseException | None] = []
    try:
        holder.execute("SELECT 1")  # takes the snapshot the build must wait for
        pid = worker.info.backend_pid

        def build() -> None:
            try:
                worker.execute(stmt.sql)
                outcome.append(None)
            except psycopg.Error as exc:
                outcome.append(exc)

        thread = threading.Thread(target=build, name="sqlsafe-inject-build", daemon=True)
        thread.start()
        try:
            with sandbox.connect(dbname) as admin:
                deadline = time.monotonic() + _INTERRUPT_TIMEOUT
                while thread.is_alive() and time.monotonic() < deadline:
                    row = admin.execute(
                        "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    if row and row[0] == "virtualxid":
                        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
                        break
                    time.sleep(0.002)
        finally:
            holder.rollback()
            thread.join()
    finally:
        holder.close()
        worker.close()
    if outcome and outcome[0] is None:
        return "the build finished before it could be interrupted"
    return None


def _is_concurrently(stmt: ParsedStatement) -> bool:
    node = stmt.node
    if node is None:
        return False
    name = type(node).__name__
    if name == "IndexStmt":
        return bool(node.concurrent)
    if name == "ReindexStmt":
        return any(getattr(p, "defname", None) == "concurrently" for p in node.params or ())
    return False


def _is_noop_for_retry(stmt: ParsedStatement) -> bool:
    """Statements after which the database is as it was before (SET, comments-only ...):
    interrupting after them tells nothing that interrupting before them does not."""
    name = type(stmt.node).__name__ if stmt.node is not None else ""
    return name in ("VariableSetStmt", "VariableShowStmt", "TransactionStmt")


# --------------------------------------------------------------------------------------------
# The injection pass


def _invalid_indexes(conn: psycopg.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = "
        "i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid "
        "ORDER BY 1")]


class _Clones:
    def __init__(self, sandbox: Sandbox, prefix: str) -> None:
        self.sandbox = sandbox
        self.prefix = prefix
        self.count = 0

    def make(self, template: str) -> str:
        self.count += 1
        name = f"{self.prefix}{self.count}"
        self.sandbox.create_database(name, template=template)
        return name

    def drop(self, name: str) -> None:
        self.sandbox.drop_database(name)


def inject_failures(
    sandbox: Sandbox,
    migrations: Sequence[Migration],
    *,
    template: str | None = None,
    sample_rows: int = 0,
    from_index: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> dict[int, list[dict[str, Any]]]:
    """Interrupt each migration (index >= ``from_index``) after each statement and retry it.

    ``template`` is the database holding the state before the first migration (default: the
    sandbox's scratch database; it must have no open connections). Returns, per migration
    index, the list for ``extras["failure_injection"]``; a migration whose clean run fails
    gets no entry (the replay reports that failure)."""
    from .replay import schema_differences, take_snapshot
    from .sampledata import fill

    clones = _Clones(sandbox, "inject")
    base = clones.make(template or sandbox.dbname)
    out: dict[int, list[dict[str, Any]]] = {}
    try:
        for index, migration in enumerate(migrations):
            statements = statements_of(migration.section)
            wrap = wraps(migration, statements)
            if sample_rows:
                with sandbox.connect(base) as conn:
                    fill(conn, sample_rows)
            if index >= from_index and statements:
                if on_progress:
                    on_progress(f"failure injection: {migration.path}")
                entries = _inject_one(sandbox, clones, base, statements, wrap,
                                      take_snapshot, schema_differences)
                if entries is not None:
                    out[index] = entries
            with sandbox.connect(base) as conn:
                if run_statements(conn, statements, wrap=wrap).error is not None:
                    break  # the replay reports it; later migrations would not run either
    finally:
        clones.drop(base)
    return out


def _inject_one(sandbox: Sandbox, clones: _Clones, base: str,
                statements: Sequence[ParsedStatement], wrap: bool,
                take_snapshot: Any, schema_differences: Any) -> list[dict[str, Any]] | None:
    # The clean single run: what every retry must end up equal to.
    clean = clones.make(base)
    try:
        with sandbox.connect(clean) as conn:
            if run_statements(conn, statements, wrap=wrap).error is not None:
                return None
            expected = take_snapshot(conn)
    finally:
        clones.drop(clean)

    def attempt(k: int, *, during: bool = False) -> dict[str, Any]:
        name = clones.make(base)
        try:
            note = None
            with sandbox.connect(name) as conn:
                run = run_statements(conn, statements, wrap=wrap, stop_after=k)
            if run.error is not None:  # cannot happen after a clean run, but say so if it does
                return _entry(k, statements, "failed", f"line {run.error_line}: {run.error}")
            if during:
                note = _interrupt_concurrently(sandbox, name, statements[k])
            with sandbox.connect(name) as conn:
                retry = run_statements(conn, statements, wrap=wrap)
                if retry.error is not None:
                    return _entry(k, statements, "failed",
                                  f"line {retry.error_line}: {retry.error}", during, note)
                invalid = _invalid_indexes(conn)
                diffs = schema_differences(expected, take_snapshot(conn))
            if invalid:
                diffs = [f"index {i} is INVALID (left by the interrupted build)"
                         for i in invalid] + diffs
            if diffs:
                return _entry(k, statements, "schema differs", "; ".join(diffs[:5]), during, note)
            return _entry(k, statements, "ok", None, during, note)
        finally:
            clones.drop(name)

    n = len(statements)
    if wrap:
        # One transaction: interrupted anywhere, nothing is left; check the retry once.
        entry = attempt(n)
        entry["note"] = "the file runs in one transaction: an interruption rolls it back"
        return [entry]
    entries: list[dict[str, Any]] = []
    for k in range(n):
        stmt = statements[k]
        if _is_concurrently(stmt) and not _in_explicit_block(statements, k):
            entries.append(attempt(k, during=True))
        if k + 1 < n and not _is_noop_for_retry(stmt):
            entries.append(attempt(k + 1))
    return entries


def _in_explicit_block(statements: Sequence[ParsedStatement], k: int) -> bool:
    depth = 0
    for stmt in statements[:k]:
        if _is_txn_control(stmt):
            assert stmt.node is not None  # _is_txn_control only accepts a parsed statement
            kind = getattr(stmt.node.kind, "name", "")
            if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                depth = 1
            elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
                depth = 0
    return depth > 0


def _entry(k: int, statements: Sequence[ParsedStatement], retry: str, error: str | None,
           during: bool = False, note: str | None = None) -> dict[str, Any]:
    last = statements[k - 1] if k else None
    d: dict[str, Any] = {"after_statement": k, "line": last.span.line if last else 0,
                         "retry": retry, "error": error}
    if during:
        d["during_statement"] = k + 1
        d["line"] = statements[k].span.line
    if note:
        d["note"] = note
    return d
