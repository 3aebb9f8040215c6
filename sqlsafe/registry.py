"""The rule registry: a decorator records each rule's metadata next to its function."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ._record import Record, record
from .model import CATEGORIES, Fix, Span

# Special event a rule can ask for: called once at the end of each migration with action=None.
MIGRATION_END = "MigrationEnd"
# Called once per statement (with the statement's first action), for statement-wide checks.
STATEMENT = "Statement"
# Called once after the last migration of the set, with action=None, for checks a later
# migration can settle (an index created in a later file). Such a violation names the
# migration it belongs to (``Violation.path``); that migration's suppressions apply to it.
SET_END = "SetEnd"


@record
class Violation(Record):
    message: str
    help: str = ""
    fix: Fix | None = None
    recipe: str = ""
    span: Span | None = None  # defaults to the statement's span
    # SET_END only: the migration (display path) and statement text the finding is about.
    path: str | None = None
    statement: str = ""


@record
class RuleMeta(Record):
    code: str
    name: str
    category: str
    severity: str
    wants: tuple[str, ...]
    summary: str
    fixable: bool = False
    dry_run: bool = False  # the dry run can confirm it by observation
    opt_in: bool = False
    profile: str | None = None  # an opt-in rule set that enables it, e.g. "supabase"
    func: Callable[..., Iterable[Violation]] | None = None

    @property
    def doc(self) -> str:
        return f"rules/{self.code}-{self.name}.md"


RULES: dict[str, RuleMeta] = {}
_BY_NAME: dict[str, RuleMeta] = {}
_BY_KIND: dict[str, list[RuleMeta]] = {}


def rule(
    code: str,
    name: str,
    category: str,
    *,
    wants: tuple[str, ...],
    summary: str,
    severity: str = "error",
    fixable: bool = False,
    dry_run: bool = False,
    opt_in: bool = False,
    profile: str | None = None,
) -> Callable[[Callable[..., Iterable[Violation]]], Callable[..., Iterable[Violation]]]:
    if category not in CATEGORIES:
        raise ValueError(f"{code}: unknown category {category}")

    def register(func: Callable[..., Iterable[Violation]]) -> Callable[..., Iterable[Violation]]:
        if code in RULES or name in _BY_NAME:
            raise ValueError(f"duplicate rule {code} {name}")
        meta = RuleMeta(code, name, category, severity, wants, summary, fixable, dry_run,
                        opt_in or profile is not None, profile, func)
        RULES[code] = meta
        _BY_NAME[name] = meta
        for kind in wants:
            _BY_KIND.setdefault(kind, []).append(meta)
        return func

    return register


def meta(code: str, name: str, category: str, *, summary: str, severity: str = "error",
         opt_in: bool = False) -> RuleMeta:
    """Register a rule that the engine itself emits (syntax errors, suppressions)."""
    m = RuleMeta(code, name, category, severity, (), summary, opt_in=opt_in)
    RULES[code] = m
    _BY_NAME[name] = m
    return m


def lookup(key: str) -> RuleMeta | None:
    return RULES.get(key.upper()) or _BY_NAME.get(key.lower())


def rules_for(kind: str) -> list[RuleMeta]:
    return _BY_KIND.get(kind, [])


def all_rules() -> list[RuleMeta]:
    load()
    return sorted(RULES.values(), key=lambda m: m.code)


_loaded = False


def load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import rules  # noqa: F401  (registers every rule by import)


def select(keys: Iterable[str]) -> tuple[set[str], list[str]]:
    """Resolve codes, names or code prefixes ("LK", "LK0") / categories to rule codes."""
    load()
    codes: set[str] = set()
    unknown: list[str] = []
    for key in keys:
        key = key.strip()
        if not key:
            continue
        if key.upper() == "ALL":
            codes |= set(RULES)
            continue
        m = lookup(key)
        if m is not None:
            codes.add(m.code)
            continue
        if key.lower() in CATEGORIES:
            codes |= {c for c, r in RULES.items() if r.category == key.lower()}
            continue
        pref = {c for c in RULES if c.startswith(key.upper())}
        if pref:
            codes |= pref
        else:
            unknown.append(key)
    return codes, unknown
