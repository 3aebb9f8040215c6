"""Measured blocking: what a second session could not do while a statement held its locks.

The lock-conflict table (``locks.blocks``) says what a lock mode *should* block; this module
asks the server. A probe session with a tiny ``lock_timeout`` tries, on every table the
statement locked,

- a read: ``SELECT 1 FROM t LIMIT 1`` (ACCESS SHARE on the table, and on its indexes while
  planning — so a DROP INDEX holding ACCESS EXCLUSIVE on an index blocks it, as in production);
- a write: ``UPDATE t SET c = c WHERE false`` — ROW EXCLUSIVE on the table and its indexes,
  exactly what an ordinary UPDATE takes, without changing a row (``LOCK TABLE ... IN ROW
  EXCLUSIVE MODE`` when the table has no column an UPDATE may name).

When to probe: locks are held until the transaction ends, so for a statement inside a
transaction the probe runs after the statement returned and before COMMIT
(:meth:`Prober.probe`). A statement that cannot run in a transaction block (CREATE INDEX
CONCURRENTLY) holds its locks only while it runs: :func:`probe_during` probes from a thread
while it does, which needs rows enough for it to take measurable time (``--sample-rows``).

psycopg is imported only by the dry run, never on the lint path.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .. import locks as lk
from .result import Blocking, ObservedLock

if TYPE_CHECKING:
    import psycopg

__all__ = ["PROBE_TIMEOUT_MS", "Prober", "QueueWait", "compare", "lock_queue", "probe_during",
           "statement_tables", "tables_of"]

# Long enough for an unblocked probe on a loaded CI machine, short enough that a migration
# with many statements is not slowed down noticeably (two probes per table per statement).
PROBE_TIMEOUT_MS = 50
# SQLSTATE 55P03 lock_not_available: lock_timeout expired.
_LOCK_NOT_AVAILABLE = "55P03"
_POLL_SECONDS = 0.002
# Relation kinds a read probe makes sense on (tables, partitioned tables, materialized views)
# and a write probe (tables and partitioned tables only).
_READ_KINDS = frozenset("rpm")
_WRITE_KINDS = frozenset("rp")

T = TypeVar("T")

_COLUMN_SQL = """
SELECT a.attname FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attidentity <> 'a' AND a.attgenerated = ''
ORDER BY a.attnum LIMIT 1
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(relation: str) -> tuple[str, str]:
    schema, _, name = relation.partition(".")
    return (schema, name) if name else ("public", schema)


def tables_of(locks: Iterable[ObservedLock]) -> list[tuple[str, str]]:
    """(relation, relkind) of the tables among observed locks, each once, in order."""
    seen: dict[str, str] = {}
    for lock in locks:
        if lock.relkind in _READ_KINDS:
            seen.setdefault(lock.relation, lock.relkind)
    return list(seen.items())


def statement_tables(node: Any) -> list[tuple[str, str]]:
    """The tables a parsed statement names (from the normalized model), schema-qualified
    (``public`` when unqualified): what to probe while a non-transactional statement runs,
    before any lock of it can be observed."""
    from ..normalize import normalize

    if node is None:
        return []
    out: dict[str, str] = {}
    try:
        actions = normalize(node)
    except Exception:  # normalizing is best effort here: no tables, no probes
        return []
    for action in actions:
        rels = [getattr(action, "rel", None), *getattr(action, "rels", ())]
        for rel in rels:
            if rel is not None and hasattr(rel, "qualified"):
                out.setdefault(rel.qualified, "r")
    return list(out.items())


class Prober:
    """A second session that probes tables with a tiny lock_timeout.

    Use as a context manager, or call :meth:`close`; it owns one connection."""

    def __init__(self, conn: psycopg.Connection, *, timeout_ms: int = PROBE_TIMEOUT_MS) -> None:
        self.conn = conn
        self.timeout_ms = timeout_ms
        self._columns: dict[str, str | None] = {}
        # Autocommit: each probe is its own transaction and leaves nothing behind; an
        # UPDATE ... WHERE false commits no change.
        conn.autocommit = True
        conn.execute(f"SET lock_timeout = {int(timeout_ms)}")
        # A probe must never wait on anything but the lock it is measuring.
        conn.execute("SET statement_timeout = 5000")

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def probe(self, tables: Iterable[tuple[str, str] | str]) -> tuple[Blocking, ...]:
        """Try a read and a write on each table now; one Blocking per (table, operation)."""
        out: list[Blocking] = []
        for item in tables:
            relation, relkind = (item, "r") if isinstance(item, str) else item
            schema, name = _split(relation)
            target = f"{_ident(schema)}.{_ident(name)}"
            if relkind in _READ_KINDS:
                out.append(self._try(relation, "read", f"SELECT 1 FROM {target} LIMIT 1"))
            if relkind in _WRITE_KINDS:
                column = self._column(schema, name)
                if column is None:
                    write = f"BEGIN; LOCK TABLE {target} IN ROW EXCLUSIVE MODE; COMMIT"
                else:
                    c = _ident(column)
                    write = f"UPDATE {target} SET {c} = {c} WHERE false"
                out.append(self._try(relation, "write", write))
        return tuple(out)

    def _column(self, schema: str, name: str) -> str | None:
        key = f"{schema}.{name}"
        if key not in self._columns:
            row = self.conn.execute(_COLUMN_SQL, (schema, name)).fetchone()
            self._columns[key] = str(row[0]) if row else None
        return self._columns[key]

    def _try(self, relation: str, operation: str, sql: str) -> Blocking:
        import psycopg

        t0 = time.perf_counter()
        try:
            self.conn.execute(sql)
        except psycopg.Error as exc:
            waited = (time.perf_counter() - t0) * 1000
            if self.conn.info.transaction_status != 0:  # a failed LOCK TABLE block
                self.conn.execute("ROLLBACK")
            if getattr(exc, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                return Blocking(relation, operation, True, waited)
            # Any other error (the table was dropped meanwhile, ...) says nothing about locks.
            return Blocking(relation, operation, False, waited)
        return Blocking(relation, operation, False, (time.perf_counter() - t0) * 1000)


def probe_during(prober: Prober, run: Callable[[], T], pid: int,
                 tables: Iterable[tuple[str, str] | str], *,
                 start_timeout: float = 30.0) -> tuple[T, tuple[Blocking, ...]]:
    """Call ``run()`` (which makes backend ``pid`` execute a statement) and, from a thread,
    probe ``tables`` once that backend holds a lock on one of them while still running.

    Returns ``run()``'s result and the probes; no probes when the statement finished before
    they could be made (too few rows for it to take measurable time)."""
    wanted = [t if isinstance(t, str) else t[0] for t in tables]
    items = list(tables)
    found: list[tuple[Blocking, ...]] = []

    def watch(done: threading.Event) -> None:
        deadline = time.monotonic() + start_timeout
        while not done.is_set() and time.monotonic() < deadline:
            if _holds_lock(prober.conn, pid, wanted):
                probes = prober.probe(items)
                # Only probes made while the statement still ran say anything.
                if not done.is_set() and _is_active(prober.conn, pid):
                    found.append(probes)
                return
            done.wait(_POLL_SECONDS)

    with _watching(watch, "sqlsafe-blocking-probe"):
        result = run()
    return result, (found[0] if found else ())


@contextlib.contextmanager
def _watching(watch: Callable[[threading.Event], None], name: str) -> Iterator[None]:
    """Run ``watch(done)`` in a thread while the caller's block runs; ``done`` is set when the
    block ends, and the thread is always joined. An exception in the thread is raised after
    the join (never a thread left dangling)."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            watch(done)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    if failure:
        raise failure[0]


class QueueWait:
    """What ``lock_queue`` saw: whether the statement waited, when the stand-in query let go
    (``time.perf_counter``), and the read tried meanwhile."""

    def __init__(self) -> None:
        self.waited = False
        self.released: float | None = None
        self.read: Blocking | None = None


@contextlib.contextmanager
def lock_queue(holder: psycopg.Connection, prober: Prober, pid: int, relation: str, *,
               max_hold: float = 0.5) -> Iterator[QueueWait]:
    """Stand in for a running query on ``relation`` while the caller runs, inside the block,
    a statement on backend ``pid`` that needs a lock conflicting with it (ACCESS EXCLUSIVE).

    ``holder`` holds ACCESS SHARE (a plain SELECT in an open transaction). Once ``pid``
    waits for its lock on the relation, ``prober`` tries a new read: PostgreSQL queues it
    behind the waiting request, which is how one ALTER TABLE waiting for one slow query
    stops every query on the table. Then the holder lets go, at the latest after
    ``max_hold`` seconds, so the statement goes on. The holder's own lock_timeout keeps it
    from waiting on the migration's transaction; when it cannot take its lock, nothing is
    measured."""
    import psycopg

    seen = QueueWait()
    schema, name = _split(relation)
    target = f"{_ident(schema)}.{_ident(name)}"
    try:
        holder.execute("BEGIN")
        holder.execute(f"SET LOCAL lock_timeout = {PROBE_TIMEOUT_MS}")
        holder.execute(f"SELECT 1 FROM {target} LIMIT 1")
    except psycopg.Error:
        with contextlib.suppress(psycopg.Error):
            holder.execute("ROLLBACK")
        yield seen
        return

    def watch(done: threading.Event) -> None:
        try:
            deadline = time.monotonic() + max_hold
            while not done.is_set() and time.monotonic() < deadline:
                if _waits_for(prober.conn, pid, relation):
                    seen.waited = True
                    seen.read = prober._try(relation, "read", f"SELECT 1 FROM {target} LIMIT 1")
                    break
                done.wait(_POLL_SECONDS)
        finally:
            seen.released = time.perf_counter()
            with contextlib.suppress(Exception):
                holder.execute("ROLLBACK")

    with _watching(watch, "sqlsafe-lock-queue"):
        yield seen


def _waits_for(conn: psycopg.Connection, pid: int, relation: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = %s AND NOT l.granted "
        "AND l.locktype = 'relation' AND n.nspname || '.' || c.relname = %s)",
        (pid, relation),
    ).fetchone()
    return bool(row and row[0])


def _holds_lock(conn: psycopg.Connection, pid: int, relations: list[str]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = %s AND l.granted "
        "AND l.locktype = 'relation' AND n.nspname || '.' || c.relname = ANY(%s))",
        (pid, relations),
    ).fetchone()
    return bool(row and row[0])


def _is_active(conn: psycopg.Connection, pid: int) -> bool:
    row = conn.execute("SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s",
                       (pid,)).fetchone()
    return bool(row and row[0])


def predicted(mode: str) -> dict[str, bool]:
    """What the lock-conflict table predicts a lock held in ``mode`` does to a read and a
    write (``locks.blocks``)."""
    b = lk.blocks(mode)
    return {"read": "reads" in b, "write": "writes" in b}


def compare(measured: Iterable[Blocking], locks: Iterable[ObservedLock]) -> list[str]:
    """Where the measurement contradicts the lock table for the strongest mode held on each
    probed table (phrased like the replay's lock discrepancies)."""
    strongest: dict[str, str] = {}
    for lock in locks:
        if lk.rank(lock.mode) > lk.rank(strongest.get(lock.relation, "")):
            strongest[lock.relation] = lock.mode
    out: list[str] = []
    for b in measured:
        mode = strongest.get(b.relation)
        if mode is None:
            continue
        expect = predicted(mode)[b.operation]
        if expect != b.blocked:
            verb = "blocked" if b.blocked else "did not block"
            out.append(f"{lk.SQL_NAMES.get(mode, mode)} on {b.relation} {verb} a {b.operation}; "
                       f"the lock table predicts {'blocking' if expect else 'no blocking'}")
    return out


def to_json(blocking: Iterable[Blocking]) -> list[dict[str, Any]]:
    return [{"relation": b.relation, "operation": b.operation, "blocked": b.blocked,
             "waited_ms": round(b.waited_ms, 1)} for b in blocking]
