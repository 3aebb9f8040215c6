"""checksum.txt: a ``sha256sum``-format manifest of the migration files, and its verification.

The file is exactly what ``sha256sum`` prints (``<hex>  <path>``, one line per file), so
``sha256sum -c checksum.txt`` run in the migrations directory checks it with no sqlsafe at all.
It lists every file discovery uses, in apply order, each up migration followed by its paired
down migration (a down file is part of the reviewed change: a backout that was edited after
review is as dangerous as an edited up). Paths are relative to the directory given.

``verify`` goes further than ``sha256sum -c``: it names files added since the manifest, files
added *before* an already-listed migration (non-linear history: a tool that has already applied
the later one will skip or reject it), files that changed place, and tells a cosmetic edit
(comments, whitespace, line endings only) from a semantic one when it can find the recorded
version of the file in git history.

No psycopg, no jinja2: this module is on the cheap path.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .model import DiscoveryResult

MANIFEST = "checksum.txt"


@dataclass(frozen=True)
class Entry:
    sha256: str
    path: str  # relative to the manifest's directory, with '/' separators


@dataclass(frozen=True)
class Problem:
    path: str
    kind: str  # modified | removed | added | out-of-order | reordered | unreadable | malformed
    detail: str = ""

    def line(self) -> str:
        return f"{self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def files_of(discovery: DiscoveryResult) -> list[tuple[str, str]]:
    """(path relative to the root, absolute path) of every file discovery uses, in apply order:
    each up migration, then its down if it lives in another file. stdin has no file: skipped."""
    root = os.path.abspath(discovery.root)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []

    def add(abspath: str | None) -> None:
        if abspath is None:
            return
        real = os.path.abspath(abspath)
        if real in seen:
            return  # dbmate/goose keep up and down in one file
        seen.add(real)
        out.append((Path(os.path.relpath(real, root)).as_posix(), real))

    for m in discovery.migrations:
        add(m.abspath)
        if m.down is not None:
            add(m.down.abspath)
    return out


def entries_of(discovery: DiscoveryResult) -> list[Entry]:
    return [Entry(sha256_file(abspath), rel) for rel, abspath in files_of(discovery)]


def _escape(path: str) -> tuple[str, str]:
    """sha256sum's escaping: a name holding a backslash or newline gets a leading backslash."""
    if "\\" in path or "\n" in path or "\r" in path:
        return "\\", path.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "", path


def render(entries: list[Entry]) -> str:
    lines = []
    for e in entries:
        prefix, name = _escape(e.path)
        lines.append(f"{prefix}{e.sha256}  {name}")
    return "".join(line + "\n" for line in lines)


def parse(text: str) -> tuple[list[Entry], list[Problem]]:
    entries: list[Entry] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        digest, sep, name = line.partition("  ")
        if not sep:
            # sha256sum --binary writes '<hex> *<path>'.
            digest, sep, name = line.partition(" *")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            problems.append(Problem(f"line {number}", "malformed", raw[:80]))
            continue
        if escaped:
            name = name.replace("\\n", "\n").replace("\\r", "\r").replace("\\\\", "\\")
        entries.append(Entry(digest.lower(), name))
    return entries, problems


def write(discovery: DiscoveryResult, out: str | None = None) -> tuple[str, list[Entry]]:
    entries = entries_of(discovery)
    target = out or os.path.join(discovery.root, MANIFEST)
    Path(target).write_text(render(entries), encoding="utf-8", newline="\n")
    return target, entries


def verify(discovery: DiscoveryResult, manifest_text: str) -> list[Problem]:
    """Every difference between the manifest and the files discovery finds now."""
    recorded, problems = parse(manifest_text)
    current = files_of(discovery)
    root = os.path.abspath(discovery.root)
    rec_pos = {e.path: i for i, e in enumerate(recorded)}
    cur_paths = [rel for rel, _ in current]
    cur_set = set(cur_paths)
    # Modified / removed, in manifest order.
    for e in recorded:
        if e.path not in cur_set:
            full = os.path.join(root, e.path)
            if os.path.exists(full):
                problems.append(Problem(e.path, "removed",
                                        "still on disk, but no longer part of the migration set"))
            else:
                problems.append(Problem(e.path, "removed"))
            continue
        full = os.path.join(root, e.path)
        try:
            digest = sha256_file(full)
        except OSError as exc:
            problems.append(Problem(e.path, "unreadable", exc.strerror or str(exc)))
            continue
        if digest != e.sha256:
            problems.append(Problem(e.path, "modified", _edit_kind(full, e.sha256)))
    # Added and reordered, in apply order.
    last_listed: str | None = None  # the latest already-listed file applied so far
    max_pos = -1
    listed_after: dict[str, str] = {}
    for rel in cur_paths:
        if rel in rec_pos:
            pos = rec_pos[rel]
            if pos < max_pos and last_listed is not None:
                problems.append(Problem(rel, "reordered",
                                        f"was listed before {last_listed}, now applies after it"))
            elif pos > max_pos:
                max_pos, last_listed = pos, rel
            continue
        listed_after[rel] = last_listed or ""
    for rel, _ in current:
        if rel not in listed_after:
            continue
        problems.append(new_file(rel, _first_listed_after(rel, cur_paths, rec_pos)))
    return problems


def new_file(path: str, later: str | None, comes: str = "applies") -> Problem:
    """A file the manifest does not list: added, or out of order when it ``comes`` before
    ``later``, a file the manifest lists."""
    if later is None:
        return Problem(path, "added")
    return Problem(path, "out-of-order",
                   f"new, but {comes} before already-listed {later}: a database that already "
                   "ran that one will not apply it (non-linear history)")


def _first_listed_after(rel: str, cur_paths: list[str], rec_pos: dict[str, int]) -> str | None:
    i = cur_paths.index(rel)
    for later in cur_paths[i + 1:]:
        if later in rec_pos:
            return later
    return None


# ---------------------------------------------------------------------------- cosmetic edits


def _edit_kind(full: str, recorded_sha: str) -> str:
    return edit_kind(full, lambda data: hashlib.sha256(data).hexdigest() == recorded_sha)


def edit_kind(full: str, recorded: Callable[[bytes], bool]) -> str:
    """Cosmetic or semantic: ``full`` against its version in git history for which
    ``recorded`` (the recorded checksum matches) holds."""
    old = _recorded_version(full, recorded)
    if old is None:
        return "content differs; the recorded version is not in git history, so sqlsafe " \
               "cannot tell a cosmetic from a semantic edit"
    try:
        new = Path(full).read_bytes()
    except OSError:
        return "content differs"
    if normalized(_decode(old)) == normalized(_decode(new)):
        return "cosmetic edit: only comments, whitespace or line endings changed"
    return "semantic edit: the SQL itself changed"


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace")


def _recorded_version(full: str, recorded: Callable[[bytes], bool],
                      limit: int = 50) -> bytes | None:
    """The content of ``full`` for which ``recorded`` holds, searched in the working tree's
    git history (index, then the last ``limit`` commits touching it). None when not found."""
    directory = os.path.dirname(full)
    name = os.path.basename(full)

    def git(*args: str) -> bytes | None:
        try:
            proc = subprocess.run(["git", *args], cwd=directory, capture_output=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    candidates = [":./" + name]
    log = git("log", f"-n{limit}", "--format=%H", "--", name)
    if log:
        candidates += [f"{c}:./{name}" for c in log.decode().split()]
    for spec in candidates:
        data = git("show", spec)
        if data is not None and recorded(data):
            return data
    return None


_PUNCT = set("(),;=[]")


def normalized(sql: str) -> str:
    """The SQL with comments removed, whitespace runs collapsed to one space and line endings
    unified; string literals, quoted identifiers and dollar-quoted bodies are kept verbatim."""
    out: list[str] = []
    i, n = 0, len(sql)
    pending_space = False

    def emit(text: str) -> None:
        nonlocal pending_space
        # A space next to punctuation carries no meaning: "( id )" is "(id)".
        if pending_space and out and out[-1][-1:] not in _PUNCT and text[:1] not in _PUNCT:
            out.append(" ")
        pending_space = False
        out.append(text)

    while i < n:
        c = sql[i]
        if c.isspace():
            pending_space = True
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            pending_space = True
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2  # PostgreSQL block comments nest
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            pending_space = True
        elif c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            emit(sql[i:j + 1].replace("\r\n", "\n"))
            i = j + 1
        elif c == "$":
            end = sql.find("$", i + 1)
            tag = sql[i:end + 1] if end > 0 else ""
            if tag and all(ch.isalnum() or ch == "_" for ch in tag[1:-1]) and \
                    not tag[1:2].isdigit():
                close = sql.find(tag, end + 1)
                close = n if close < 0 else close + len(tag)
                emit(sql[i:close].replace("\r\n", "\n"))
                i = close
            else:
                emit(c)
                i += 1
        else:
            j = i
            while j < n and not sql[j].isspace() and sql[j] not in "'\"$" and \
                    not sql.startswith("--", j) and not sql.startswith("/*", j):
                j += 1
            emit(sql[i:j])
            i = j
    return "".join(out)
