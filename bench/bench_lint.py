"""Lint benchmark over ../shared/corpus: throughput, memory, single-file latency, squawk ratio.

    python bench/bench_lint.py            # prints figures; exits 0 (targets are reported, not asserted)
    python bench/bench_lint.py --rules    # also the number of findings per rule on the corpus

Targets (issue 2): wall time <= 1.5x squawk on the same file list; one file <= 0.2 s.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


def _sqlsafe_cmd() -> list[str]:
    exe = shutil.which("sqlsafe", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "sqlsafe"]


def in_process(projects: list[Path]) -> tuple[float, int, int, collections.Counter[str]]:
    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.lint import lint

    counts: collections.Counter[str] = collections.Counter()
    files = stmts = 0
    t0 = time.perf_counter()
    for project in projects:
        result = lint(discover([str(project)]), Config())
        files += len(result.files)
        stmts += len(result.statements)
        counts.update(f.code for f in result.findings)
    return time.perf_counter() - t0, files, stmts, counts


# pip compiles bytecode when it installs a package, so a user's CLI run loads .pyc files; a
# PYTHONDONTWRITEBYTECODE environment (some CI images) would make every run recompile sqlsafe
# and measure the compiler instead.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, after a warm-up run."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env=_ENV)  # warm-up: writes the bytecode caches as an install would have
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                       env=_ENV)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", action="store_true", help="print findings per rule")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: corpus not found at {CORPUS}")
        return 0
    projects = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    elapsed, files, stmts, counts = in_process(projects)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpus: {files} files, {stmts} statements in {elapsed:.2f} s "
          f"({files / elapsed:.0f} files/s, {stmts / elapsed:.0f} statements/s)")
    print(f"peak memory (RSS): {peak_mb:.0f} MB")
    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.lint import lint

    whole = discover([str(p) for p in projects])
    for worker, label in ((False, "in this process"), (True, "with the parse worker")):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            lint(whole, Config(), worker=worker)
            times.append(time.perf_counter() - t0)
        print(f"the corpus as one set, parsed {label}: median {statistics.median(times):.2f} s")

    one = CORPUS / "documenso" / "packages" / "prisma" / "migrations"
    single = next(iter(sorted(one.rglob("migration.sql"))), None) if one.is_dir() else None
    if single is None:
        single = next(iter(sorted(CORPUS.rglob("*.sql"))))
    lat = [wall([*_sqlsafe_cmd(), "lint", str(single)], repeat=1) for _ in range(7)]
    print(f"single file (CLI, incl. interpreter start-up): median {statistics.median(lat):.3f} s "
          f"(target <= 0.2 s)")

    # In process, warm: what a long-lived caller (an editor, a server) pays per file.
    from sqlsafe.config import Config
    from sqlsafe.discover import discover
    from sqlsafe.lint import lint

    one_disc = discover([str(single)])
    t0 = time.perf_counter()
    for _ in range(20):
        lint(one_disc, Config())
    print(f"single file (in process, warm): {(time.perf_counter() - t0) / 20 * 1000:.1f} ms")

    squawk = shutil.which("squawk") or shutil.which("squawk", path=str(Path(sys.executable).parent))
    # The same files for both tools: the up migrations discovery finds (downs and files of
    # other dialects are not linted by sqlsafe, so squawk does not get them either).
    file_list = [m.abspath for p in projects for m in discover([str(p)]).migrations if m.abspath]
    ours_cmd = [*_sqlsafe_cmd(), "lint", "--format", "json", *[str(p) for p in projects]]
    if squawk:
        # Alternating, so that both see the same phases of a machine whose speed drifts.
        pairs = [(wall(ours_cmd, repeat=1), wall([squawk, *file_list], repeat=1))
                 for _ in range(9)]
        ours = statistics.median(p[0] for p in pairs)
        theirs = statistics.median(p[1] for p in pairs)
        print(f"sqlsafe lint, whole corpus via CLI ({len(file_list)} files): median {ours:.2f} s")
        print(f"squawk on the same {len(file_list)} files: median {theirs:.2f} s; "
              f"ratio sqlsafe/squawk = {ours / theirs:.2f} (median of the pairs' ratios "
              f"{statistics.median(a / b for a, b in pairs):.2f}; target <= 1.5)")
    else:
        ours = wall(ours_cmd)
        print(f"sqlsafe lint, whole corpus via CLI ({len(file_list)} files): {ours:.2f} s")
        print("squawk not installed (pip install squawk-cli): ratio not measured")

    import sqlsafe

    if Path(sqlsafe.__file__).resolve().is_relative_to(REPO):
        print("note: sqlsafe runs from this checkout (an editable install): its import hooks "
              "add 20-30 ms to every CLI run, which `pip install .` (the quick start) does not")
    if args.rules:
        print("\nfindings per rule on the corpus:")
        print(json.dumps(dict(sorted(counts.items())), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
