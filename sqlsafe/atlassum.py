"""atlas.sum: verify (and write) the integrity file of an Atlas migration directory.

Atlas refuses to plan, lint or apply a directory whose ``atlas.sum`` does not match its files,
and ``sqlsafe checksum --verify`` checks the same file without Atlas, saying which file broke it.

The format, as Atlas computes it: the directory's ``*.sql`` files (not its subdirectories),
sorted by name. One SHA-256 runs over the whole list: for each file its name, then its
bytes; after each file the running digest, base64-encoded, is that file's hash (``name
h1:<hash>``). A file whose first line carries ``atlas:sum ignore`` adds its name to the
running digest but not its bytes, and gets no line. The first line of atlas.sum, ``h1:<sum>``,
is the base64 SHA-256 of every listed name followed by its hash.

Because each hash covers every file before it, an edit shows in the first file that changed
and in every file after it: only the first changed file can be named.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from .checksum import Problem, new_file

FILENAME = "atlas.sum"
# Atlas's directive pattern, matched at the start of the file's content.
_DIRECTIVE = re.compile(r"^([ -~]*)atlas:(\w+)(?: +([ -~]*))*")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def sql_files(directory: str) -> list[tuple[str, bytes]]:
    """(name, bytes) of the directory's ``*.sql`` files in Atlas's order (by name)."""
    # Atlas sorts names as bytes (Go strings); so does os.fsencode's order, also for a name
    # that is not UTF-8.
    names = sorted((n for n in os.listdir(directory)
                    if n.endswith(".sql") and os.path.isfile(os.path.join(directory, n))),
                   key=os.fsencode)
    out = []
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            out.append((name, f.read()))
    return out


def _ignored(data: bytes) -> bool:
    m = _DIRECTIVE.match(data.decode("utf-8", errors="replace"))
    return m is not None and m.group(2) == "sum" and m.group(3) == "ignore"


def hashes(files: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """(name, hash) of each file that atlas.sum lists, in order."""
    running = hashlib.sha256()
    out = []
    for name, data in files:
        running.update(os.fsencode(name))
        if _ignored(data):
            continue
        running.update(data)
        out.append((name, _b64(running.copy().digest())))
    return out


def total(entries: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, digest in entries:
        h.update(os.fsencode(name))
        h.update(digest.encode("utf-8"))
    return _b64(h.digest())


def render(entries: list[tuple[str, str]]) -> str:
    return f"h1:{total(entries)}\n" + "".join(f"{n} h1:{h}\n" for n, h in entries)


def parse(text: str) -> tuple[str | None, list[tuple[str, str]], list[Problem]]:
    """(the recorded sum, the listed (name, hash) pairs, lines that are not atlas.sum's)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("h1:"):
        return None, [], [Problem(FILENAME, "malformed", "the first line is not 'h1:<sum>'")]
    entries: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for number, line in enumerate(lines[1:], 2):
        name, sep, digest = line.partition("h1:")
        if not sep:
            if line.strip():
                problems.append(Problem(f"line {number}", "malformed", line[:80]))
            continue
        entries.append((name.strip(), digest))
    return lines[0][3:], entries, problems


def verify(directory: str, text: str) -> tuple[list[Problem], int]:
    """What differs between ``atlas.sum`` (its ``text``) and the directory's files now, and
    how many files atlas.sum would list today (0 when they could not be read)."""
    recorded_sum, recorded, problems = parse(text)
    if recorded_sum is None:
        return problems, 0
    if recorded_sum != total(recorded):
        problems.append(Problem(FILENAME, "malformed",
                                "its first line does not match the lines under it: the file "
                                "was edited by hand or merged badly"))
    try:
        files = sql_files(directory)
    except OSError as exc:
        return [*problems, Problem(directory, "unreadable", exc.strerror or str(exc))], 0
    content = dict(files)
    recorded_hash = dict(recorded)
    removed = sorted(name for name in recorded_hash if name not in content)
    problems += [Problem(name, "removed") for name in removed]
    # Replay the running digest over the files as atlas.sum saw them: today's files less the
    # new ones (ignored files count by name, as Atlas counts them). The first listed file
    # whose hash differs is the first edit; the ones after it cannot be told apart, and none
    # after a removed file can be checked (its bytes are gone).
    running = hashlib.sha256()
    for name, data in files:
        if removed and name > removed[0]:
            break
        ignored = _ignored(data)
        if not ignored and name not in recorded_hash:
            continue  # new since atlas.sum was written: reported below
        running.update(os.fsencode(name))
        if ignored:
            continue
        running.update(data)
        if _b64(running.copy().digest()) != recorded_hash[name]:
            later = any(n > name for n in recorded_hash)
            detail = "content differs from when atlas.sum was written"
            if later:
                detail += ("; the files after it cannot be checked one by one (each hash "
                           "covers every file before it)")
            problems.append(Problem(name, "modified", detail))
            break
    recorded_names = sorted(recorded_hash)
    # The files atlas.sum would list today (its hashes are not needed: only which are new).
    listed = [name for name, data in files if not _ignored(data)]
    for name in listed:
        if name in recorded_hash:
            continue
        after = next((r for r in recorded_names if r > name and r in content), None)
        problems.append(new_file(name, after, "sorts"))
    return problems, len(listed)
