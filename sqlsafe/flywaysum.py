"""Flyway's checksums: check the scripts against what ``flyway_schema_history`` recorded.

Flyway (version 4 and later) records for each SQL migration a CRC-32 of its lines: read line
by line (``\\n``, ``\\r\\n`` and ``\\r`` end a line and are not part of it), a BOM dropped from
the first, each line's UTF-8 bytes fed in turn, the result a signed 32-bit integer. ``flyway
validate`` fails when an applied versioned script's checksum differs, when an applied version
has no script any more, and (without ``outOfOrder``) when a new script's version is below the
highest applied one. It says "checksum mismatch"; ``sqlsafe checksum --verify
--flyway-history FILE`` says which script, and whether the edit is cosmetic (comments,
whitespace, line endings) or changes the SQL, when git history holds the applied version.

The history comes as the export of one query, CSV (``psql --csv``) or JSON (a list of
objects): ``SELECT version, script, checksum, success FROM flyway_schema_history``.
"""

from __future__ import annotations

import binascii
import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

from .checksum import Problem, edit_kind
from .discover import flyway_version_key
from .model import DiscoveryResult

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def checksum(data: bytes) -> int:
    """Flyway's checksum of a script's bytes (UTF-8)."""
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    value = 0
    for line in _LINE_BREAK.split(text):
        value = binascii.crc32(line.encode("utf-8"), value)
    return value - (1 << 32) if value >= (1 << 31) else value


class HistoryError(ValueError):
    pass


def load_history(text: str, source: str) -> list[dict[str, Any]]:
    """The history rows (version, script, checksum, success) from a CSV or JSON export."""
    stripped = text.lstrip()
    rows: list[dict[str, Any]]
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{source}: invalid JSON: {exc}") from None
        if not all(isinstance(r, dict) for r in data):
            raise HistoryError(f"{source}: expected a list of objects")
        rows = [{str(k).lower(): v for k, v in r.items()} for r in data]
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = [{(k or "").strip().lower(): v for k, v in r.items()} for r in reader]
    out = []
    for number, row in enumerate(rows, 1):
        if "script" not in row or "checksum" not in row:
            raise HistoryError(f"{source}: row {number} lacks script or checksum (export "
                               "SELECT version, script, checksum, success FROM "
                               "flyway_schema_history)")
        checksum_value = row.get("checksum")
        try:
            recorded = int(checksum_value) if checksum_value not in (None, "") else None
        except (TypeError, ValueError):
            raise HistoryError(f"{source}: row {number}: checksum {checksum_value!r} is not "
                               "an integer") from None
        success = row.get("success", True)
        if isinstance(success, str):
            success = success.strip().lower() in ("t", "true", "1", "yes")
        out.append({"version": (row.get("version") or "") or None, "script": row["script"],
                    "checksum": recorded, "success": bool(success)})
    return out


def _matches(recorded: int) -> Callable[[bytes], bool]:
    def match(data: bytes) -> bool:
        return checksum(data) == recorded

    return match


def verify(discovery: DiscoveryResult, history: list[dict[str, Any]]
           ) -> tuple[list[Problem], list[str]]:
    """What ``flyway validate`` would refuse, script by script, and the pending scripts (new
    ones above the highest applied version: what a change is expected to add)."""
    problems: list[Problem] = []
    pending: list[str] = []
    files = {flyway_version_key(m.version): m for m in discovery.migrations
             if m.layout == "flyway" and m.kind == "versioned" and m.version and m.abspath}
    applied: dict[tuple[int, ...], dict[str, Any]] = {}
    for row in history:
        if row["version"] is None:
            continue  # a repeatable migration: Flyway runs it again when it changes
        try:
            key = flyway_version_key(str(row["version"]))
        except ValueError:
            continue  # the baseline marker row and other non-numeric versions
        if not row["success"]:
            problems.append(Problem(row["script"], "failed",
                                    "recorded as failed: flyway validate refuses until "
                                    "'flyway repair' removes the row"))
            continue
        applied[key] = row
    for key, row in sorted(applied.items()):
        migration = files.get(key)
        if migration is None:
            if row["checksum"] is None:
                continue  # a baseline row: no script expected
            problems.append(Problem(row["script"], "removed",
                                    "applied, but no script has its version any more "
                                    "(Flyway: 'applied migration not resolved locally')"))
            continue
        assert migration.abspath is not None
        with open(migration.abspath, "rb") as f:
            now = checksum(f.read())
        recorded = row["checksum"]
        if recorded is not None and now != recorded:
            detail = edit_kind(migration.abspath, _matches(recorded))
            problems.append(Problem(migration.path, "modified",
                                    f"Flyway recorded checksum {recorded}, the script now has "
                                    f"{now}: {detail}"))
    highest = max(applied) if applied else None
    for key, migration in sorted(files.items()):
        if key in applied:
            continue
        if highest is not None and key < highest:
            problems.append(Problem(migration.path, "out-of-order",
                                    f"new, but its version is below the highest applied one "
                                    f"({applied[highest]['version']}): Flyway skips or refuses "
                                    "it unless outOfOrder=true"))
        else:
            pending.append(migration.path)
    return problems, pending
