"""The static pipeline: parse → normalize → schema state → rules → suppressions → findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import locks as lk
from . import nodes as n
from . import registry
from ._record import MutableRecord, field, record, replace
from .config import POSTGRES_DIALECTS, Config
from .discover import excluded
from .model import (
    DiscoveryResult,
    Finding,
    LintResult,
    LockPrediction,
    Migration,
    Span,
    StatementInfo,
    severity_rank,
)
from .parse import ParsedSection, ParsedStatement, parse_section
from .rules.context import RuleContext, Siblings
from .rules.meta import EXPIRED, INPUT, META_RULES, NO_REASON, SYNTAX, UNKNOWN, UNUSED
from .schema import SchemaState
from .suppress import Suppression, bind, is_expired, parse_suppressions

RuleFunc = Callable[..., Iterable[registry.Violation]]
# What the statements a DO block runs are not judged by (``Selection.in_do_blocks``).
_DO_SKIPPED_CATEGORIES = frozenset({"idempotency"})


@record
class Selection(MutableRecord):
    enabled: set[str]
    severity: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    # Each kind's (rule, function) pairs, worked out on first use (``rules_for``).
    _by_kind: dict[str, list[tuple[registry.RuleMeta, RuleFunc]]] = field(default_factory=dict)
    # ``in_do_blocks``, made on first use and kept with its own ``_by_kind``.
    _in_do_blocks: Selection | None = None

    def rules_for(self, kind: str) -> list[tuple[registry.RuleMeta, RuleFunc]]:
        """(rule, its function) for the enabled rules that want ``kind``, in registry order.
        Worked out once per kind instead of for every statement, and the functions are
        called directly (26,000 calls over the corpus)."""
        rules = self._by_kind.get(kind)
        if rules is None:
            rules = [(m, m.func) for m in registry.rules_for(kind)
                     if m.code in self.enabled and m.func is not None]
            self._by_kind[kind] = rules
        return rules

    def in_do_blocks(self) -> Selection:
        """The rules for the statements a DO block runs: all but the idempotency ones (a DO
        block is itself a hand-written guard more often than not, and a retry of it is the
        author's design: they judge the DO statement, not what it runs)."""
        if self._in_do_blocks is None:
            self._in_do_blocks = Selection(
                {c for c in self.enabled
                 if registry.RULES[c].category not in _DO_SKIPPED_CATEGORIES},
                self.severity, self.unknown)
        return self._in_do_blocks


def selection(config: Config) -> Selection:
    registry.load()
    if config.select:
        enabled, unknown = registry.select(config.select)
    else:
        enabled = {c for c, m in registry.RULES.items() if not m.opt_in}
        unknown = []
    extra, unk2 = registry.select(config.extend_select)
    enabled |= extra
    enabled |= {c for c, m in registry.RULES.items() if m.profile and m.profile in config.profiles}
    ignored, unk3 = registry.select(config.ignore)
    enabled -= ignored
    sev: dict[str, str] = {}
    for key, value in config.severity.items():
        m = registry.lookup(key)
        if m is None:
            unknown.append(key)
            continue
        if value == "off":
            enabled.discard(m.code)
        else:
            sev[m.code] = value
    # The engine's own findings about input and suppressions are always on unless ignored.
    for m in META_RULES:
        if m.code not in ignored and sev.get(m.code) != "off" and \
                config.severity.get(m.name) != "off" and config.severity.get(m.code) != "off":
            enabled.add(m.code)
    return Selection(enabled, sev, unknown + unk2 + unk3)


def _finding(meta: registry.RuleMeta, sel: Selection, path: str, span: Span, message: str,
             help: str = "", statement: str = "", fix=None, recipe: str = "") -> Finding:
    return Finding(meta.code, meta.name, meta.category, sel.severity.get(meta.code, meta.severity),
                   path, span, message, help, statement[:2000], meta.doc, fix, recipe)


def lint(discovery: DiscoveryResult, config: Config, *,
         report_only: set[str] | None = None, keep_parsed: bool = False,
         worker: bool | None = None, early: Any = None) -> LintResult:
    """Lint every migration in order, folding one schema state across the whole set.

    ``report_only``: display paths whose findings are reported; the others are still folded
    into the schema state (``--changed-since``). ``keep_parsed``: keep each migration's
    parsed statements in the result (``LintResult.parsed``) for a dry run that follows.
    ``worker``: parse in a second process (``pipeline``); None decides by the set's size and
    the machine, False never, True wherever it can, waiting for every file it parses (tests).
    ``early``: a ``pipeline.Worker.early()`` started before discovery, used for any set it
    can parse (it has loaded the parser already); this call always closes it.
    """
    sel = selection(config)
    state = SchemaState()
    findings: list[Finding] = []
    statements: list[StatementInfo] = []
    files: list[str] = []
    problems = list(discovery.problems)
    parsed: list[ParsedSection] = []
    for p in discovery.problems:
        if sel.enabled and INPUT.code in sel.enabled:
            findings.append(_finding(INPUT, sel, p.path, Span(max(p.line, 1), max(p.column, 1),
                                                               max(p.line, 1), max(p.column, 1)),
                                     p.message))
    # Suppressions are applied once the whole set is linted: a rule that waits for the end
    # of the set (SET_END) may still add a finding to an earlier migration.
    linted: list[tuple[Migration, list[tuple[Finding, int]], list[Suppression]]] = []
    todo = [(index, migration) for index, migration in enumerate(discovery.migrations)
            if not excluded(migration.path, config.exclude)]
    shipped = _worker_for(todo, config, keep_parsed, worker, early)
    try:
        sections = shipped.sections() if shipped is not None else iter(())
        for index, migration in todo:
            given = next(sections, None)
            raw, sups, ms = lint_migration(migration, index, state, config, sel,
                                           parsed_out=parsed if keep_parsed else None,
                                           given=given)
            linted.append((migration, raw, sups))
            if report_only is None or migration.path in report_only:
                files.append(migration.path)
                statements.extend(ms)
    finally:
        if shipped is not None:
            shipped.close()
    _set_end(state, config, sel, linted)
    for migration, raw, sups in linted:
        if report_only is None or migration.path in report_only:
            findings.extend(_apply_suppressions(raw, sups, migration, sel))
    findings.sort(key=Finding.sort_key)
    return LintResult(tuple(files), tuple(findings), tuple(statements), tuple(problems),
                      discovery.notes, discovery.migrations, tuple(parsed))


def _worker_for(todo: list[tuple[int, Migration]], config: Config, keep_parsed: bool,
                wanted: bool | None, early: Any = None) -> Any:
    """A ``pipeline.Worker`` parsing ``todo``'s migrations, or None to parse them here."""
    if wanted is False or keep_parsed or config.dialect not in POSTGRES_DIALECTS:
        if early is not None:
            early.close()
        return None
    migrations = [m for _i, m in todo]
    if early is not None:
        # Whatever the set's size: the worker has loaded the parser, this process has not.
        early.start(migrations)
        return early
    # (The size first: a small set does not even import the pipeline and pickle.)
    if wanted is None and sum(len(m.section.text) for m in migrations) < _WORKER_MIN_CHARS:
        return None
    from . import pipeline

    usable = pipeline.can_fork() if wanted else pipeline.worth_it()
    if not usable:
        return None
    try:
        return pipeline.Worker(migrations, wait=bool(wanted))
    except OSError:  # no fork to be had (a process limit): parse here
        return None


# Below this much SQL (characters) forking a parse worker costs more than it saves.
# (Measured on corpus subsets: about even at 40,000 characters, 20% faster from 100,000.)
_WORKER_MIN_CHARS = 64_000


def _for_dialect(sel: Selection, config: Config) -> Selection:
    """``sel`` less the rules that state PostgreSQL facts (locks, timeouts, transactions) when
    the dialect is another one."""
    if config.dialect in POSTGRES_DIALECTS:
        return sel
    from .dialects import POSTGRES_ONLY_CATEGORIES

    return Selection({c for c in sel.enabled
                      if registry.RULES[c].category not in POSTGRES_ONLY_CATEGORIES},
                     sel.severity, sel.unknown)


def _set_end(state: SchemaState, config: Config, sel: Selection,
             linted: list[tuple[Migration, list[tuple[Finding, int]], list[Suppression]]],
             ) -> None:
    """Run the SET_END rules on the state after the last migration; each violation joins the
    raw findings of the migration it names."""
    rules = _for_dialect(sel, config).rules_for(registry.SET_END)
    if not rules or not linted:
        return
    raw_of = {migration.path: raw for migration, raw, _ in linted}
    last = linted[-1][0]
    ctx = RuleContext(state, config.pg_version, config, _end_statement(last), last,
                      len(linted) - 1, (), lk.Prediction(), in_tx=False)
    for meta, func in rules:
        for v in func(None, ctx):
            raw = raw_of.get(v.path or "")
            if raw is None or v.span is None or v.path is None:
                continue  # a migration excluded from the lint
            raw.append((_finding(meta, sel, v.path, v.span, v.message, v.help, v.statement,
                                 v.fix, v.recipe), v.span.line))


def lint_migration(migration: Migration, index: int, state: SchemaState, config: Config,
                   sel: Selection, parsed_out: list[ParsedSection] | None = None,
                   given: tuple[ParsedSection | None, tuple[Any, ...] | None,
                                dict[tuple[int, int], Any] | None] | None = None,
                   ) -> tuple[list[tuple[Finding, int]], list[Suppression], list[StatementInfo]]:
    """Lint one migration: its raw findings (with the first line of their statement, for
    the suppressions, which ``lint`` applies after SET_END), its suppressions and statements.
    ``given``: the section as a ``pipeline.Worker`` parsed it, each statement's actions (None:
    normalize it here) and its DO blocks' statements by (statement, action) position, or
    (None, None, None) to parse it here."""
    postgres = config.dialect in POSTGRES_DIALECTS
    worked, pre, blocks = given if given is not None else (None, None, None)
    if worked is not None:
        parsed = worked
    elif postgres:
        parsed = parse_section(migration.section)
        if parsed_out is not None:
            parsed_out.append(parsed)
    else:
        from . import dialects

        parsed = dialects.parse_section(migration.section, config.dialect)
    suppressions = parse_suppressions(migration.section.text, migration.section.line_offset)
    bind(suppressions, [(s.span.line, s.span.end_line) for s in parsed.statements])
    state.begin_migration(migration.path, index, migration.in_transaction)
    non_pg = _for_dialect(sel, config)
    if postgres and pre is None:
        from .normalize import normalize_each

        pre = normalize_each(parsed.statements)
    siblings = Siblings(parsed.statements, pre) if postgres else None
    raw: list[tuple[Finding, int]] = []
    infos: list[StatementInfo] = []
    pg = config.pg_version
    for position, stmt in enumerate(parsed.statements):
        if stmt.error is not None:
            span = stmt.error_span or stmt.span
            raw.append((_finding(SYNTAX, sel, migration.path, span,
                                 f"{stmt.error} (statement skipped; the rest of the file is still checked)",
                                 "Fix the statement so PostgreSQL can parse it.", stmt.sql),
                        stmt.span.line))
            continue
        prediction = lk.Prediction()
        if postgres:
            done = pre[position] if pre is not None else None
            actions = _actions(stmt, done, state)
            for action in actions:
                lk.predict(action, state, pg, prediction)
        else:
            actions = dialects.normalize(stmt.node)
        ctx = RuleContext(state, pg, config, stmt, migration, index, actions, prediction,
                          in_tx=state.tx.open, siblings=siblings)
        for f in _run_rules(actions, ctx, sel if postgres else non_pg):
            raw.append((f, stmt.span.line))
        in_tx_before = state.tx.open
        # The statement's locks are held before its actions apply: a table it moves (RENAME,
        # SET SCHEMA) then carries the lock to its new name, as PostgreSQL's lock is on the
        # relation, not the name.
        state.hold_locks(prediction, stmt.span.line)
        for k, action in enumerate(actions):
            state.apply(action)
            if isinstance(action, n.DoBlock) and action.language == "plpgsql":
                expanded = blocks.get((position, k)) if blocks is not None else None
                for f in _lint_do_block(stmt, action, state, pg, config, migration, index,
                                        sel, prediction, siblings, expanded):
                    raw.append((f, stmt.span.line))
        infos.append(_info(migration, stmt, actions, prediction, in_tx_before))
        state.tx.statements += 1
    # Checks that need the whole migration (an unterminated BEGIN, ...).
    end_ctx = RuleContext(state, pg, config, _end_statement(migration), migration, index, (),
                          lk.Prediction(), in_tx=state.tx.open, siblings=siblings)
    for meta, func in non_pg.rules_for(registry.MIGRATION_END):
        for v in func(None, end_ctx):
            span = v.span or end_ctx.stmt.span
            raw.append((_finding(meta, sel, migration.path, span, v.message, v.help,
                                 "", v.fix, v.recipe), span.line))
    state.end_migration()
    return raw, suppressions, infos


def _lint_do_block(stmt: ParsedStatement, action: n.DoBlock, state: SchemaState, pg: int,
                   config: Config, migration: Migration, index: int, sel: Selection,
                   outer: lk.Prediction, siblings: Siblings | None = None,
                   expanded: tuple[Any, Any] | None = None) -> list[Finding]:
    """Lint the statements a DO block runs, in order, inside the block's transaction.
    ``expanded``: those statements and their ``normalize_each``, as a parse worker found
    them (``pipeline``); None: expand the block here."""
    inner_sel = sel.in_do_blocks()
    found: list[Finding] = []
    # The block is one transaction even outside BEGIN: a lock one of its statements takes is
    # held while the next ones run.
    opened = state.begin_atomic()
    try:
        _lint_block_statements(stmt, action, state, pg, config, migration, index, inner_sel,
                               outer, found, siblings, expanded)
    finally:
        state.end_atomic(opened)
    return found


def _lint_block_statements(stmt: ParsedStatement, action: n.DoBlock, state: SchemaState,
                           pg: int, config: Config, migration: Migration, index: int,
                           inner_sel: Selection, outer: lk.Prediction,
                           found: list[Finding], siblings: Siblings | None,
                           expanded: tuple[Any, Any] | None) -> None:
    if expanded is None:
        from . import plpgsql
        from .normalize import normalize_each

        inners = plpgsql.expand(stmt, action.body)
        pre = normalize_each(inners)
    else:
        inners, pre = expanded
    for inner, done in zip(inners, pre, strict=True):
        actions = _actions(inner, done, state)
        prediction = lk.Prediction()
        for a in actions:
            lk.predict(a, state, pg, prediction)
        # A DO block runs as one statement: always atomic, even outside BEGIN.
        ctx = RuleContext(state, pg, config, inner, migration, index, actions, prediction,
                          in_tx=True, do_block=True, siblings=siblings)
        for f in _run_rules(actions, ctx, inner_sel):
            # Offsets of an inner statement are not offsets in the file: no mechanical fix.
            found.append(replace(f, fix=None, message=f"{f.message} (inside a DO block)"))
        for rel, mode in prediction.locks.items():
            outer.lock(rel, mode)
        for rel in prediction.rewrites:
            outer.rewrite(rel)
        state.hold_locks(prediction, stmt.span.line)
        for a in actions:
            state.apply(a)
        if not state.tx.open:
            state.begin_atomic()  # after a COMMIT or ROLLBACK the block goes on in a new one


def _actions(stmt: ParsedStatement, done: tuple[n.Action, ...] | None,
             state: SchemaState) -> tuple[n.Action, ...]:
    """The statement's actions: ``normalize_each``'s, or where it left the statement to the
    schema state (None), normalized against the state's functions."""
    if done is not None:
        return done
    from .normalize import normalize

    return normalize(stmt.node, state.functions)


def _end_statement(migration: Migration) -> ParsedStatement:
    text = migration.section.text
    lines = text.count("\n") + migration.section.line_offset
    last_line = lines + (0 if text.endswith("\n") else 1)
    span = Span(max(last_line, 1), 1, max(last_line, 1), 1,
                migration.section.char_offset + len(text), migration.section.char_offset + len(text))
    return ParsedStatement(migration.path, -1, span, "", None)


def _run_rules(actions: tuple[n.Action, ...], ctx: RuleContext, sel: Selection) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    kinds: list[tuple[str, n.Action]] = [(a.kind, a) for a in actions]
    if actions:
        kinds.append((registry.STATEMENT, actions[0]))
    for kind, action in kinds:
        for meta, func in sel.rules_for(kind):
            for v in func(action, ctx):
                key = (meta.code, v.message)
                if key in seen:
                    continue
                seen.add(key)
                out.append(_finding(meta, sel, ctx.migration.path, v.span or ctx.stmt.span,
                                    v.message, v.help, ctx.stmt.sql, v.fix, v.recipe))
    return out


def _info(migration: Migration, stmt: ParsedStatement, actions: tuple[n.Action, ...],
          prediction: lk.Prediction, in_tx: bool) -> StatementInfo:
    locks = tuple(LockPrediction(rel, mode) for rel, mode in sorted(prediction.locks.items()))
    kind = actions[0].kind if actions else "Other"
    return StatementInfo(migration.path, stmt.span, stmt.sql, kind, locks,
                         tuple(prediction.rewrites), in_tx)


def _apply_suppressions(raw: list[tuple[Finding, int]], sups: list[Suppression],
                        migration: Migration, sel: Selection) -> list[Finding]:
    kept: list[Finding] = []
    meta_findings: list[Finding] = []
    for s in sups:
        for key in s.rules:
            # A code, a name or a category. Not a code prefix: "LK01" is far more likely a typo
            # of LK001 than a wish to silence LK010-LK019.
            m = registry.lookup(key)
            codes = {m.code} if m is not None else {
                c for c, r in registry.RULES.items() if r.category == key.lower()}
            if not codes:
                meta_findings.append(_finding(
                    UNKNOWN, sel, migration.path, Span(s.line, s.column, s.line, s.column + 1),
                    f"sqlsafe: ignore names an unknown rule '{key}'",
                    "Use a rule code or name from `sqlsafe rules`."))
            else:
                s.codes |= codes
        if not s.reason:
            meta_findings.append(_finding(
                NO_REASON, sel, migration.path, Span(s.line, s.column, s.line, s.column + 1),
                "suppression without a reason suppresses nothing",
                'Say why the hazard is acceptable: -- sqlsafe: ignore LK001 reason="table has 40 rows"'))
        elif is_expired(s):
            meta_findings.append(_finding(
                EXPIRED, sel, migration.path, Span(s.line, s.column, s.line, s.column + 1),
                f"suppression expired on {s.until}",
                "Remove it, or renew it with a new until= date and reason."))
    for f, first_line in raw:
        if _suppressed(f, first_line, sups):
            continue
        kept.append(f)
    for s in sups:
        if s.reason and not s.used and not is_expired(s) and (s.codes or not s.rules):
            meta_findings.append(_finding(
                UNUSED, sel, migration.path, Span(s.line, s.column, s.line, s.column + 1),
                "suppression matched no finding", "Remove the stale sqlsafe: ignore comment."))
    kept.extend(f for f in meta_findings if f.code in sel.enabled)
    return kept


def _suppressed(f: Finding, first_line: int, sups: list[Suppression]) -> bool:
    if f.code in (UNUSED.code, UNKNOWN.code, NO_REASON.code, EXPIRED.code):
        return False
    for s in sups:
        if not s.reason or is_expired(s):
            continue
        if s.rules and f.code not in s.codes:
            continue
        if s.file_wide or s.target_line == first_line:
            s.used = True
            return True
    return False


def fails(result: LintResult, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    threshold = severity_rank(fail_on)
    return any(severity_rank(f.severity) >= threshold for f in result.findings)

