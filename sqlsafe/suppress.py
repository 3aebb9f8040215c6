"""Inline suppressions: one syntax, one parser, shared by lint and the dry run.

    -- sqlsafe: ignore LK001[, timeout] reason="table has 200 rows" [until=2027-01-31]
    -- sqlsafe: ignore-file DS001 reason="scratch table dropped on purpose"
    /* sqlsafe: ignore LK001 reason="..." */
    -- noqa: sqlsafe-LK001 reason="..."          (the linters' noqa spelling, same meaning)

An ``ignore`` comment applies to the statement that follows it, or to the statement on the
same line when it trails one. A reason is required; without one the comment suppresses
nothing and is reported. Unknown rules, expired and unused suppressions are findings too.
"""

from __future__ import annotations

import datetime as dt
import re

from ._record import MutableRecord, field, record

_COMMENT_RE = re.compile(
    r"(?:--|/\*)\s*sqlsafe\s*:\s*(?P<verb>ignore-file|ignore)\b(?P<rest>[^\n]*?)(?:\*/|$)",
    re.I | re.M,
)
# ``noqa: sqlsafe-LK001, sqlsafe-timeout reason=...``: only the sqlsafe- entries are ours (a
# comment may list other tools' codes too); a bare ``sqlsafe`` entry means every rule.
_NOQA_RE = re.compile(r"(?:--|/\*)\s*noqa\s*:(?P<rest>[^\n]*?)(?:\*/|$)", re.I | re.M)
_REASON_RE = re.compile(r"""reason\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S.*?))\s*(?=\buntil\s*=|$)""", re.I)
_UNTIL_RE = re.compile(r"until\s*=\s*(\d{4}-\d{2}-\d{2})", re.I)


@record
class Suppression(MutableRecord):
    line: int
    column: int
    file_wide: bool
    rules: list[str]  # as written (codes or names); empty means every rule
    reason: str
    until: dt.date | None
    codes: set[str] = field(default_factory=set)  # resolved
    used: bool = False
    target_line: int = 0  # for statement suppressions: the first line of the statement


def parse_suppressions(text: str, line_offset: int = 0) -> list[Suppression]:
    out: list[Suppression] = []
    if "sqlsafe" not in text:
        return out
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    import bisect

    found = [(m, m.group("verb").lower() == "ignore-file") for m in _COMMENT_RE.finditer(text)]
    found += [(m, False) for m in _NOQA_RE.finditer(text) if "sqlsafe" in m.group("rest").lower()]
    found.sort(key=lambda item: item[0].start())
    for m, file_wide in found:
        noqa = m.re is _NOQA_RE
        rest = m.group("rest").strip()
        until = None
        um = _UNTIL_RE.search(rest)
        if um:
            try:
                until = dt.date.fromisoformat(um.group(1))
            except ValueError:
                until = None
        rm = _REASON_RE.search(rest)
        reason = ""
        head = rest
        if rm:
            reason = (rm.group("dq") or rm.group("sq") or rm.group("bare") or "").strip()
            head = rest[: rm.start()]
        if um and um.start() < len(head):
            head = head[: um.start()]
        rules = [r.strip() for r in re.split(r"[,\s]+", head) if r.strip()]
        if noqa:
            entries = [r for r in rules
                       if r.lower() == "sqlsafe" or r.lower().startswith("sqlsafe-")]
            if not entries:
                continue  # another tool's noqa that mentions sqlsafe in passing
            rules = [r[len("sqlsafe-"):] for r in entries if r.lower() != "sqlsafe"]
        li = bisect.bisect_right(line_starts, m.start()) - 1
        out.append(Suppression(li + 1 + line_offset, m.start() - line_starts[li] + 1,
                               file_wide, rules, reason, until))
    return out


def bind(suppressions: list[Suppression], statement_lines: list[tuple[int, int]]) -> None:
    """Attach each statement suppression to the statement it covers.

    ``statement_lines`` holds (first line, last line) of every statement in file order.
    """
    for s in suppressions:
        if s.file_wide:
            continue
        for first, last in statement_lines:
            if first <= s.line <= last:  # trailing comment on the statement's own lines
                s.target_line = first
                break
            if first > s.line:
                s.target_line = first
                break


def is_expired(s: Suppression, today: dt.date | None = None) -> bool:
    return s.until is not None and (today or dt.date.today()) > s.until
