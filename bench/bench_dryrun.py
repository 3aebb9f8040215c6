"""Benchmark the dry run against the physical floor: the same files in ONE psql session.

    python bench/bench_dryrun.py [MIGRATIONS_DIR]

Default: documenso's Prisma migrations in ../shared/corpus (163 files); skipped when absent.
Prints: server start time; psql floor (each file in its own transaction via \\i); the dry run
without idempotency/down checks (the primary figure) and its ratio to the floor; the dry run
with the checks, reported separately.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.replay import dry_run
from sqlsafe.dryrun.sandbox import open_sandbox

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "corpus" / "documenso" / "packages" / "prisma" / "migrations"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not target.exists():
        print(f"skipped: {target} not found")
        return 0
    disc = discover([str(target)])
    files = [m.abspath for m in disc.migrations if m.abspath]
    print(f"{len(disc.migrations)} migrations ({disc.migrations[0].layout}) from {target}")
    psql = sandbox_module._embedded_bindir(None).bindir / "psql"
    config = Config(pg_version=18)
    t0 = time.perf_counter()
    with open_sandbox("embedded") as sb:
        startup = time.perf_counter() - t0
        print(f"server start: {startup:.2f} s")
        floor_dsn = sb.create_database("floor")
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            for f in files:
                script.write(f"BEGIN;\n\\i '{f}'\nCOMMIT;\n")
        t = time.perf_counter()
        proc = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", floor_dsn,
                               "-f", script.name], capture_output=True, text=True)
        floor = time.perf_counter() - t
        Path(script.name).unlink()
        if proc.returncode:
            print(f"psql failed: {proc.stderr.strip()[:300]}")
        print(f"psql floor (one session, BEGIN; \\i; COMMIT per file): {floor:.2f} s")
        t = time.perf_counter()
        result = dry_run(disc, config, sandbox=sb, check_idempotency=False, check_down=False)
        replay = time.perf_counter() - t
        statuses = {s: sum(1 for m in result.migrations if m.status == s)
                    for s in ("applied", "failed", "skipped")}
        print(f"dry run (observed, no checks): {replay:.2f} s = {replay / floor:.2f}x the floor "
              f"{statuses}")
        sb.create_database("checks")
        checked = sb.connect("checks")
        checked.close()
    with open_sandbox("embedded") as sb:
        t = time.perf_counter()
        dry_run(disc, config, sandbox=sb, check_idempotency=True, check_down=True)
        print(f"dry run with idempotency + down checks: {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
