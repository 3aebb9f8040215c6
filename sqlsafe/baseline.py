"""Baselines: adopt sqlsafe on an old migration history without fixing (or suppressing) it all.

``--write-baseline FILE`` records today's findings by fingerprint; ``--baseline FILE`` then
drops findings whose fingerprint is recorded, as a multiset: if the baseline holds two of a
fingerprint and the code now has three, one is reported. Fingerprints carry no line numbers
(``sqlsafe.fingerprint``), so the baseline survives edits elsewhere in a file; a finding whose
statement text changes is new again, which is what a reviewer wants.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ._record import replace
from .fingerprint import fingerprints
from .model import LintResult

VERSION = 1


def _usage(message: str) -> Exception:
    # api.UsageError gives exit code 2 with a one-line reason; imported late because api
    # imports this module lazily too.
    from .api import UsageError

    return UsageError(message)


def baseline_payload(result: LintResult) -> dict[str, Any]:
    entries = [{"fingerprint": fp, "code": f.code, "rule": f.rule, "path": f.path,
                # line and message are for humans reading the file; matching ignores them.
                "line": f.span.line, "message": f.message}
               for f, fp in zip(result.findings, fingerprints(result.findings), strict=True)]
    return {"version": VERSION, "tool": "sqlsafe", "findings": entries}


def write_baseline(result: LintResult, path: str) -> None:
    text = json.dumps(baseline_payload(result), indent=2, ensure_ascii=False) + "\n"
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _usage(f"cannot write baseline {path}: {exc.strerror or exc}") from None


def read_baseline(path: str) -> Counter[str]:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _usage(f"baseline {path} not found (create it with --write-baseline {path})") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _usage(f"cannot read baseline {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _usage(f"baseline {path} is not valid JSON (line {exc.lineno}: {exc.msg})") \
            from None
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise _usage(f"baseline {path} is not a sqlsafe baseline (no 'findings' list)")
    if data.get("version") != VERSION:
        raise _usage(f"baseline {path} has version {data.get('version')!r}; "
                     f"this sqlsafe reads version {VERSION}")
    counts: Counter[str] = Counter()
    for i, entry in enumerate(data["findings"]):
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fp, str) or not fp:
            raise _usage(f"baseline {path}: finding {i} has no fingerprint")
        counts[fp] += 1
    return counts


def filter_baseline(result: LintResult, path: str) -> LintResult:
    known = read_baseline(path)
    kept = []
    hidden = 0
    for f, fp in zip(result.findings, fingerprints(result.findings), strict=True):
        if known[fp] > 0:
            known[fp] -= 1
            hidden += 1
            continue
        kept.append(f)
    notes = result.notes
    if hidden:
        notes = (*notes, f"{hidden} finding(s) in the baseline {path} not shown")
    return replace(result, findings=tuple(kept), notes=notes)
