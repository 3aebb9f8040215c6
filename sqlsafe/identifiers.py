"""Identifier length: PostgreSQL keeps at most 63 bytes of a name (NAMEDATALEN 64, all
versions) and cuts the rest without an error. ``long_identifiers`` finds them for ST009: a
cheap text pre-check (``may_have_long_identifier``), then the scanner where that says maybe.
``parse.ParsedStatement`` keeps the answer, and a parse worker (``pipeline``) works it out
before it ships a statement, so the linting process never loads the scanner for it."""

from __future__ import annotations

import re

MAX_IDENTIFIER_BYTES = 63

# A run of characters that can belong to one identifier (unquoted, or quoted), 16 characters
# or more: at 4 UTF-8 bytes a character at most, no shorter run can exceed 63 bytes.
_IDENT_CHAR = r'[^\s.,;()\[\]\'"=<>+*/-]'
_LONG_RUN = re.compile(_IDENT_CHAR + r'{16,}|"[^"]{16,}"')
# Tried only where a run starts (the lookbehind): without it a run of n < 64 characters is
# scanned again from each of its n positions, which made this pre-check cost more than the
# whole rule on statements full of long names.
_LONG_ASCII_RUN = re.compile(r'(?<!' + _IDENT_CHAR + ')' + _IDENT_CHAR + r'{64}|"[^"]{64,}"')


def may_have_long_identifier(sql: str) -> bool:
    """Whether some run of identifier characters is over 63 bytes (every identifier lies
    within one run, so none is longer than its run). A doubled quote inside a quoted name
    splits the runs: then the scanner decides."""
    if '""' in sql:
        return True
    if sql.isascii():  # one byte a character: only a run of 64 or more can hold one
        return _LONG_ASCII_RUN.search(sql) is not None
    return any(len(m.group().encode("utf-8")) > MAX_IDENTIFIER_BYTES
               for m in _LONG_RUN.finditer(sql))


def long_identifiers(sql: str) -> tuple[str, ...]:
    """The names in ``sql`` longer than 63 bytes, as PostgreSQL spells them before it cuts
    them (an unquoted name lower-cased), each once, in order."""
    if not may_have_long_identifier(sql):
        return ()
    from pglast import parser  # the scanner keeps identifiers as written (the parser truncates)

    try:
        tokens = parser.scan(sql)
    except Exception:
        return ()
    found: list[str] = []
    for tok in tokens:
        if tok.name != "IDENT":
            continue
        text = sql[tok.start:tok.end + 1]
        name = text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()
        if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES and name not in found:
            found.append(name)
    return tuple(found)
