"""Stable finding fingerprints, shared by SARIF, GitLab Code Quality and the baseline file.

A fingerprint must survive edits that do not touch the finding: lines inserted above it, a
reformatted neighbour, a renumbered line. So it hashes what the finding is *about* — the file,
the rule and the statement text (whitespace collapsed, lowercased) — never a line number. Two
findings of one rule on identical statements in one file (two ``CREATE INDEX ... ON t (a)`` in a
file) are told apart by their occurrence index, counted in file order.

squawk's GitLab fingerprint hashes the line number, so every insertion above a finding makes
GitLab report it as fixed and new again; that is the failure this module exists to avoid.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from .model import Finding

# The key under which SARIF's partialFingerprints carries ours. Bump the version suffix whenever
# the recipe below changes, so consumers treat old and new fingerprints as different schemes.
SARIF_KEY = "sqlsafeStatementHash/v1"

_WS = re.compile(r"\s+")


def normalize_statement(sql: str) -> str:
    """Whitespace collapsed and lowercased: re-indenting a statement keeps its fingerprint."""
    return _WS.sub(" ", sql).strip().rstrip(";").strip().lower()


def normalize_path(path: str) -> str:
    """Forward slashes, no leading ``./``: Windows and POSIX runs agree."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def fingerprint(path: str, code: str, statement: str, occurrence: int) -> str:
    # NUL separators: no field can contain one, so ("a", "bc") and ("ab", "c") never collide.
    key = "\0".join((normalize_path(path), code, normalize_statement(statement), str(occurrence)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _subject(f: Finding) -> str:
    # Engine findings at the end of a migration (an unterminated BEGIN) and suppression
    # bookkeeping carry no statement text; their message names the object instead.
    return f.statement if f.statement else f.message


def fingerprints(findings: Iterable[Finding]) -> list[str]:
    """One fingerprint per finding, in the order given.

    The occurrence index counts earlier findings with the same (path, rule, statement) in file
    order, whatever order the caller lists them in.
    """
    items: Sequence[Finding] = list(findings)
    order = sorted(range(len(items)), key=lambda i: (items[i].span.line, items[i].span.column, i))
    seen: dict[tuple[str, str, str], int] = {}
    out = [""] * len(items)
    for i in order:
        f = items[i]
        triple = (normalize_path(f.path), f.code, normalize_statement(_subject(f)))
        n = seen.get(triple, 0)
        seen[triple] = n + 1
        out[i] = fingerprint(f.path, f.code, _subject(f), n)
    return out
