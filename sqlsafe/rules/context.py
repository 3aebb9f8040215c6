"""What a rule sees: the statement, its actions, and the schema state before it."""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable
from typing import TypeVar

from .. import locks as lk
from .. import nodes as n
from .._record import MutableRecord, Record, record
from ..config import Config
from ..model import Fix, Migration, Section, Span
from ..parse import ParsedStatement
from ..registry import Violation
from ..schema import SchemaState

# Statements PostgreSQL refuses to run inside a transaction block (any version unless noted).
NO_TRANSACTION_HINT = "run it in a migration of its own that the tool does not wrap in a transaction"


@record
class RuleContext(MutableRecord):
    state: SchemaState
    pg: int
    config: Config
    stmt: ParsedStatement
    migration: Migration
    migration_index: int
    actions: tuple[n.Action, ...]
    prediction: lk.Prediction
    in_tx: bool  # a transaction (explicit or the runner's) is open when the statement runs
    do_block: bool = False  # a statement a DO block runs (plpgsql.expand)
    # The migration's statements as the lint parsed them, for ``later_actions`` and
    # ``earlier_actions``; None: parse the migration again (``_section_actions``).
    siblings: Siblings | None = None

    # ------------------------------------------------------------------ schema questions
    def existing(self, rel: n.Rel) -> bool:
        """The table exists before this migration (so it may be large and in use)."""
        return self.state.is_existing(rel)

    def q(self, rel: n.Rel) -> str:
        return self.state.qualify(rel)

    def timeout_set(self, name: str = "lock_timeout") -> bool:
        if not self.state.timeout_set(name):
            return False
        if name == "lock_timeout":
            ms = parse_duration_ms(self.state.setting(name) or "")
            return ms is None or ms <= self.config.lock_timeout_max_ms
        return True

    def later_actions(self) -> list[tuple[int, n.Action]]:
        """(line, action) of every statement after this one in the same migration.

        For checks that a later statement may settle (RLS enabled, search_path set by ALTER
        FUNCTION). Object names are as written, not qualified against a later search_path.
        """
        return [(line, a) for i, line, a in self._section_actions() if i > self.stmt.index]

    def earlier_actions(self) -> list[tuple[int, n.Action]]:
        """(line, action) of every statement before this one in the same migration."""
        return [(line, a) for i, line, a in self._section_actions() if i < self.stmt.index]

    def _section_actions(self) -> tuple[tuple[int, int, n.Action], ...]:
        if self.siblings is not None:
            return self.siblings.actions()
        return _section_actions(self.migration.section)

    # ------------------------------------------------------------------ messages
    def lock_phrase(self, mode: str, rel: n.Rel | str) -> str:
        target = rel if isinstance(rel, str) else self.q(rel)
        return f"takes {lk.SQL_NAMES[mode]} on {target}, which {lk.blocks_text(mode)}"

    @property
    def sql(self) -> str:
        return self.stmt.sql

    # ------------------------------------------------------------------ fixes
    def insert_after(self, pattern: str, text: str, description: str) -> Fix | None:
        """A fix that inserts ``text`` right after the first match of ``pattern``."""
        m = re.search(pattern, self.stmt.sql, re.I | re.S)
        if m is None:
            return None
        at = self.stmt.span.start + m.end()
        return Fix(description, at, at, text)

    def insert_before_statement(self, text: str, description: str) -> Fix:
        at = self.stmt.span.start
        return Fix(description, at, at, text)

    def append_to_statement(self, text: str, description: str) -> Fix:
        at = self.stmt.span.start + len(self.stmt.sql.rstrip())
        return Fix(description, at, at, text)


class Siblings:
    """The statements of the migration being linted, and their actions as
    ``_section_actions`` gives them (normalized without the schema state), from what the lint
    already parsed and normalized instead of parsing the migration again. ``given``: the
    statements' ``normalize_each``; where it says None, the statement is normalized here."""

    __slots__ = ("_actions", "_given", "_statements")

    def __init__(self, statements: tuple[ParsedStatement, ...],
                 given: tuple[tuple[n.Action, ...] | None, ...] | None = None) -> None:
        self._statements = statements
        self._given = given
        self._actions: tuple[tuple[int, int, n.Action], ...] | None = None

    def actions(self) -> tuple[tuple[int, int, n.Action], ...]:
        if self._actions is None:
            out: list[tuple[int, int, n.Action]] = []
            for position, stmt in enumerate(self._statements):
                if stmt.error is not None:
                    continue
                done = self._given[position] if self._given is not None else None
                if done is None:
                    from ..normalize import normalize

                    done = normalize(stmt.node)
                for a in done:
                    out.append((stmt.index, stmt.span.line, a))
            self._actions = tuple(out)
        return self._actions


@functools.lru_cache(maxsize=64)
def _section_actions(section: Section) -> tuple[tuple[int, int, n.Action], ...]:
    """``Siblings.actions`` of a migration the caller did not parse (the set's end)."""
    from ..parse import parse_section

    return Siblings(parse_section(section).statements).actions()


_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d|us)?\s*$", re.I)
_UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


@functools.lru_cache(maxsize=256)  # asked for every statement while a timeout is set
def parse_duration_ms(value: str) -> float | None:
    m = _DUR_RE.match(value.strip().strip("'\""))
    if not m:
        return None
    return float(m.group(1)) * _UNIT_MS[(m.group(2) or "ms").lower()]


def added_constraints(a: n.Action) -> tuple[n.ConstraintDef, ...]:
    """The constraints an action adds to its table: a CREATE TABLE's (table-level and each
    column's), an ADD COLUMN's column's, an ADD CONSTRAINT's. A column's PRIMARY KEY and
    UNIQUE are flags of its ColumnDef, not among them."""
    match a:
        case n.CreateTable():
            return (*a.constraints, *(c for col in a.columns for c in col.constraints))
        case n.AddColumn():
            return a.column.constraints
        case n.AddConstraint():
            return (a.constraint,)
    return ()


@record
class Noted(Record):
    """A statement a SET_END rule noted as the lint went by, to judge on the final state."""

    path: str
    span: Span
    sql: str
    table: str
    columns: tuple[str, ...] = ()
    detail: str = ""

    @classmethod
    def at(cls, ctx: RuleContext, table: str, columns: tuple[str, ...] = (),
           detail: str = "") -> Noted:
        return cls(ctx.migration.path, ctx.stmt.span, ctx.stmt.sql, table, columns, detail)

    def violation(self, message: str, help: str, recipe: str = "") -> Violation:
        return Violation(message, help, recipe=recipe, span=self.span, path=self.path,
                         statement=self.sql)


_K = TypeVar("_K")
_MEMO: weakref.WeakKeyDictionary[object, dict[str, object]] = weakref.WeakKeyDictionary()
# (weakref to the state used last, its slot): one tuple, read and replaced whole.
_LAST: tuple[Callable[[], object], dict[str, object]] = (lambda: None, {})


def per_lint(ctx: RuleContext, name: str, factory: Callable[[], _K]) -> _K:
    """A value that lives as long as one lint run (its schema state).

    For rules that must remember earlier statements the schema state does not record (which
    ALTER TABLE came first, the statements a SET_END rule judges after the last migration).
    One lint folds its statements in order through one SchemaState, so keying on it keeps
    concurrent lints apart and lets the memory go with the state.
    """
    global _LAST
    ref, slot = _LAST
    if ref() is not ctx.state:  # the common case skips the weak dictionary's lookup
        found = _MEMO.get(ctx.state)
        if found is None:
            found = _MEMO[ctx.state] = {}
        slot = found
        _LAST = (weakref.ref(ctx.state), slot)
    if name not in slot:
        slot[name] = factory()
    return slot[name]  # type: ignore[return-value]
