"""Regenerate the committed reports in ``reports/`` from the migration sets in ``fixtures/``.

    python -m sqlsafe.report.refresh            # rewrite reports/<fixture>.md/.html/.json
    python -m sqlsafe.report.refresh --check    # exit 1 when a committed report is stale

Each fixture directory may hold ``setup.sql`` (what production already has), passed as
``--setup``; ``FIXTURES`` gives each fixture its dry-run-with-data options. The comparison
ignores what legitimately changes between runs and machines: durations, server and sqlsafe
versions, the schema hash (it covers version-specific catalog text) and OIDs.

Estimates at production size (``with_data/rollout``) change from run to run too: they are
timings, fitted and multiplied by a few thousand. The report shows them to two significant
figures ("≈ 1.6 min") with the basis they rest on — a coarse bucket ("1–10 min") would hide
the figure a reviewer compares with a maintenance window — and the comparison normalizes
them like durations: "≈ <n> <unit>", sizes, the fitted coefficients, the measured points and
the fit model's name (two noisy sub-millisecond timings may fit "constant" or "linear").
What the estimates decide — risk levels, the 5 s lock budget, the recommendation — is not
normalized: the fixture's row counts keep every statement far from a threshold (100 rows vs
100M), so a machine twice as fast or slow gives the same report.
tests/report/test_reports.py runs the check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# fixture directory -> dry-run-with-data options (``sqlsafe check`` flags of the same name)
OPTIONS: dict[str, dict[str, object]] = {
    "dlq_heartbeat": {},
    "prisma_backfill": {},
    "with_data/rollout": {
        "sample_rows": 1000, "measure_blocking": True, "inject_failures": True,
        "rows": "orders=100M,settings=100,workers=5000",
    },
}
FIXTURES = tuple(OPTIONS)
EXTENSIONS = {"markdown": "md", "html": "html", "json": "json"}

_RULES = (
    # durations: "3.5 ms", "1.02 s" in markdown/html; "duration_ms": 3.512 in json
    (re.compile(r"\b\d+(?:\.\d+)? (?:ms|s)\b"), "<duration>"),
    (re.compile(r'("(?:duration_ms|waited_ms)": )[0-9.eE+-]+'), r"\1<duration>"),
    (re.compile(r"(waited )\d+ ms"), r"\1<duration>"),
    # WAL written: the same statements write a few bytes more or less from run to run
    # (hint bits, the sandbox's own catalog reads) and from version to version
    (re.compile(r'("wal_bytes": )\d+'), r"\1<wal>"),
    (re.compile(r"\b\d+(?:\.\d+)? (?:B|kB|MB|GB) of WAL\b"), "<wal> of WAL"),
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
    # estimates at production size (see the module docstring)
    (re.compile(r"≈ \d+(?:\.\d+)? (?:ms|s|min|h|B|kB|MB|GB)\b"), "≈ <estimate>"),
    (re.compile(r"\b\d+(?:\.\d+)? (?:min|h)\b"), "<duration>"),
    (re.compile(r"(rows → )\d+(?:\.\d+)? (?:ms|s|min|h)"), r"\1<estimate>"),
    (re.compile(r"\b(?:linear|n log n) fit\b|\bconstant \(did not grow with the rows\)"),
     "<fit>"),
    (re.compile(r'("(?:estimated_ms|lock_hold_ms|relation_bytes|ms)": )[0-9.eE+-]+'),
     r"\1<estimate>"),
    (re.compile(r'("model": ")(?:linear|n log n|constant)'), r"\1<fit>"),
)


def normalize(text: str) -> str:
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def report_name(fixture: str) -> str:
    """reports/<name>.*: ``with_data/rollout`` -> ``with_data_rollout``."""
    return fixture.replace("/", "_")


def generate(fixture: str, *, engine: str = "embedded") -> dict[str, str]:
    """Run ``sqlsafe check`` on ``fixtures/<fixture>`` (real PostgreSQL) in every format,
    with the fixture's dry-run-with-data options."""
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
        run.data = _data(OPTIONS.get(fixture, {}))
        outcome = api.run_check(run, write=False)
        from . import render

        return {fmt: render(outcome.report, fmt) for fmt in EXTENSIONS}
    finally:
        os.chdir(here)


def _data(options: dict[str, object]) -> dict[str, object] | None:
    if not options:
        return None
    from ..dryrun import estimate as est

    data = {k: v for k, v in options.items() if k != "rows"}
    if "rows" in options:
        data["estimate_stats"] = est.parse_rows_option(str(options["rows"]))
    return data


def stale(fixture: str, rendered: dict[str, str]) -> list[str]:
    out = []
    for fmt, ext in EXTENSIONS.items():
        path = REPO / "reports" / f"{report_name(fixture)}.{ext}"
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
            name = report_name(fixture)
            (REPO / "reports" / f"{name}.{ext}").write_text(rendered[fmt], encoding="utf-8")
            print(f"wrote reports/{name}.{ext}")
    if bad:
        print("stale: " + ", ".join(bad) + " (refresh: python -m sqlsafe.report.refresh)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
