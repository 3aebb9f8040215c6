"""The data model shared by every stage: source files, migrations, statements, findings.

Everything here is a frozen record (``_record.py``) so stages can pass values around without copying and
without one stage mutating what another produced.
"""

from __future__ import annotations

from typing import Any, Literal

from ._record import Record, record

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error")

CATEGORIES: tuple[str, ...] = (
    "locking",
    "timeout",
    "idempotency",
    "destructive",
    "compatibility",
    "backfill",
    "transaction",
    "security",
    "syntax",
    "style",
)


def severity_rank(sev: str) -> int:
    return SEVERITIES.index(sev)


@record
class Span(Record):
    """A region of a source file. Lines and columns are 1-based and count characters."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0  # character offset of the first character in the file text
    end: int = 0  # character offset one past the last character


@record
class Section(Record):
    """A piece of SQL text taken from a file (a whole file, or one dbmate/goose section).

    ``line_offset`` / ``char_offset`` place the section inside the file so spans can be
    reported against the file the user edits.
    """

    path: str  # display path, as the user should see it
    text: str
    line_offset: int = 0  # number of lines in the file before the section starts
    char_offset: int = 0  # number of characters in the file before the section starts


class FileBytes:
    """A file's bytes as discovery read them, kept as its text: the digest is worked out
    when something asks for it (checksum.txt, the dry run's report). A lint never does, and
    importing hashlib costs every pre-commit run a few milliseconds."""

    __slots__ = ("_sha256", "bom", "errors", "text")

    def __init__(self, text: str, bom: bool = False, errors: str = "strict") -> None:
        self.text = text  # without the BOM
        self.bom = bom
        self.errors = errors  # how the text encodes back to the bytes read
        self._sha256: str | None = None

    def sha256(self) -> str:
        if self._sha256 is None:
            import hashlib

            data = self.text.encode("utf-8", errors=self.errors)
            self._sha256 = hashlib.sha256(b"\xef\xbb\xbf" + data if self.bom else data).hexdigest()
        return self._sha256

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileBytes):
            return NotImplemented
        return (self.text, self.bom, self.errors) == (other.text, other.bom, other.errors)

    def __hash__(self) -> int:
        return hash((self.text, self.bom))

    def __repr__(self) -> str:
        return f"FileBytes({len(self.text)} characters, bom={self.bom})"


@record
class Down(Record):
    path: str
    abspath: str | None
    section: Section


@record
class Migration(Record):
    """One up migration, in apply order, with its paired down migration if any."""

    path: str  # display path (relative to the directory given, or as given)
    abspath: str | None  # None for stdin
    layout: str  # plain | prisma | supabase | flyway | golang-migrate | dbmate | goose | stdin | file
    version: str | None
    name: str
    section: Section
    kind: Literal["versioned", "repeatable"] = "versioned"
    # Whether the owning tool wraps the file in one transaction when it applies it.
    in_transaction: bool = False
    down: Down | None = None
    # The whole file as read; ``sha256`` is the digest of its raw bytes (what checksum.txt
    # records).
    raw: FileBytes | None = None

    @property
    def sha256(self) -> str:
        return self.raw.sha256() if self.raw is not None else ""


@record
class InputProblem(Record):
    """A path that could not be read as a migration. Reported, never raised."""

    path: str
    message: str
    line: int = 0
    column: int = 0


@record
class DiscoveryResult(Record):
    migrations: tuple[Migration, ...]
    problems: tuple[InputProblem, ...] = ()
    notes: tuple[str, ...] = ()
    root: str = "."  # the directory paths are relative to


@record
class Fix(Record):
    """A mechanical edit: replace ``[start, end)`` of the file text with ``replacement``."""

    description: str
    start: int
    end: int
    replacement: str
    safe: bool = True


@record
class Finding(Record):
    code: str
    rule: str
    category: str
    severity: str
    path: str
    span: Span
    message: str
    help: str = ""
    statement: str = ""
    doc: str = ""
    fix: Fix | None = None
    recipe: str = ""  # a multi-step safe recipe shown to the user, never applied

    def sort_key(self) -> tuple[Any, ...]:
        return (self.path, self.span.line, self.span.column, self.code)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "code": self.code,
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "path": self.path,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "message": self.message,
            "help": self.help,
            "statement": self.statement,
            "doc": self.doc,
        }
        if self.fix is not None:
            d["fix"] = {
                "description": self.fix.description,
                "replacement": self.fix.replacement,
                "safe": self.fix.safe,
            }
        if self.recipe:
            d["recipe"] = self.recipe
        return d


@record
class LockPrediction(Record):
    relation: str  # schema-qualified
    mode: str  # pg_locks mode name, e.g. AccessExclusiveLock


@record
class StatementInfo(Record):
    """What the static model predicts for one statement (the ``statements`` list of lint JSON)."""

    path: str
    span: Span
    sql: str
    kind: str
    locks: tuple[LockPrediction, ...] = ()
    rewrites: tuple[str, ...] = ()
    in_transaction: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.span.line,
            "kind": self.kind,
            "locks": [{"relation": lk.relation, "mode": lk.mode} for lk in self.locks],
            "rewrites": list(self.rewrites),
        }


@record
class LintResult(Record):
    files: tuple[str, ...]
    findings: tuple[Finding, ...]
    statements: tuple[StatementInfo, ...]
    problems: tuple[InputProblem, ...] = ()
    notes: tuple[str, ...] = ()
    migrations: tuple[Migration, ...] = ()
    # ``lint(keep_parsed=True)``: each linted migration's ParsedSection, for a dry run that
    # follows, so it does not parse the same text again.
    parsed: tuple[Any, ...] = ()

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")
