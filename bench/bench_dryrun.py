"""Benchmark the dry run against the physical floor: the same files in ONE psql session.

    python bench/bench_dryrun.py [MIGRATIONS_DIR] [--runs N]

Default: documenso's Prisma migrations in ../shared/corpus (163 files); skipped when absent.
Each figure is the median of N runs (default 3; this machine varies ±30% run to run), each on
a fresh sandbox. Prints: server start time and its phases; the psql floor (each file in its
own transaction via \\i); the dry run without idempotency/down checks (the primary figure) and
its ratio to the floor; the dry run with the checks. Start-up is the server's start plus the
scratch database's set-up (created from the template, connected, its catalog read: the
result's ``setup_ms``); the replay is the migrations themselves (``replay_ms``), as the floor
is the files themselves (its database is created before the clock starts). The dry run gets the lint result, as the
CLI passes it (the per-statement predictions decide which observations can be skipped).

``--split`` then also replays with the observation queries swapped for ones that return
nothing (an experiment, not a mode: the results are wrong), to show what each costs: the
catalog snapshot after each migration, the lock query after each statement, and both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlsafe.config import Config
from sqlsafe.discover import discover
from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.replay import dry_run
from sqlsafe.dryrun.sandbox import open_sandbox
from sqlsafe.lint import lint

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "corpus" / "documenso" / "packages" / "prisma" / "migrations"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--split", action="store_true",
                        help="also time the replay without each kind of observation query")
    args = parser.parse_args()
    target = Path(args.target)
    if not target.exists():
        print(f"skipped: {target} not found")
        return 0
    disc = discover([str(target)])
    files = [m.abspath for m in disc.migrations if m.abspath]
    print(f"{len(disc.migrations)} migrations ({disc.migrations[0].layout}) from {target}")
    psql = sandbox_module._embedded_bindir(None).bindir / "psql"
    config = Config(pg_version=18)
    lint_result = lint(disc, config, keep_parsed=True)  # as the CLI does
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        for f in files:
            script.write(f"BEGIN;\n\\i '{f}'\nCOMMIT;\n")
    figures: dict[str, list[float]] = {}
    phases: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    try:
        for run in range(args.runs):
            t0 = time.perf_counter()
            with open_sandbox("embedded") as sb:
                figures.setdefault("start", []).append(time.perf_counter() - t0)
                for phase, seconds in sb.startup_phases.items():
                    phases.setdefault(phase, []).append(seconds)
                seconds, proc, cpu_floor = _floor(sb, psql, script.name, cpu=True)
                figures.setdefault("floor", []).append(seconds)
                if proc.returncode and run == 0:
                    print(f"psql stopped: {proc.stderr.strip().splitlines()[0][:200]}")
                cpu = _server_cpu(sb.server_pid)
                t = time.perf_counter()
                result = dry_run(disc, config, sandbox=sb, lint_result=lint_result,
                                 check_idempotency=False, check_down=False)
                figures.setdefault("dry_run", []).append(time.perf_counter() - t)
                cpu_dry_run = _server_cpu(sb.server_pid)
                if cpu is not None and cpu_floor is not None and cpu_dry_run is not None:
                    figures.setdefault("cpu floor", []).append(cpu_floor)
                    figures.setdefault("cpu dry run", []).append(cpu_dry_run - cpu)
                figures.setdefault("setup", []).append(result.setup_ms / 1000)
                figures.setdefault("replay", []).append(result.replay_ms / 1000)
                figures.setdefault("ready", []).append(figures["start"][-1]
                                                       + result.setup_ms / 1000)
                statuses = {s: sum(1 for m in result.migrations if m.status == s)
                            for s in ("applied", "failed", "skipped")}
            with open_sandbox("embedded") as sb:
                t = time.perf_counter()
                dry_run(disc, config, sandbox=sb, lint_result=lint_result,
                        check_idempotency=True, check_down=True)
                figures.setdefault("checks", []).append(time.perf_counter() - t)
        if args.split:
            split = _split(disc, config, lint_result, psql, script.name, args.runs)
    finally:
        Path(script.name).unlink()

    def med(name: str) -> float:
        return statistics.median(figures[name])

    def spread(name: str) -> str:
        return f"(runs {', '.join(f'{v:.2f}' for v in figures[name])})"

    parts = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in phases.items())
    print(f"median of {args.runs} runs")
    print(f"server start: {med('start'):.2f} s [{parts}] {spread('start')}")
    print(f"start-up (server start + scratch database set-up {med('setup'):.2f} s): "
          f"{med('ready'):.2f} s (target <= 1 s) {spread('ready')}")
    print(f"psql floor (one session, BEGIN; \\i; COMMIT per file): {med('floor'):.2f} s "
          f"{spread('floor')}")
    ratios = [r / f for r, f in zip(figures["replay"], figures["floor"], strict=True)]
    print(f"dry run (observed, no checks), the migrations: {med('replay'):.2f} s = "
          f"{med('replay') / med('floor'):.2f}x the floor (median of per-run ratios "
          f"{statistics.median(ratios):.2f}x; target <= 1.5x) {spread('replay')} {statuses}")
    print(f"  the whole dry_run() call, scratch database set-up included: "
          f"{med('dry_run'):.2f} s = {med('dry_run') / med('floor'):.2f}x the floor "
          f"{spread('dry_run')}")
    if "cpu floor" in figures:
        print(f"server CPU time: psql floor {med('cpu floor'):.2f} s, dry run (set-up included) "
              f"{med('cpu dry run'):.2f} s {spread('cpu dry run')}")
    print(f"dry run with idempotency + down checks: {med('checks'):.2f} s {spread('checks')}")
    if args.split:
        floor = statistics.median(split["psql floor"])
        print(f"the replay without observation queries (median of {args.runs} alternating "
              "runs):")
        for name, values in split.items():
            median = statistics.median(values)
            print(f"  {name}: {median:.2f} s = {median / floor:.2f}x the floor "
                  f"(runs {', '.join(f'{v:.2f}' for v in values)})")
    return 0


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds of the server's processes so far: the postmaster's own and those of the
    backends it has reaped, plus its children still running (Linux /proc; None elsewhere, or
    for a server that is not ours). Read after a pause, so that a backend that has just
    exited is reaped."""
    if pid is None:
        return None
    time.sleep(0.2)
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p: str) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    try:
        total = sum(int(x) for x in fields(str(pid))[11:15])
    except OSError:
        return None
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                f = fields(p)
            except OSError:
                continue
            if int(f[1]) == pid:
                total += int(f[11]) + int(f[12])
    return total / tick


def _floor(sb: Any, psql: Path, script: str, cpu: bool = False,
           ) -> tuple[float, subprocess.CompletedProcess[str], float | None]:
    """The psql floor on a database of its own: (seconds, the finished psql, with ``cpu``
    the server's CPU seconds for it, else None)."""
    dsn = sb.create_database("floor")
    before = _server_cpu(sb.server_pid) if cpu else None
    t = time.perf_counter()
    proc = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f",
                           script], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    after = _server_cpu(sb.server_pid) if cpu else None
    used = after - before if after is not None and before is not None else None
    return seconds, proc, used


# Stand-ins for the prepared observation queries: the same columns, no rows (the lock query),
# or only the two fingerprint rows the snapshot's caller reads last (the snapshot query).
_NO_LOCKS = 'SELECT NULL::oid, NULL::oid, NULL::"char", NULL::text, NULL::text WHERE false'
_NO_SNAPSHOT = ("SELECT 'typefp'::text, NULL::text, 'x'::text, NULL::oid, NULL::oid, "
                'NULL::"char", NULL::text WHERE $1 IS NULL OR $2 IS NULL OR TRUE '
                "UNION ALL SELECT 'globalfp', '', 'y', NULL, NULL, NULL, NULL")


def _split(disc: Any, config: Config, lint_result: Any, psql: Path, script: str,
           runs: int) -> dict[str, list[float]]:
    """Seconds of the psql floor and of the replay with each variant of the observation
    queries, ``runs`` times each, alternating, each on a fresh sandbox."""
    from sqlsafe.dryrun import replay

    queries = replay._Session._PREPARE
    no_snapshot = {"sqlsafe_schema_locked": _NO_SNAPSHOT, "sqlsafe_schema_held": _NO_SNAPSHOT,
                   "sqlsafe_schema_lean": _NO_SNAPSHOT}
    variants = {"as is": {}, "no snapshot query": no_snapshot,
                "no lock query": {"sqlsafe_locks": _NO_LOCKS},
                "neither": {**no_snapshot, "sqlsafe_locks": _NO_LOCKS}}
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        with open_sandbox("embedded") as sb:
            times.setdefault("psql floor", []).append(_floor(sb, psql, script)[0])
        for name, swapped in variants.items():
            replay._Session._PREPARE = tuple((q, params, swapped.get(q, sql))
                                             for q, params, sql in queries)
            try:
                with open_sandbox("embedded") as sb:
                    result = dry_run(disc, config, sandbox=sb, lint_result=lint_result,
                                     check_idempotency=False, check_down=False)
            finally:
                replay._Session._PREPARE = queries
            times.setdefault(name, []).append(result.replay_ms / 1000)
    return times


if __name__ == "__main__":
    raise SystemExit(main())
