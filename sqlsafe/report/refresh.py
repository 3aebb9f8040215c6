"""Regenerate the committed reports in ``reports/`` from the migration sets in ``fixtures/``.

    python -m sqlsafe.report.refresh            # rewrite reports/<fixture>.md/.html/.json
    python -m sqlsafe.report.refresh --check    # exit 1 when a committed report is stale

Each fixture directory may hold ``setup.sql`` (what production already has), passed as
``--setup``. The comparison ignores what legitimately changes between runs and machines:
durations, server and sqlsafe versions, the schema hash (it covers version-specific catalog
text) and OIDs. tests/report/test_reports.py runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = ("dlq_heartbeat", "prisma_backfill")
EXTENSIONS = {"markdown": "md", "html": "html", "json": "json"}

_RULES = (
    # durations: "3.5 ms", "1.02 s" in markdown/html; "duration_ms": 3.512 in json
    (re.compile(r"\b\d+(?:\.\d+)? (?:ms|s)\b"), "<duration>"),
    (re.compile(r'("(?:duration_ms|waited_ms)": )[0-9.eE+-]+'), r"\1<duration>"),
    (re.compile(r"(waited )\d+ ms"), r"\1<duration>"),
    # versions
    (re.compile(r"(PostgreSQL )\d+(?:\.\d+)?"), r"\1<version>"),
    (re.compile(r'("server_version": ")[^"]*'), r"\1<version>"),
    (re.compile(r"(sqlsafe )\d+\.\d+\.\d+\S*"), r"\1<version>"),
    (re.compile(r'("sqlsafe_version": ")[^"]*'), r"\1<version>"),
    (re.compile(r'(<td>)\d+\.\d+(?:\.\d+)?(</td>)'), r"\1<version>\2"),
    (re.compile(r"(\| (?:sqlsafe|PostgreSQL) \| )[^|]+"), r"\1<version> "),
    # the schema hash and OIDs
    (re.compile(r"(Schema after the set \(sha256\)(?: \||</th><td>) ?)[0-9a-f]{64}"), r"\1<sha>"),
    (re.compile(r'("schema_sha256": ")[0-9a-f]{64}'), r"\1<sha>"),
    (re.compile(r"\b(oid|OID) \d+"), r"\1 <oid>"),
)


def normalize(text: str) -> str:
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def generate(fixture: str, *, engine: str = "embedded") -> dict[str, str]:
    """Run ``sqlsafe check`` on ``fixtures/<fixture>`` (real PostgreSQL) in every format."""
    import os

    from .. import api
    from ..config import load_config

    here = os.getcwd()
    os.chdir(REPO)  # reports show paths relative to the repository, the same on every machine
    try:
        directory = f"fixtures/{fixture}"
        setup_file = Path(directory) / "setup.sql"
        setup = str(setup_file) if setup_file.is_file() else None
        config = load_config(None, Path(directory))
        run = api.CheckRun(paths=(directory,), config=config, engine=engine, setup=setup)
        outcome = api.run_check(run, write=False)
        from . import render

        return {fmt: render(outcome.report, fmt) for fmt in EXTENSIONS}
    finally:
        os.chdir(here)


def stale(fixture: str, rendered: dict[str, str]) -> list[str]:
    out = []
    for fmt, ext in EXTENSIONS.items():
        path = REPO / "reports" / f"{fixture}.{ext}"
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        if normalize(old) != normalize(rendered[fmt]):
            out.append(str(path.relative_to(REPO)))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    bad: list[str] = []
    for fixture in FIXTURES:
        rendered = generate(fixture)
        if check:
            bad += stale(fixture, rendered)
            continue
        (REPO / "reports").mkdir(exist_ok=True)
        for fmt, ext in EXTENSIONS.items():
            (REPO / "reports" / f"{fixture}.{ext}").write_text(rendered[fmt], encoding="utf-8")
            print(f"wrote reports/{fixture}.{ext}")
    if bad:
        print("stale: " + ", ".join(bad) + " (refresh: python -m sqlsafe.report.refresh)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
