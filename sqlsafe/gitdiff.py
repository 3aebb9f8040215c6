"""``--changed-since REF``: which migrations a branch adds or changes, read from git.

Only those are reported, but every migration is still linted in order, so the schema state the
new ones see (tables, columns, indexes created earlier) is the real one (``lint(report_only=)``).

"Changed" is what this branch did since it left REF: ``git diff REF...HEAD`` (from the merge
base, so commits that landed on REF meanwhile don't count), plus uncommitted edits and untracked
files, which is what a pre-commit hook or a local run needs.

A migration that already existed at the merge base and was edited is worse than new: every
database that applied it will never run the edit (and Flyway, Prisma and Atlas refuse to start
on a checksum mismatch). That is rule CP901 (registered in rules/meta.py, found here).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from ._record import replace
from .model import DiscoveryResult, Finding, LintResult, Migration, Span

if TYPE_CHECKING:
    from .config import Config

from .rules.meta import EDITED

# Adding and modifying count; a deletion leaves nothing to lint. Renames are split into a
# deletion and an addition (--no-renames): a renumbered migration is a new one to its tool.
_CHANGED = frozenset("AMT")


def _usage(message: str) -> Exception:
    from .api import UsageError  # late: api imports this module lazily

    return UsageError(message)


@overload
def _git(args: list[str], cwd: str, *, binary: Literal[False] = False) -> str: ...
@overload
def _git(args: list[str], cwd: str, *, binary: Literal[True]) -> bytes: ...
def _git(args: list[str], cwd: str, *, binary: bool = False) -> str | bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False,
                              # No pager, no prompts: this runs in hooks and CI.
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0",
                                   "GIT_PAGER": "cat"})
    except FileNotFoundError:
        raise _usage("--changed-since needs git, and git is not on PATH") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(err[-1] if err else f"git {args[0]} failed ({proc.returncode})")
    return proc.stdout if binary else proc.stdout.decode("utf-8", "surrogateescape")


class GitError(Exception):
    pass


@dataclass(frozen=True)
class Edited:
    path: str  # display path
    whitespace_only: bool


@dataclass(frozen=True)
class Changes:
    ref: str
    base: str  # merge base of REF and HEAD
    paths: frozenset[str]  # display paths of migrations added or changed
    edited: tuple[Edited, ...] = ()


def _start_dir(discovery: DiscoveryResult) -> str:
    for m in discovery.migrations:
        if m.abspath:
            return os.path.dirname(m.abspath) or "."
    root = discovery.root if os.path.isdir(discovery.root) else "."
    return root


def _name_status(out: str) -> dict[str, str]:
    tokens = out.split("\0")
    result: dict[str, str] = {}
    for status, path in zip(tokens[0::2], tokens[1::2], strict=False):
        if status and path:
            result[path] = status[0]
    return result


def changes(discovery: DiscoveryResult, ref: str) -> Changes:
    if not ref or ref.startswith("-"):
        raise _usage(f"--changed-since: '{ref}' is not a git ref")
    start = _start_dir(discovery)
    try:
        top = _git(["rev-parse", "--show-toplevel"], start).strip()
    except GitError as exc:
        raise _usage(f"--changed-since needs a git repository ({start}: {exc})") from None
    try:
        _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top)
    except GitError:
        raise _usage(f"--changed-since: unknown git ref '{ref}' "
                     "(in CI, fetch it first, e.g. actions/checkout with fetch-depth: 0)") \
            from None
    try:
        base = _git(["merge-base", "--end-of-options", ref, "HEAD"], top).strip()
    except GitError as exc:
        raise _usage(f"--changed-since: no common history between '{ref}' and HEAD ({exc}); "
                     "a shallow clone needs more history (fetch-depth: 0)") from None

    status: dict[str, str] = {}
    status.update(_name_status(_git(
        ["diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", base, "HEAD"], top)))
    # Staged and unstaged edits on top of HEAD.
    for path, st in _name_status(_git(
            ["diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", "HEAD"], top)).items():
        if st == "D":
            status.pop(path, None)
        else:
            status[path] = "A" if status.get(path) == "A" else st
    for path in _git(["ls-files", "-z", "--others", "--exclude-standard"], top).split("\0"):
        if path:
            status[path] = "A"

    real_top = os.path.realpath(top)
    rel_of: dict[str, str] = {}
    reported: set[str] = set()
    for m in discovery.migrations:
        if m.abspath is None:  # stdin: nothing to compare with, so it is always new
            reported.add(m.path)
            continue
        rel = Path(os.path.relpath(os.path.realpath(m.abspath), real_top)).as_posix()
        if status.get(rel) in _CHANGED:
            reported.add(m.path)
            rel_of[m.path] = rel
    edited = _edited(discovery.migrations, rel_of, base, top)
    return Changes(ref, base, frozenset(reported), edited)


def _edited(migrations: tuple[Migration, ...], rel_of: dict[str, str], base: str,
            top: str) -> tuple[Edited, ...]:
    """Changed migrations whose file existed at the merge base with other content."""
    if not rel_of:
        return ()
    rels = sorted(set(rel_of.values()))
    at_base: dict[str, str] = {}
    listing = _git(["ls-tree", "-r", "-z", base, "--", *rels], top)
    for entry in listing.split("\0"):
        if "\t" in entry:
            info, tree_path = entry.split("\t", 1)
            at_base[tree_path] = info.split()[2]
    out: list[Edited] = []
    abspath = {m.path: m.abspath for m in migrations}
    for display, rel in sorted(rel_of.items()):
        old_blob = at_base.get(rel)
        path = abspath.get(display)
        if old_blob is None or path is None:
            continue
        new_blob = _git(["hash-object", "--", rel], top).strip()
        if new_blob == old_blob:
            continue
        old = _git(["cat-file", "blob", old_blob], top, binary=True)
        new = Path(path).read_bytes()
        out.append(Edited(display, _squash(old) == _squash(new)))
    return tuple(out)


def _squash(data: bytes) -> bytes:
    return re.sub(rb"\s+", b" ", data.lstrip(b"\xef\xbb\xbf")).strip()


def changed_paths(discovery: DiscoveryResult, ref: str) -> set[str]:
    """Display paths (``Migration.path``) of the migrations added or modified since REF."""
    return set(changes(discovery, ref).paths)


def add_edit_findings(result: LintResult, ch: Changes, config: Config) -> LintResult:
    """Append a CP901 finding for each edited merged migration (unless the rule is off)."""
    from .lint import selection

    sel = selection(config)
    if EDITED.code not in sel.enabled or not ch.edited:
        return result
    severity = sel.severity.get(EDITED.code, EDITED.severity)
    extra = []
    for e in ch.edited:
        what = ("only whitespace changed, but tools that verify checksums (Flyway, Prisma, "
                "Atlas) still refuse to run" if e.whitespace_only else
                "databases that already applied it will never run the edit, and tools that "
                "verify checksums (Flyway, Prisma, Atlas) refuse to start")
        extra.append(Finding(
            EDITED.code, EDITED.name, EDITED.category, severity, e.path, Span(1, 1, 1, 1),
            # No commit id in the message: it feeds the fingerprint of this statement-less
            # finding, which must not change each time the base branch moves.
            f"this migration already exists on {ch.ref} and was edited: {what}",
            "Revert the edit and put the change in a new migration.", "", EDITED.doc))
    findings = sorted([*result.findings, *extra], key=Finding.sort_key)
    return replace(result, findings=tuple(findings))
