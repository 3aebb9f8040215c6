"""timeout: locks that queue behind running queries with no lock_timeout to give up, and slow
statements with no statement_timeout to cap them."""

from __future__ import annotations

from collections.abc import Iterator

from .. import locks as lk
from .. import nodes as n
from ..model import Fix
from ..registry import STATEMENT, Violation, rule
from .context import RuleContext, parse_duration_ms
from .locking import is_new_q, statement_slow_work


def _queues(mode: str) -> str:
    """What new traffic waits behind a lock request in ``mode`` (Table 13.2)."""
    b = lk.blocks(mode)
    if "reads" in b:
        return "every new read and write"
    if "writes" in b:
        return "every new write (INSERT, UPDATE, DELETE; reads continue)"
    return "other DDL"


@rule("TO001", "lock-without-timeout", "timeout", wants=(STATEMENT,),
      summary="A statement takes ACCESS EXCLUSIVE or SHARE ROW EXCLUSIVE on an existing table with "
              "no lock_timeout in force.", fixable=True)
def lock_without_timeout(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    # A lock_timeout longer than config.lock_timeout_max_ms counts as none (ctx.timeout_set).
    if ctx.timeout_set("lock_timeout"):
        return
    strong = [(rel, mode) for rel, mode in ctx.prediction.locks.items()
              if lk.rank(mode) >= lk.rank(lk.SHARE_ROW_EXCLUSIVE) and not is_new_q(ctx, rel)]
    # (a relation created in this migration: nobody else can hold a lock on it)
    if not strong:
        return
    # Name the table rather than one of its indexes when both are locked (DROP INDEX).
    rel, mode = max(strong, key=lambda rm: (lk.rank(rm[1]), rm[0] not in ctx.state.indexes))
    yield Violation(
        f"waits for {lk.SQL_NAMES[mode]} on {rel} with no lock_timeout: while it waits behind a "
        f"long-running query, {_queues(mode)} on {rel} queues behind it",
        "Set a short lock_timeout before the statement (and retry on failure), e.g. "
        "SET lock_timeout = '2s';",
        fix=ctx.insert_before_statement("SET lock_timeout = '2s';\n", "set lock_timeout first"),
    )


@rule("TO002", "slow-statement-without-statement-timeout", "timeout", wants=(STATEMENT,),
      severity="warning",
      summary="A statement that scans, builds, rewrites or backfills an existing table while "
              "blocking traffic runs with no statement_timeout to cap the outage.", fixable=True)
def slow_without_statement_timeout(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if ctx.timeout_set("statement_timeout"):
        return
    slow = statement_slow_work(ctx)
    if slow is None:
        return
    dangerous = [m for r, m in ctx.prediction.locks.items() if lk.is_dangerous(m)]
    # A mass UPDATE/DELETE takes only ROW EXCLUSIVE, but its row locks block every concurrent
    # write to those rows until it ends.
    dml = any(isinstance(x, (n.Update, n.Delete)) for x in ctx.actions)
    if not dangerous and not dml:
        return  # CONCURRENTLY builds and validations let traffic through: no outage to cap
    held = (f"holding {lk.SQL_NAMES[lk.strongest(dangerous) or lk.ROW_EXCLUSIVE]}" if dangerous
            else "locking every row it touches")
    yield Violation(
        f"this statement {slow} {held} with no statement_timeout: nothing stops it if the table "
        "is bigger than expected",
        "Set statement_timeout to the longest blocking time you accept (e.g. SET "
        "statement_timeout = '60s';), so the migration fails and rolls back instead of stalling "
        "traffic.",
        fix=ctx.insert_before_statement("SET statement_timeout = '60s';\n",
                                        "cap the statement's run time"),
    )


def _timeout_sets(a: n.Action) -> list[tuple[str, str | None, bool]]:
    """(name, value, local) of every lock/statement timeout the statement sets."""
    if isinstance(a, n.SetVar):
        return [(a.name, a.value, a.local)]
    if isinstance(a, n.Select):
        return [(name, value, local) for name, value, local in a.set_configs]
    return []


@rule("TO003", "lock-timeout-too-long", "timeout", wants=("SetVar", "Select"), severity="warning",
      summary="A lock_timeout of 0 or longer than lock_timeout_max_ms is treated as no timeout.")
def lock_timeout_too_long(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    limit = ctx.config.lock_timeout_max_ms
    for name, value, _local in _timeout_sets(a):
        if name != "lock_timeout" or value is None:
            continue
        ms = parse_duration_ms(value)
        if ms is None or 0 < ms <= limit:
            continue
        what = "disables the timeout" if ms == 0 else (
            f"lets a blocked statement queue traffic for up to {value}")
        yield Violation(
            f"lock_timeout = {value} {what}: sqlsafe treats it as no lock_timeout (the limit is "
            f"{limit} ms, setting lock_timeout_max_ms)",
            "Use a short lock_timeout (1-5 s) and retry the migration when it expires.",
        )


_SET_RE = r"^\s*SET\b(?!\s+(LOCAL|SESSION)\b)"


@rule("TO004", "session-timeout-in-transaction", "timeout", wants=("SetVar",), severity="warning",
      summary="SET lock_timeout / statement_timeout without LOCAL inside a transaction outlives "
              "it and applies to whatever the connection runs next.", fixable=True)
def session_timeout_in_transaction(a: n.SetVar, ctx: RuleContext) -> Iterator[Violation]:
    if a.local or not ctx.in_tx or a.name not in ("lock_timeout", "statement_timeout"):
        return
    fix = ctx.insert_after(_SET_RE, " LOCAL", "scope the setting to the transaction")
    if fix is not None and ctx.state.tx.explicit:
        # After the explicit COMMIT, statements that relied on the session value lose it.
        fix = Fix(fix.description, fix.start, fix.end, fix.replacement, safe=False)
    yield Violation(
        f"SET {a.name} inside a transaction stays in force for the session after COMMIT: the "
        "connection (often a pooled one) keeps the migration's timeout for later work",
        f"Use SET LOCAL {a.name}, which ends with the transaction.",
        fix=fix,
    )


@rule("TO005", "concurrent-build-under-statement-timeout", "timeout",
      wants=("CreateIndex", "Reindex"), severity="warning",
      summary="CREATE INDEX / REINDEX CONCURRENTLY with a statement_timeout in force: a timeout "
              "leaves an INVALID index behind.")
def concurrent_build_under_timeout(a: n.Action, ctx: RuleContext) -> Iterator[Violation]:
    if not getattr(a, "concurrently", False) or not ctx.state.timeout_set("statement_timeout"):
        return
    rel = getattr(a, "rel", None)
    if isinstance(a, n.CreateIndex) and not ctx.existing(a.rel):
        return
    value = ctx.state.setting("statement_timeout")
    what = "CREATE INDEX CONCURRENTLY" if isinstance(a, n.CreateIndex) else "REINDEX CONCURRENTLY"
    target = f" on {ctx.q(rel)}" if isinstance(a, n.CreateIndex) and rel is not None else ""
    yield Violation(
        f"{what}{target} runs under statement_timeout = {value}: if the build takes longer it is "
        "cancelled and leaves an INVALID index that still slows every write and must be dropped",
        "Disable the timeout for concurrent builds (SET statement_timeout = 0 before it); they "
        "do not block traffic, so a long run is harmless.",
    )

