"""Split SQL text into statements with exact spans, and parse each one on its own.

Parsing one statement at a time means a statement that does not parse becomes a `syntax`
finding at its own position and every other statement of the file is still linted (squawk
stops at the first error). A text that parses as a whole takes a shortcut with the same
result: one parse, the parser's own statement offsets as the cuts. pglast's scanner and parser
report character offsets; we keep everything in characters so columns are right for non-ASCII
text.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from ._record import Record, record
from .model import Section, Span

# psql meta-commands start with a backslash at the beginning of a line (outside a statement).
_META_RE = re.compile(r"^[ \t]*\\(\S*)", re.M)
_COPY_STDIN_RE = re.compile(r"\bCOPY\b[^;]*\bFROM\s+STDIN\b[^;]*;\s*$", re.I)
_ERR_RE = re.compile(r",? at index \d+$")


@record
class MetaCommand(Record):
    path: str
    line: int
    command: str


# The key of ``ParsedStatement.long_identifiers``'s answer in the instance's dict.
_LONG_NAMES = "long_names"


@record
class ParsedStatement(Record):
    path: str
    index: int  # 0-based position in the section
    span: Span  # file-level span, end exclusive, including the terminating semicolon
    sql: str  # the statement text without the terminating semicolon
    node: Any | None  # the pglast statement node; None when it does not parse
    error: str | None = None
    error_span: Span | None = None
    # The node's class name ("AlterTableStmt"), "" when it does not parse; and, for an
    # ALTER TABLE-family statement, the object type it names as pglast spells it without
    # OBJECT_ ("table", "index", "matview", ...). Rules read these instead of the node, so a
    # statement parsed in another process (``pipeline``) need not be parsed again here.
    kind: str = ""
    objtype: str = ""

    def long_identifiers(self) -> tuple[str, ...]:
        """``identifiers.long_identifiers`` of the text, worked out once (kept in the
        instance's dict beside the fields, so a parse worker's answer travels with it)."""
        known: tuple[str, ...] | None = self.__dict__.get(_LONG_NAMES)
        if known is None:
            from .identifiers import long_identifiers

            known = self.__dict__[_LONG_NAMES] = long_identifiers(self.sql)
        return known


def statement(path: str, index: int, span: Span, sql: str, kind: str, node: Any) -> ParsedStatement:
    """A statement that parsed, its ``kind`` and ``objtype`` filled in."""
    objtype = getattr(node.objtype, "name", "").removeprefix("OBJECT_").lower() \
        if kind == "AlterTableStmt" else ""
    return ParsedStatement(path, index, span, sql, node, kind=kind, objtype=objtype)


class ShippedStatement(ParsedStatement):
    """A statement parsed by a parse worker (``pipeline``): everything but the node, which
    is made from the statement's text the first time something reads it."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        # What unpickling does anyway, said here: without it pickle asks for __setstate__,
        # and __getattr__ answers each statement with an AttributeError.
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> Any:
        if name != "node":
            raise AttributeError(name)
        node = _reparse(self.sql, self.kind)
        self.__dict__["node"] = node
        return node

    def _values(self) -> tuple[Any, ...]:
        self.node  # noqa: B018  (made, so equality and hashing see it)
        return super()._values()

    def __repr__(self) -> str:
        self.node  # noqa: B018
        return super().__repr__()


def _reparse(sql: str, kind: str) -> Any:
    from . import fastparse

    for _loc, _len, found, node in fastparse.parse_script(sql):
        if found == kind:
            return node
    raise RuntimeError(f"statement no longer parses as {kind}: {sql[:80]!r}")


def ship(stmt: ParsedStatement, short_names: bool = False) -> ShippedStatement:
    """The statement as a parse worker sends it (``pipeline``): its node left out.
    ``short_names``: the caller knows it has no name over 63 bytes (its whole file has no
    run of characters that could hold one)."""
    out = ShippedStatement.__new__(ShippedStatement)
    if short_names:
        stmt.__dict__[_LONG_NAMES] = ()
    stmt.long_identifiers()  # here, off the linting process's path
    values = dict(stmt.__dict__)
    if stmt.error is None:
        del values["node"]  # made again on demand
    out.__dict__.update(values)
    return out


@record
class ParsedSection(Record):
    section: Section
    statements: tuple[ParsedStatement, ...]
    meta_commands: tuple[MetaCommand, ...]


class LineIndex:
    """Maps character offsets of a text to 1-based (line, column)."""

    def __init__(self, text: str, line_offset: int = 0, char_offset: int = 0) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.line_offset = line_offset
        self.char_offset = char_offset

    def position(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1 + self.line_offset, offset - self.starts[i] + 1

    def span(self, start: int, end: int) -> Span:
        line, col = self.position(start)
        end_line, end_col = self.position(end)
        return Span(line, col, end_line, end_col, start + self.char_offset, end + self.char_offset)


def _mask_meta_commands(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Blank out psql meta-command lines (and COPY ... FROM stdin data) keeping offsets intact."""
    if "\\" not in text:
        return text, []
    out: list[str] = []
    metas: list[tuple[int, str]] = []
    in_copy_data = False
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        if in_copy_data:
            if body.strip() == "\\.":
                in_copy_data = False
            out.append(" " * len(body) + line[len(body):])
            continue
        m = _META_RE.match(body)
        if m:
            metas.append((lineno, body.strip()))
            out.append(" " * len(body) + line[len(body):])
            continue
        if _COPY_STDIN_RE.search(body):
            in_copy_data = True
        out.append(line)
    return "".join(out), metas


def _boundaries(text: str) -> list[tuple[int, int]]:
    """(start, end) character ranges of statements; end is one past the semicolon if any."""
    from pglast import parser as _pg

    try:
        tokens = _pg.scan(text)
    except _pg.ParseError:
        return _naive_boundaries(text)
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    atomic_depth = 0
    prev = ""
    for tok in tokens:
        if tok.name in ("SQL_COMMENT", "C_COMMENT"):
            continue
        if start is None:
            if tok.name == "ASCII_59":  # stray semicolon
                continue
            start = tok.start
        # SQL-standard function bodies (PG 14+): BEGIN ATOMIC ... END contains semicolons.
        if tok.name == "ATOMIC" and prev == "BEGIN_P":
            atomic_depth += 1
        elif tok.name == "END_P" and atomic_depth:
            atomic_depth -= 1
        elif tok.name == "ASCII_59" and not atomic_depth:
            ranges.append((start, tok.end + 1))
            start = None
        prev = tok.name
    if start is not None:
        end = len(text.rstrip())
        ranges.append((start, max(end, start)))
    return ranges


def _naive_boundaries(text: str) -> list[tuple[int, int]]:
    """Fallback when the scanner itself fails (e.g. an unterminated quote): split on ';' at
    the end of a line so the broken statement is isolated and later ones are still seen."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    for m in re.finditer(r";[ \t]*(\r?\n|$)", text):
        chunk = text[pos : m.start() + 1]
        lead = len(chunk) - len(chunk.lstrip())
        if chunk.strip(" \t\r\n;"):
            ranges.append((pos + lead, m.start() + 1))
        pos = m.end()
    rest = text[pos:]
    if rest.strip():
        lead = len(rest) - len(rest.lstrip())
        ranges.append((pos + lead, len(text.rstrip())))
    return _skip_leading_comments(text, ranges)


def _skip_leading_comments(text: str, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    fixed = []
    for start, end in ranges:
        while True:
            seg = text[start:end]
            if seg.startswith("--"):
                nl = seg.find("\n")
                if nl < 0:
                    start = end
                    break
                start += nl + 1
            elif seg.startswith("/*"):
                close = seg.find("*/")
                if close < 0:
                    break
                start += close + 2
            else:
                break
            start += len(text[start:end]) - len(text[start:end].lstrip())
        if start < end:
            fixed.append((start, end))
    return fixed


def _error_message(exc: Exception) -> tuple[str, int | None]:
    args = exc.args
    msg = str(args[0]) if args else str(exc)
    loc = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    return _ERR_RE.sub("", msg), loc


def count_statements(text: str, limit: int | None = None) -> int:
    """How many statements the text holds (comments and empty statements do not count);
    with ``limit``, min(that, limit), which may stop reading at the limit-th statement."""
    masked, _ = _mask_meta_commands(text)
    if not _mentions(masked, ("atomic", "rule"), _WHOLE_MAY_REFUSE_RE):
        # Discovery counts every Prisma and golang-migrate file, before anything is parsed:
        # counted here, the linting process need not load pglast at all when a parse worker
        # parses the set (``pipeline``). Elsewhere the parser's split runs the same grammar
        # as the JSON parse `_parse_whole` reads, without building the JSON tree.
        pieces = _count_pieces(masked, limit)
        if pieces is not None:
            return pieces if limit is None else min(pieces, limit)
        from pglast import parser as _pg

        try:
            count = len(_pg.split(masked))
        except Exception:  # a parse error: `_parse_whole` says None and the scanner counts
            pass
        else:
            return count if limit is None else min(count, limit)
    whole = _parse_whole(masked, nodes=False)
    count = len(whole) if whole is not None else len(_boundaries(masked))
    return count if limit is None else min(count, limit)


# `_count_pieces`'s tokens: a whole quoted name or string, a lone quote (one that does not
# close), a semicolon, a dollar sign, the start of a comment.
_PIECE_TOKEN_RE = re.compile(r"\"[^\"]*\"|'[^']*'|[;'\"$]|--|/\*")
# Characters that can start a name, and that can go on with one, as PostgreSQL's scanner
# has them (ident_start, ident_cont): ASCII letters, _, then digits and $, and every non-ASCII
# character; a dollar quote's tag goes on without the $. Spelled as the ASCII characters they
# leave out: a class with the range up to U+10FFFF takes the regex compiler 10 ms.
_NAME_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"
_NAME_CHAR = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_TAG_CHAR = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_DOLLAR_TAG_RE = re.compile(rf"\$(?:{_NAME_START}{_TAG_CHAR}*)?\$")
_IDENT_CHAR_RE = re.compile(_NAME_CHAR)
_LINE_END_RE = re.compile(r"[\n\r]")
_NOT_BLANK_RE = re.compile(r"[^ \t\n\r\f\v]")
# A number run into a name (``1e`` or ``0x1F`` too, to be safe): PostgreSQL's scanner
# refuses "trailing junk after numeric literal", and where it refuses the count is its own.
_NUMBER_JUNK_RE = re.compile(
    rf"(?<!{_NAME_CHAR})(?>\.?\d[0-9_.]*(?:[eE][+-]?[0-9_]+)?){_NAME_START}")
_UNICODE_QUOTE_RE = re.compile(r"[uU]&[\"']")


def _count_pieces(text: str, limit: int | None = None) -> int | None:
    """The statements of ``text`` as PostgreSQL's scanner cuts it: the pieces between
    semicolons outside quotes, dollar quotes and comments that hold anything but blanks and
    comments. None where the scanner's own word is needed: a quote, comment or dollar quote
    that never closes, an escape string (E''), a Unicode quote (U&''), a zero-length quoted
    name, a number with trailing junk. tests/model/test_count_statements.py holds it to the
    parser.

    ``limit``: stop at the limit-th statement's semicolon. The scanner reads left to right,
    so what follows cannot undo the statements before it: the parser counts at least as
    many, whatever the rest holds (a statement it refuses still counts, `_boundaries`)."""
    if "&" in text and _UNICODE_QUOTE_RE.search(text):
        return None
    count = 0
    content = False
    pos = 0
    end = len(text)
    name_end = -1  # where the last quoted name ended
    search = _PIECE_TOKEN_RE.search
    while True:
        m = search(text, pos)
        stop = m.start() if m else end
        if pos < stop:
            if not content and _NOT_BLANK_RE.search(text, pos, stop):
                content = True
            if _NUMBER_JUNK_RE.search(text, pos, stop):
                return None
        if m is None:
            break
        token = m.group()
        pos = m.end()
        first = token[0]
        if first == ";":
            if content:
                count += 1
                content = False
                if count == limit:
                    return count
        elif first == "-":
            line_end = _LINE_END_RE.search(text, pos)
            pos = line_end.start() if line_end else end
        elif first == "/":
            comment_end = _comment_end(text, pos)
            if comment_end is None:
                return None
            pos = comment_end
        elif first == "$":
            content = True
            tag = _DOLLAR_TAG_RE.match(text, stop)
            if tag is None:
                continue  # a parameter ($1)
            if stop and _IDENT_CHAR_RE.match(text, stop - 1):
                i = stop - 1
                while i and _IDENT_CHAR_RE.match(text, i - 1):
                    i -= 1
                if not text[i].isdigit():
                    pos = stop + 1  # inside a name (a$b$): the scanner reads the name on
                    continue
            close = text.find(tag.group(), tag.end())
            if close < 0:
                return None
            pos = close + len(tag.group())
        else:
            content = True
            if len(token) == 1:
                return None  # a quote that never closes
            if first == '"':
                # "" right after a quoted name is a quote inside it ("a""b"); alone, a
                # zero-length name
                if token == '""' and stop != name_end:
                    return None
                name_end = pos
            if first == "'" and stop and text[stop - 1] in "eE" and \
                    (stop == 1 or not _IDENT_CHAR_RE.match(text, stop - 2)):
                return None  # an escape string
    if content:
        count += 1
    return count


def leading_words(text: str, count: int = 6) -> list[str]:
    """Each statement's first ``count`` words, upper-cased and joined by single spaces,
    comments left out: how migration tools that sort statements by their leading keywords
    (Flyway's ``detectCanExecuteInTransaction``) see them."""
    from pglast import parser as _pg

    masked, _ = _mask_meta_commands(text)
    out = []
    for start, end in _boundaries(masked):
        piece = masked[start:end]
        try:
            tokens = _pg.scan(piece)
        except _pg.ParseError:
            out.append(" ".join(piece.split()[:count]).upper())
            continue
        words = [piece[t.start:t.end + 1] for t in tokens
                 if t.name not in ("SQL_COMMENT", "C_COMMENT")][:count]
        out.append(" ".join(words).upper())
    return out


def parse_section(section: Section) -> ParsedSection:
    masked, metas = _mask_meta_commands(section.text)
    index = LineIndex(section.text, section.line_offset, section.char_offset)
    whole = _parse_whole(masked)
    if whole is None:
        statements = _parse_each(section, masked, index)
    else:
        statements = []
        for i, (start, end, kind, node) in enumerate(whole):
            raw = masked[start:end]
            sql = raw[:-1] if raw.endswith(";") else raw
            statements.append(statement(section.path, i, index.span(start, end), sql, kind, node))
    meta = tuple(MetaCommand(section.path, line + section.line_offset, cmd) for line, cmd in metas)
    return ParsedSection(section, tuple(statements), meta)


# Whitespace as PostgreSQL's lexer knows it (str.isspace would also skip e.g. U+00A0, which
# PostgreSQL reads as part of an identifier), and `--` comments.
_BLANK_RE = re.compile(r"(?:[ \t\n\r\f\v]+|--[^\n\r]*)*")
_C_COMMENT_EDGE_RE = re.compile(r"/\*|\*/")
_ATOMIC_RE = re.compile(r"atomic", re.I)
# Words without which `_parse_whole` takes the parser's statements as they are.
_WHOLE_MAY_REFUSE_RE = re.compile(r"atomic|rule", re.I)


def _mentions(text: str, words: tuple[str, ...], pattern: re.Pattern[str]) -> bool:
    """``pattern.search(text)`` for a case-insensitive pattern that alternates ``words``
    (lowercase ASCII). On ASCII text that is a substring test of the lowercased text, which
    takes a tenth of the regex scan; other text keeps the regex, since re.I also matches
    U+0130 and U+0131 to an i."""
    if text.isascii():
        lowered = text.lower()
        return any(word in lowered for word in words)
    return pattern.search(text) is not None


def _token_start(text: str, pos: int) -> int:
    """Where the first token at or after `pos` starts: whitespace and comments skipped (C-style
    comments nest in PostgreSQL). Returns len(text) if only comments remain."""
    while True:
        pos = _BLANK_RE.match(text, pos).end()  # type: ignore[union-attr]  # matches empty
        if not text.startswith("/*", pos):
            return pos
        end = _comment_end(text, pos + 2)
        if end is None:
            return len(text)
        pos = end


def _comment_end(text: str, pos: int) -> int | None:
    """Where the C-style comment whose ``/*`` ends at ``pos`` ends (they nest in
    PostgreSQL), or None if it never does."""
    depth = 1
    while depth:
        edge = _C_COMMENT_EDGE_RE.search(text, pos)
        if edge is None:
            return None
        depth += 1 if edge.group() == "/*" else -1
        pos = edge.end()
    return pos


def _parse_whole(masked: str, nodes: bool = True) -> list[tuple[int, int, str, Any]] | None:
    """(start, end, node class name, statement node) of every statement, from one parse of
    the whole text, or None when the text does not parse or the parser may cut it where
    `_boundaries` does not. Nodes are None with ``nodes=False``.

    One libpg_query call per section instead of a scan plus one call per statement: most
    migration files parse, and only then do the parser's statements stand in for the
    scanner's. Ranges are the ones `_boundaries` gives: start at the first token (libpg_query
    18 already points stmt_location there; older versions point just past the previous
    semicolon), end one past the semicolon, or at the stripped end of the text for a last
    statement without one (stmt_len 0).

    The scanner cuts at every semicolon but inside BEGIN ATOMIC ... END, the grammar only at
    statement level. They can disagree on CREATE RULE ... DO (a; b), which the grammar reads as
    one statement, and on anything spelled `atomic` (a CASE ... END inside an atomic body, or
    `atomic` as a name after `begin`), where the scanner's depth count goes astray: such texts
    keep the per-statement path, so their statements, indexes and findings are as before.

    The nodes' own ``location`` fields then count from the start of the section, not of the
    statement, and in UTF-8 bytes; nothing reads them (positions come from the spans).
    """
    from . import fastparse

    try:
        located = fastparse.parse_script(masked, nodes)
    except Exception:  # ParseError, or the odd other type pglast raises; the slow path reports it
        return None
    atomic = _mentions(masked, ("atomic",), _ATOMIC_RE)
    text_end = len(masked.rstrip())
    ranges: list[tuple[int, int, str, Any]] = []
    for location, length, kind, node in located:
        start = _token_start(masked, location)
        end = location + length + 1 if length else max(text_end, start)
        if atomic and _ATOMIC_RE.search(masked, start, end):
            return None
        if kind == "RuleStmt" and ";" in masked[start:end - 1]:
            return None
        ranges.append((start, end, kind, node))
    return ranges


def _parse_each(section: Section, masked: str, index: LineIndex) -> list[ParsedStatement]:
    """Split with the scanner and parse statement by statement, for texts that do not parse
    as a whole: each broken statement becomes its own finding at its own position."""
    from pglast import parser as _pg

    from . import fastparse

    statements: list[ParsedStatement] = []
    for i, (start, end) in enumerate(_boundaries(masked)):
        raw = masked[start:end]
        sql = raw[:-1] if raw.endswith(";") else raw
        span = index.span(start, end)
        try:
            parsed = fastparse.parse_script(sql)
        except _pg.ParseError as exc:
            message, loc = _error_message(exc)
            if loc is None and "end of input" in message:
                loc = len(sql.rstrip())
            at = start + (loc if loc is not None and 0 <= loc <= len(sql) else 0)
            statements.append(
                ParsedStatement(section.path, i, span, sql, None, message, index.span(at, at + 1))
            )
            continue
        except Exception as exc:  # pglast raises a few other types on odd input
            statements.append(
                ParsedStatement(section.path, i, span, sql, None, str(exc), index.span(start, start + 1))
            )
            continue
        if not parsed:  # only comments
            continue
        if len(parsed) == 1:
            statements.append(statement(section.path, i, span, sql, parsed[0][2], parsed[0][3]))
            continue
        # The scanner and parser disagree (rare): keep the parser's statements, with their own
        # spans (``parse_script`` gives character offsets).
        for loc, length, kind, node in parsed:
            s0 = start + loc
            s1 = start + (loc + length if length else len(sql))
            statements.append(
                statement(section.path, i, index.span(s0, s1), masked[s0:s1], kind, node)
            )
    return statements
