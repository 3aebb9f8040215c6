"""Discovery: turn the paths the user gave into up migrations, in the order their tool applies them.

Each PATH is a file, a directory or ``-`` (standard input). Results are concatenated in argument
order; a file given twice is listed once.

Display paths
    ``Migration.path`` is the argument as given joined with the file's path below it, normalised
    (``fixtures/plain`` + ``1_x.sql`` -> ``fixtures/plain/1_x.sql``; ``.`` + ``1_x.sql`` ->
    ``1_x.sql``). A file argument keeps its own spelling; stdin is ``<stdin>``.
    ``DiscoveryResult.root`` is the directory argument when exactly one directory was given, the
    file's directory when exactly one file was given, and ``.`` otherwise, so
    ``os.path.relpath(m.path, result.root)`` is always the path below the root.

Layouts (``Migration.layout``)
    ``plain``, ``prisma``, ``supabase``, ``flyway``, ``golang-migrate``, ``popx``, ``dbmate``,
    ``goose``, ``versioned-dirs``, ``file`` (a lone file of no known layout) and ``stdin``.
    A directory is walked (hidden directories and ``node_modules`` skipped); Prisma migration
    folders and versioned schema folders are recognised by their shape, every other directory by
    the names and markers of its own ``.sql`` files. Flyway scans its locations recursively, so
    all Flyway-named files under one argument form one set. Several sets under one argument are
    listed one after another, with a note.

Bad input is never raised: it becomes an ``InputProblem`` (unreadable, binary, not UTF-8, too
large, missing) or a note (skipped files, empty files), and discovery goes on.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial

from sqlsafe._record import MutableRecord, Record, field, record, replace
from sqlsafe.config import POSTGRES_DIALECTS
from sqlsafe.model import DiscoveryResult, Down, FileBytes, InputProblem, Migration, Section

# Files above this size are reported, never read: a migration this large is generated data, and
# reading it whole would make a pre-commit hook stall.
MAX_FILE_BYTES = 50 * 1024 * 1024

LAYOUTS: tuple[str, ...] = (
    "plain",
    "prisma",
    "supabase",
    "flyway",
    "golang-migrate",
    "popx",
    "dbmate",
    "goose",
    "versioned-dirs",
)

STDIN_PATH = "<stdin>"
_SKIP_DIRS = frozenset({"node_modules"})
_BOM = b"\xef\xbb\xbf"

# --- file-name patterns, one per tool --------------------------------------------------------
_FLYWAY_VERSIONED = re.compile(r"^(?P<kind>[VU])(?P<version>\d+(?:[._]\d+)*)__(?P<desc>.+)\.sql$")
_FLYWAY_REPEATABLE = re.compile(r"^R__(?P<desc>.+)\.sql$")
# golang-migrate: <version>_<name>.(up|down).sql; ory/popx adds an optional dialect and
# ".autocommit" before the direction.
_GOLANG = re.compile(
    r"^(?P<version>\d+)_(?P<name>[^.]+)"
    r"(?:\.(?!autocommit\.)(?P<dialect>[a-z0-9]+))?"
    r"(?P<autocommit>\.autocommit)?"
    r"\.(?P<direction>up|down)\.sql$"
)
_NUMBERED = re.compile(r"^(?P<version>\d+)[_-]?(?P<name>.*)\.sql$", re.IGNORECASE)
_PRISMA_DIR = re.compile(r"^(?P<version>\d+)_(?P<name>.+)$")
_VERSION_DIR = re.compile(r"^v(?P<version>\d+(?:\.\d+)*)$")

# dbmate: "-- migrate:up [transaction:false]"; goose: "-- +goose Up" and friends.
_DBMATE_MARKER = re.compile(r"^--\s*migrate:(?P<dir>up|down)\b(?P<opts>[^\r\n]*)$", re.MULTILINE)
_GOOSE_MARKER = re.compile(r"^--\s*\+goose\s+(?P<dir>up|down)\b[^\r\n]*$", re.MULTILINE | re.I)
_GOOSE_NO_TX = re.compile(r"^--\s*\+goose\s+NO\s+TRANSACTION\b", re.MULTILINE | re.IGNORECASE)


# --- reading ----------------------------------------------------------------------------------
@record
class _Source(Record):
    """One readable ``.sql`` file: its text (BOM stripped) and its raw bytes."""

    path: str  # display path
    abspath: str
    name: str  # base name
    text: str
    raw: FileBytes


@record
class _Acc(MutableRecord):
    """What discovery of one argument collects."""

    migrations: list[Migration] = field(default_factory=list)
    downs: list[Down] = field(default_factory=list)  # downs found without their up (for pairing)
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # abspath -> text read instead of the file's (an editor's unsaved buffer, ``sqlsafe lsp``)
    overlay: Mapping[str, str] = field(default_factory=dict)
    # Absolute paths of files the directory listing showed not to be symlinks (``_walk``).
    not_links: set[str] = field(default_factory=set)

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    def problem(self, path: str, msg: str, line: int = 0, column: int = 0) -> None:
        self.problems.append(InputProblem(path, msg, line, column))


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of byte ``offset`` (columns count characters)."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _read(path: str, abspath: str, acc: _Acc) -> _Source | None:
    """Read one file, or record why it cannot be a migration and return None."""
    if abspath in acc.overlay:
        text = acc.overlay[abspath]
        return _Source(path, abspath, os.path.basename(abspath), text, FileBytes(text))
    try:
        # The descriptor itself, read at once: a buffered file object costs more than the
        # read (with scandir in ``_walk``, discovery of the corpus went from 75–110 ms to
        # 50–80 ms).
        fd = os.open(abspath, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size > MAX_FILE_BYTES:
                acc.problem(
                    path, f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit; not read"
                )
                return None
            data = os.read(fd, size + 1)
            if len(data) != size:  # a short read, or it grew since (or /proc): read to the end
                chunks = [data]
                while chunk := os.read(fd, 1 << 16):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as e:
        acc.problem(path, f"cannot read: {e.strerror or e}")
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        acc.problem(path, "file is UTF-16 encoded; save it as UTF-8", 1, 1)
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _position(data, nul)
        acc.problem(path, f"binary file: NUL byte at offset {nul}", line, col)
        return None
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + (len(data) - len(body))
        line, col = _position(data, offset)
        bad = data[offset]
        acc.problem(path, f"not valid UTF-8: byte 0x{bad:02x} at offset {offset}", line, col)
        return None
    # Valid UTF-8 decodes and encodes back to the same bytes: the text stands for them.
    return _Source(path, abspath, os.path.basename(abspath), text,
                   FileBytes(text, body is not data))


def _is_blank(text: str) -> bool:
    return not text.strip()


# --- sections ---------------------------------------------------------------------------------
def _section(src: _Source, start: int = 0, end: int | None = None) -> Section:
    end = len(src.text) if end is None else end
    return Section(
        path=src.path,
        text=src.text[start:end],
        line_offset=src.text.count("\n", 0, start),
        char_offset=start,
    )


def _after_line(text: str, match_end: int) -> int:
    """Offset of the first character after the line that ends at ``match_end``."""
    nl = text.find("\n", match_end)
    return len(text) if nl < 0 else nl + 1


@record
class _Split(Record):
    up: Section | None
    down: Section | None
    up_opts: str = ""


def _split_markers(src: _Source, pattern: re.Pattern[str]) -> _Split:
    """Cut a file at its up/down marker lines; each section runs to the next marker or EOF.

    The marker line itself is left out so the section starts on the line after it; its
    line_offset still places it in the file.
    """
    marks = list(pattern.finditer(src.text))
    up = down = None
    up_opts = ""
    for i, m in enumerate(marks):
        start = _after_line(src.text, m.end())
        end = marks[i + 1].start() if i + 1 < len(marks) else len(src.text)
        sec = _section(src, start, end)
        if m.group("dir").lower() == "up" and up is None:
            up, up_opts = sec, m.groupdict().get("opts") or ""
        elif m.group("dir").lower() == "down" and down is None:
            down = sec
    return _Split(up, down, up_opts)


# --- ordering helpers -------------------------------------------------------------------------
def _natural_key(name: str) -> tuple[object, ...]:
    # re.split with a capture group alternates str, digits, str, ... so positions compare
    # like with like.
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)) + (name,)


def flyway_version_key(version: str) -> tuple[int, ...]:
    """Flyway compares versions numerically part by part; trailing zeros do not count (1.0 == 1).
    Raises ValueError for a part that is not a number."""
    parts = [int(p) for p in re.split(r"[._]", version) if p != ""]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _migration(
    src: _Source,
    layout: str,
    version: str | None,
    name: str,
    *,
    section: Section | None = None,
    in_transaction: bool = False,
    kind: str = "versioned",
    down: Down | None = None,
) -> Migration:
    return Migration(
        path=src.path,
        abspath=src.abspath,
        layout=layout,
        version=version,
        name=name,
        section=section if section is not None else _section(src),
        kind="repeatable" if kind == "repeatable" else "versioned",
        in_transaction=in_transaction,
        down=down,
        raw=src.raw,
    )


def _down(src: _Source, section: Section | None = None) -> Down:
    return Down(src.path, src.abspath, section if section is not None else _section(src))


def _note_skipped(acc: _Acc, srcs: Sequence[_Source], why: str) -> None:
    for s in srcs:
        acc.note(f"{s.path}: skipped, {why}")


def _note_empty(acc: _Acc, m: Migration) -> None:
    # Empty files are legal (popx ships empty per-dialect no-ops), so a note, not a problem.
    if _is_blank(m.section.text):
        acc.note(f"{m.path}: empty migration, nothing to check")


# --- layouts ----------------------------------------------------------------------------------
def _build_plain(srcs: list[_Source], acc: _Acc, layout: str = "plain") -> None:
    numbered = [s for s in srcs if _NUMBERED.match(s.name)]
    if srcs and not numbered:
        acc.note(
            f"{os.path.dirname(srcs[0].path) or '.'}: no known migration layout; "
            "files taken in name order"
        )
    elif len(numbered) < len(srcs):
        loose = ", ".join(s.path for s in srcs if s not in numbered)
        acc.note(f"not numbered, ordered by name among the numbered files: {loose}")
    for s in sorted(srcs, key=lambda s: _natural_key(s.name)):
        acc.migrations.append(_migration(s, layout, *_version_name(s.name)))


def _build_fallback(srcs: list[_Source], acc: _Acc, why: str) -> None:
    """Unclear layout: name order, but files that look like downs are still never ups."""
    acc.note(f"{os.path.dirname(srcs[0].path) or '.'}: {why}; files taken in name order")
    downs = [s for s in srcs if s.name.endswith(".down.sql") or _is_flyway_undo(s.name)]
    _note_skipped(acc, downs, "looks like a down/undo migration")
    for s in sorted((s for s in srcs if s not in downs), key=lambda s: _natural_key(s.name)):
        acc.migrations.append(_migration(s, "plain", *_version_name(s.name)))


def _is_flyway_undo(name: str) -> bool:
    m = _FLYWAY_VERSIONED.match(name)
    return m is not None and m.group("kind") == "U"


def _build_supabase(srcs: list[_Source], acc: _Acc) -> None:
    # The Supabase CLI applies <timestamp>_<name>.sql files in timestamp order, each in a
    # transaction, and skips files that do not match the pattern.
    ok = [(s, m) for s in srcs if (m := re.match(r"^(\d+)_(.*)\.sql$", s.name))]
    _note_skipped(
        acc,
        [s for s in srcs if not re.match(r"^\d+_", s.name)],
        "not named <timestamp>_<name>.sql (Supabase ignores it)",
    )
    for s, m in sorted(ok, key=lambda p: (int(p[1].group(1)), p[0].name)):
        acc.migrations.append(
            _migration(s, "supabase", m.group(1), m.group(2), in_transaction=True)
        )


# The statements Flyway's PostgreSQL parser runs outside a transaction (its
# detectCanExecuteInTransaction, on a statement's leading keywords). ALTER TYPE ... ADD VALUE is
# on its list only before PostgreSQL 12, older than any major this tool judges by default.
_FLYWAY_NON_TRANSACTIONAL = re.compile(
    r"^(?:(?:CREATE|DROP) (?:DATABASE|TABLESPACE|SUBSCRIPTION)|ALTER SYSTEM"
    r"|(?:CREATE|DROP)(?: UNIQUE)? INDEX CONCURRENTLY|REINDEX(?: VERBOSE)? (?:SCHEMA|DATABASE|SYSTEM)"
    r"|VACUUM|DISCARD ALL)\b")
# A word every pattern above holds: a script without any of them needs no splitting.
_FLYWAY_NON_TRANSACTIONAL_WORD = re.compile(
    r"\b(?:concurrently|vacuum|discard|system|database|tablespace|subscription)\b", re.I)


def _flyway_in_transaction(src: _Source, acc: _Acc) -> bool:
    """Flyway wraps each PostgreSQL migration in a transaction unless the script's ``.conf``
    sibling says ``executeInTransaction=false``, or one of its statements cannot run in one
    (``_FLYWAY_NON_TRANSACTIONAL``): then it runs the script without a transaction. A script
    that also holds other statements it refuses (unless ``mixed`` is on): a note says so, and
    the script is modelled as wrapped, so the rules that need it alone still speak."""
    try:
        with open(src.abspath + ".conf", encoding="utf-8") as f:
            conf = f.read()
    except (OSError, UnicodeDecodeError):
        conf = ""
    m = re.search(r"^\s*executeInTransaction\s*=\s*(\w+)", conf, re.MULTILINE)
    if m and m.group(1).lower() == "false":
        return False
    if not _FLYWAY_NON_TRANSACTIONAL_WORD.search(src.text):
        return True  # nothing on the list (most scripts)
    from .parse import leading_words

    outside = [bool(_FLYWAY_NON_TRANSACTIONAL.match(w)) for w in leading_words(src.text)]
    if outside and all(outside):
        return False
    if any(outside):
        acc.note(f"{src.path}: Flyway refuses a migration that mixes statements it must run "
                 "outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...) with others, "
                 "unless mixed=true; put them in a migration of their own")
    return True


def _build_flyway(srcs: list[_Source], acc: _Acc) -> None:
    ups: dict[tuple[int, ...], tuple[_Source, re.Match[str]]] = {}
    undos: dict[tuple[int, ...], _Source] = {}
    repeatables: list[tuple[str, _Source]] = []
    other: list[_Source] = []
    for s in srcs:
        if m := _FLYWAY_VERSIONED.match(s.name):
            key = flyway_version_key(m.group("version"))
            is_up = m.group("kind") == "V"
            if key in (ups if is_up else undos):
                # Flyway refuses to run with two scripts of one version (1.1 and 1_1 included).
                first = ups[key][0] if is_up else undos[key]
                acc.problem(s.path, f"duplicate Flyway version {m.group('version')}: "
                                    f"{first.name} has it too, and Flyway refuses to migrate "
                                    "while two scripts share a version")
            elif is_up:
                ups[key] = (s, m)
            else:
                undos[key] = s
        elif m := _FLYWAY_REPEATABLE.match(s.name):
            repeatables.append((m.group("desc"), s))
        else:
            other.append(s)
    _note_skipped(acc, other, "not named V<version>__, U<version>__ or R__ (Flyway ignores it)")
    for key in sorted(ups):
        s, m = ups[key]
        undo = undos.pop(key, None)
        version = m.group("version").replace("_", ".")
        acc.migrations.append(
            _migration(
                s,
                "flyway",
                version,
                m.group("desc"),
                in_transaction=_flyway_in_transaction(s, acc),
                down=_down(undo) if undo else None,
            )
        )
    for undo in undos.values():
        acc.downs.append(_down(undo))
    # Repeatable migrations run after all versioned ones, ordered by description.
    for desc, s in sorted(repeatables, key=lambda p: (p[0], p[1].name)):
        acc.migrations.append(
            _migration(
                s, "flyway", None, desc, kind="repeatable", in_transaction=_flyway_in_transaction(s, acc)
            )
        )


@record
class _GoFile(Record):
    src: _Source
    version: str
    name: str
    dialect: str | None
    autocommit: bool
    up: bool


def _pick_dialect(files: list[_GoFile], acc: _Acc) -> _GoFile | None:
    """popx: a PostgreSQL-specific file replaces the generic one of the same version."""
    pg = [f for f in files if f.dialect in POSTGRES_DIALECTS]  # popx's names for PostgreSQL
    generic = [f for f in files if f.dialect is None]
    chosen = pg[0] if pg else generic[0] if generic else None
    for f in files:
        if f is chosen:
            continue
        if f.dialect is not None and f.dialect not in POSTGRES_DIALECTS:
            acc.note(f"{f.src.path}: skipped, written for {f.dialect}, not PostgreSQL")
        elif chosen is not None and f.dialect is None and chosen.dialect is not None:
            acc.note(f"{f.src.path}: skipped, {chosen.src.path} replaces it on PostgreSQL")
        else:
            acc.problem(f.src.path, f"duplicate migration version {f.version}")
    return chosen


def _build_golang(srcs: list[_Source], acc: _Acc, layout: str) -> None:
    by_version: dict[int, list[_GoFile]] = {}
    other: list[_Source] = []
    for s in srcs:
        m = _GOLANG.match(s.name)
        if not m:
            other.append(s)
            continue
        f = _GoFile(
            s,
            m.group("version"),
            m.group("name"),
            m.group("dialect"),
            bool(m.group("autocommit")),
            m.group("direction") == "up",
        )
        by_version.setdefault(int(f.version), []).append(f)
    _note_skipped(acc, other, "not named <version>_<name>.(up|down).sql")
    for version in sorted(by_version):
        files = by_version[version]
        up = _pick_dialect([f for f in files if f.up], acc)
        down = _pick_dialect([f for f in files if not f.up], acc)
        if up is None:
            if down is not None:
                acc.downs.append(_down(down.src))
            continue
        # golang-migrate's postgres driver sends a file as one multi-statement query, which
        # PostgreSQL runs as one implicit transaction -- but a file of a single statement runs
        # as that statement alone, outside any transaction block. popx wraps each migration in
        # a transaction except ".autocommit" files.
        if layout == "popx":
            in_tx = not up.autocommit
        else:
            in_tx = implicit_transaction(up.src.text)
        acc.migrations.append(
            _migration(
                up.src,
                layout,
                up.version,
                up.name,
                in_transaction=in_tx,
                down=_down(down.src) if down else None,
            )
        )


def _version_name(name: str) -> tuple[str | None, str]:
    """Leading number and the rest of a file name: ``010_add_x.sql`` -> ("010", "add_x")."""
    stem = name[:-4] if name.lower().endswith(".sql") else name
    m = re.match(r"^(\d+)[_-]?(.*)$", stem)
    return (m.group(1), m.group(2)) if m else (None, stem)


def _sectioned_key(s: _Source) -> tuple[object, ...]:
    version, _ = _version_name(s.name)
    return (int(version) if version else -1, s.name)


def _build_dbmate(srcs: list[_Source], acc: _Acc) -> None:
    for s in sorted(srcs, key=_sectioned_key):
        split = _split_markers(s, _DBMATE_MARKER)
        if split.up is None:
            acc.problem(s.path, "dbmate migration without a '-- migrate:up' line")
            continue
        # dbmate runs a section in a transaction unless its marker says transaction:false.
        no_tx = re.search(r"\btransaction:false\b", split.up_opts) is not None
        version, name = _version_name(s.name)
        acc.migrations.append(
            _migration(
                s,
                "dbmate",
                version,
                name,
                section=split.up,
                in_transaction=not no_tx,
                down=_down(s, split.down) if split.down else None,
            )
        )


def _build_goose(srcs: list[_Source], acc: _Acc) -> None:
    for s in sorted(srcs, key=_sectioned_key):
        split = _split_markers(s, _GOOSE_MARKER)
        if split.up is None:
            acc.problem(s.path, "goose migration without a '-- +goose Up' line")
            continue
        no_tx = _GOOSE_NO_TX.search(s.text) is not None
        version, name = _version_name(s.name)
        acc.migrations.append(
            _migration(
                s,
                "goose",
                version,
                name,
                section=split.up,
                in_transaction=not no_tx,
                down=_down(s, split.down) if split.down else None,
            )
        )


def implicit_transaction(text: str) -> bool:
    """A script sent as one simple query runs in an implicit transaction block when it holds
    more than one statement (PostgreSQL protocol docs, "Multiple Statements in a Simple
    Query"); a single statement runs on its own."""
    from .parse import count_statements

    return count_statements(text, limit=2) > 1


def _build_prisma(members: list[tuple[str, list[_Source]]], acc: _Acc) -> None:
    # Prisma applies migration folders in lexical order of their names and sends migration.sql
    # as one multi-statement script: an implicit transaction when it holds more than one
    # statement (hence the usual advice: CREATE INDEX CONCURRENTLY alone in its own migration).
    for dirname, srcs in sorted(members, key=lambda p: os.path.basename(p[0])):
        base = os.path.basename(dirname)
        m = _PRISMA_DIR.match(base)
        version, name = (m.group("version"), m.group("name")) if m else (None, base)
        for s in srcs:
            if s.name == "migration.sql":
                acc.migrations.append(_migration(s, "prisma", version, name,
                                                 in_transaction=implicit_transaction(s.text)))
            else:
                acc.note(f"{s.path}: skipped, Prisma only runs migration.sql")


def _manifest_order(vdir: str, display_dir: str, acc: _Acc) -> list[str] | None:
    """File order from a temporal-style manifest.json, or None when there is none."""
    path = os.path.join(vdir, "manifest.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
        files = data["SchemaUpdateCqlFiles"]
        if not isinstance(files, list) or not all(isinstance(x, str) for x in files):
            raise TypeError("SchemaUpdateCqlFiles is not a list of file names")
    except (OSError, ValueError, KeyError, TypeError) as e:
        acc.problem(os.path.join(display_dir, "manifest.json"), f"unusable manifest: {e}")
        return None
    return files


def _build_versioned(members: list[tuple[str, str, list[_Source]]], acc: _Acc) -> None:
    """temporal-style ``versioned/vX.Y/*.sql``: by directory version, then manifest or name.

    The schema tool runs each statement on its own, outside a transaction, hence
    in_transaction=False.
    """

    def key(member: tuple[str, str, list[_Source]]) -> tuple[int, ...]:
        m = _VERSION_DIR.match(os.path.basename(member[0]))
        return flyway_version_key(m.group("version")) if m else ()

    for vdir, display_dir, srcs in sorted(members, key=key):
        m = _VERSION_DIR.match(os.path.basename(vdir))
        version = m.group("version") if m else None
        by_name = {s.name: s for s in srcs}
        order = _manifest_order(vdir, display_dir, acc)
        if order is None:
            chosen = sorted(by_name)
        else:
            chosen = [n for n in order if n in by_name]
            for n in order:
                if n not in by_name:
                    acc.problem(os.path.join(display_dir, n), "listed in manifest.json but missing")
            _note_skipped(
                acc, [s for s in srcs if s.name not in order], "not listed in manifest.json"
            )
        for n in chosen:
            s = by_name[n]
            acc.migrations.append(_migration(s, "versioned-dirs", version, n[:-4]))


# --- classification ---------------------------------------------------------------------------
def _family(s: _Source) -> str | None:
    if _FLYWAY_VERSIONED.match(s.name) or _FLYWAY_REPEATABLE.match(s.name):
        return "flyway"
    if _GOLANG.match(s.name):
        return "golang"
    return None


def _classify(dirpath: str, srcs: list[_Source]) -> tuple[str, str]:
    """Layout of the ``.sql`` files directly in one directory, and why when unclear."""
    parts = os.path.normpath(dirpath).split(os.sep)
    if parts[-2:] == ["supabase", "migrations"]:
        return "supabase", ""
    dbmate = sum(1 for s in srcs if _DBMATE_MARKER.search(s.text))
    goose = sum(1 for s in srcs if _GOOSE_MARKER.search(s.text))
    if dbmate and goose:
        return "mixed", "both dbmate and goose markers"
    if dbmate:
        return "dbmate", ""
    if goose:
        return "goose", ""
    families = {f for s in srcs if (f := _family(s))}
    if len(families) > 1:
        return "mixed", "both Flyway and golang-migrate file names"
    if families == {"flyway"}:
        return "flyway", ""
    if families == {"golang"}:
        popx = any(
            (m := _GOLANG.match(s.name)) and (m.group("dialect") or m.group("autocommit"))
            for s in srcs
        )
        return ("popx" if popx else "golang-migrate"), ""
    return "plain", ""


def _build_dir_set(layout: str, srcs: list[_Source], acc: _Acc, why: str = "") -> None:
    builders: dict[str, Callable[[list[_Source], _Acc], None]] = {
        "plain": _build_plain,
        "supabase": _build_supabase,
        "flyway": _build_flyway,
        "golang-migrate": lambda s, a: _build_golang(s, a, "golang-migrate"),
        "popx": lambda s, a: _build_golang(s, a, "popx"),
        "dbmate": _build_dbmate,
        "goose": _build_goose,
    }
    if layout == "mixed":
        _build_fallback(srcs, acc, why)
    else:
        builders[layout](srcs, acc)


def _under(display_dir: str, name: str) -> str:
    """The display path of ``name`` in a directory shown as ``display_dir``."""
    return name if display_dir == "." else os.path.join(display_dir, name)


def _walk(root: str, display_root: str, acc: _Acc) -> dict[str, tuple[str, list[_Source]]]:
    """Readable ``.sql`` files per directory: {abs dir: (display dir, sources)}.

    As ``os.walk`` (top-down, symlinked directories listed but not entered), on ``scandir``
    entries: the directory listing says whether an entry is a file and whether it is a
    symlink, so a regular file costs no stat by path (``_read`` checks the size limit on the
    open descriptor) and ``_dedupe`` no lstat to know it is not a link (``acc.not_links``)."""
    found: dict[str, tuple[str, list[_Source]]] = {}
    pending = [(os.path.abspath(root), display_root)]
    while pending:
        abs_dir, display_dir = pending.pop()
        try:
            with os.scandir(abs_dir) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as e:
            acc.problem(display_dir, f"cannot read directory: {e.strerror or e}")
            continue
        srcs = []
        subdirs = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                # Hidden directories (.git, .venv) and node_modules never hold the project's
                # migrations; a symlinked directory is not entered (os.walk's default).
                if not name.startswith(".") and name not in _SKIP_DIRS and \
                        not entry.is_symlink():
                    subdirs.append(name)
                continue
            if name.startswith(".") or not name.lower().endswith(".sql"):
                continue
            try:  # "is it a regular file", following a symlink (a dangling one: skipped)
                if not entry.is_file():
                    continue
            except OSError:
                continue
            if not entry.is_symlink():
                acc.not_links.add(entry.path)
            src = _read(_under(display_dir, name), entry.path, acc)
            if src is not None:
                srcs.append(src)
        if srcs:
            found[abs_dir] = (display_dir, srcs)
        # Depth first in name order, as os.walk with sorted directory names.
        for name in reversed(subdirs):
            pending.append((os.path.join(abs_dir, name), _under(display_dir, name)))
    return found


def _is_prisma_member(absdir: str, srcs: list[_Source], forced: str | None) -> bool:
    has_sql = any(s.name == "migration.sql" for s in srcs)
    if forced == "prisma":
        return has_sql
    return has_sql and _PRISMA_DIR.match(os.path.basename(absdir)) is not None


def _is_version_member(absdir: str, forced: str | None) -> bool:
    if not _VERSION_DIR.match(os.path.basename(absdir)):
        return False
    if forced == "versioned-dirs":
        return True
    # A folder named v2 is common in plain projects; only a manifest or a "versioned" parent
    # makes it a temporal-style version folder.
    parent = os.path.basename(os.path.dirname(absdir))
    return parent == "versioned" or os.path.isfile(os.path.join(absdir, "manifest.json"))


def _discover_dir(arg: str, forced: str | None, acc: _Acc) -> None:
    display_root = os.path.normpath(arg)
    problems_before = len(acc.problems)
    found = _walk(arg, display_root, acc)
    if not found:
        # Unreadable files were reported already; "nothing found" would only add noise.
        if len(acc.problems) == problems_before:
            acc.problem(display_root, "no migration files found")
        return

    # Each "set" is (sort key, builder). Prisma and versioned folders group under their parent.
    prisma: dict[str, list[tuple[str, list[_Source]]]] = {}
    versioned: dict[str, list[tuple[str, str, list[_Source]]]] = {}
    per_dir: list[tuple[str, str, list[_Source]]] = []
    for absdir, (display_dir, srcs) in found.items():
        if forced in (None, "prisma") and _is_prisma_member(absdir, srcs, forced):
            prisma.setdefault(os.path.dirname(absdir), []).append((absdir, srcs))
        elif forced in (None, "versioned-dirs") and _is_version_member(absdir, forced):
            versioned.setdefault(os.path.dirname(absdir), []).append((absdir, display_dir, srcs))
        else:
            per_dir.append((absdir, display_dir, srcs))

    sets: list[tuple[str, str, Callable[[_Acc], None]]] = []
    for parent, members in prisma.items():
        sets.append((parent, "prisma", partial(_build_prisma, members)))
    for parent, vmembers in versioned.items():
        sets.append((parent, "versioned-dirs", partial(_build_versioned, vmembers)))

    flyway_srcs: list[_Source] = []
    loose: list[_Source] = []
    for absdir, _display_dir, srcs in per_dir:
        if forced in ("prisma", "versioned-dirs"):
            loose.extend(srcs)
            continue
        layout, why = (forced, "") if forced else _classify(absdir, srcs)
        if layout == "flyway":
            flyway_srcs.extend(srcs)  # Flyway scans subfolders: one set per argument
        elif layout == "plain" and not forced and not any(_NUMBERED.match(s.name) for s in srcs):
            loose.extend(srcs)  # decided below, once we know whether real sets exist
        else:
            sets.append((absdir, layout, partial(_build_dir_set, layout, srcs, why=why)))
    if flyway_srcs:
        sets.append((os.path.abspath(arg), "flyway", partial(_build_flyway, flyway_srcs)))

    if loose and (sets or forced):
        found_sets = ", ".join(sorted({s[1] for s in sets}))
        why = f"outside the {found_sets} migration set(s) found here" if sets else f"not {forced}"
        _note_skipped(acc, loose, why)
    elif loose:
        sets.append((os.path.abspath(arg), "plain", partial(_build_plain, loose)))

    sets.sort(key=lambda s: s[0])
    if len(sets) > 1:
        where = ", ".join(
            os.path.normpath(os.path.join(display_root, os.path.relpath(p, arg)))
            for p, _, _ in sets
        )
        acc.note(
            f"{display_root}: {len(sets)} migration sets found, listed one after another: {where}"
        )
    for _, _, build in sets:
        build(acc)


# --- single files -----------------------------------------------------------------------------
def _discover_file(arg: str, forced: str | None, acc: _Acc) -> None:
    src = _read(arg, os.path.abspath(arg), acc)
    if src is None:
        return
    layout = forced or _file_layout(src)
    if layout == "file":
        acc.migrations.append(_migration(src, "file", *_version_name(src.name)))
    elif layout == "versioned-dirs":
        parent = os.path.basename(os.path.dirname(src.abspath))
        m = _VERSION_DIR.match(parent)
        acc.migrations.append(
            _migration(src, layout, m.group("version") if m else None, src.name[:-4])
        )
    elif layout == "prisma":
        _build_prisma([(os.path.dirname(src.abspath), [src])], acc)
    else:
        _build_dir_set(layout, [src], acc)


def _file_layout(src: _Source) -> str:
    if _DBMATE_MARKER.search(src.text):
        return "dbmate"
    if _GOOSE_MARKER.search(src.text):
        return "goose"
    if _family(src) == "flyway":
        return "flyway"
    if m := _GOLANG.match(src.name):
        return "popx" if (m.group("dialect") or m.group("autocommit")) else "golang-migrate"
    return "file"


def _stdin(text: str | None, acc: _Acc) -> None:
    if text is None:
        acc.problem(STDIN_PATH, "'-' given but no standard input text was provided")
        return
    body = text[1:] if text.startswith("\ufeff") else text
    src = _Source(STDIN_PATH, "", STDIN_PATH, body,
                  FileBytes(body, body is not text, errors="surrogateescape"))
    acc.migrations.append(replace(_migration(src, "stdin", None, "stdin"), abspath=None))


# --- entry point ------------------------------------------------------------------------------
def _pair_loose_downs(acc: _Acc) -> None:
    """Attach downs found apart from their up (e.g. both given as file arguments)."""
    index = {
        (m.layout, m.version): i
        for i, m in enumerate(acc.migrations)
        if m.version is not None and m.down is None
    }
    for d in acc.downs:
        key = _down_key(d)
        i = index.get(key) if key else None
        if i is None:
            acc.note(f"{d.path}: down migration without its up migration; not checked")
            continue
        acc.migrations[i] = replace(acc.migrations[i], down=d)
        del index[key]  # type: ignore[arg-type]


def _down_key(d: Down) -> tuple[str, str] | None:
    name = os.path.basename(d.path)
    if m := _GOLANG.match(name):
        layout = "popx" if (m.group("dialect") or m.group("autocommit")) else "golang-migrate"
        return layout, m.group("version")
    if m := _FLYWAY_VERSIONED.match(name):
        return "flyway", m.group("version").replace("_", ".")
    return None


def _realpath(path: str, cache: dict[str, str], not_links: set[str]) -> str:
    """``os.path.realpath`` of a normalized path, resolving each directory once.

    realpath lstat's every component of every path it is given; migration files share their
    directories (a Prisma project has one per migration, all under one parent), so resolve a
    path as its resolved parent plus its own name unless it is itself a symlink.
    """
    real = cache.get(path)
    if real is None:
        head, tail = os.path.split(path)
        if not tail or head == path or (path not in not_links and os.path.islink(path)):
            real = os.path.realpath(path)
        else:
            real = os.path.join(_realpath(head, cache, not_links), tail)
        cache[path] = real
    return real


def _dedupe(migrations: list[Migration], acc: _Acc) -> list[Migration]:
    seen: set[str] = set()
    real: dict[str, str] = {}
    out = []
    for m in migrations:
        key = _realpath(m.abspath, real, acc.not_links) if m.abspath else f"{m.path}#{id(m)}"
        if key in seen:
            acc.note(f"{m.path}: given more than once; listed once")
            continue
        seen.add(key)
        out.append(m)
    return out


def _root(paths: Sequence[str]) -> str:
    if len(paths) == 1 and paths[0] != "-":
        if os.path.isdir(paths[0]):
            return os.path.normpath(paths[0])
        return os.path.dirname(os.path.normpath(paths[0])) or "."
    return "."


def excluded(path: str, patterns: Iterable[str]) -> bool:
    """Whether the config's ``exclude`` patterns leave a migration's display path out."""
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, f"*/{p}") for p in patterns)


def discover(
    paths: Sequence[str],
    *,
    stdin_text: str | None = None,
    layout: str | None = None,
    assume_in_transaction: bool | None = None,
    overlay: Mapping[str, str] | None = None,
    on_found: Callable[[Sequence[Migration]], None] | None = None,
) -> DiscoveryResult:
    """Find the up migrations under ``paths``, in apply order, with their downs paired.

    ``layout`` forces one of ``LAYOUTS`` instead of detecting it; ``assume_in_transaction``
    (a config override) replaces every migration's ``in_transaction`` when not None.
    ``overlay`` maps absolute paths to text read instead of those files' contents.
    ``on_found`` is called after each path with the migrations found under it, before the
    next path is read (a parse worker starts on them, ``pipeline.Worker.feed``); the result
    keeps their sections, less any given twice, in that order.
    """
    acc = _Acc(overlay=overlay or {})
    if layout is not None and layout not in LAYOUTS:
        acc.problem(".", f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        return DiscoveryResult((), tuple(acc.problems), (), _root(paths))
    found = 0
    for arg in paths:
        if arg == "-":
            _stdin(stdin_text, acc)
        elif os.path.isdir(arg):
            _discover_dir(arg, layout, acc)
        elif os.path.exists(arg):
            _discover_file(arg, layout, acc)
        else:
            acc.problem(arg, "no such file or directory")
        if on_found is not None and len(acc.migrations) > found:
            on_found(acc.migrations[found:])
            found = len(acc.migrations)
    _pair_loose_downs(acc)
    migrations = _dedupe(acc.migrations, acc)
    for m in migrations:
        _note_empty(acc, m)
    if assume_in_transaction is not None:
        migrations = [replace(m, in_transaction=assume_in_transaction) for m in migrations]
    return DiscoveryResult(tuple(migrations), tuple(acc.problems), tuple(acc.notes), _root(paths))
