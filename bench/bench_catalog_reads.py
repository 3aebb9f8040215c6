"""What each of the dry run's catalog reads costs the server, per run, on a grown schema.

    python bench/bench_catalog_reads.py [MIGRATIONS_DIR] [--rounds N] [--table NAME]

Default: documenso's Prisma migrations in ../shared/corpus, applied with psql (up to the first
error) to an embedded PostgreSQL 18; skipped when absent. Each read is timed as the slope
between a message with it once and a message with it eleven times, inside a transaction
that ran a statement first, the way the replay's message runs it; the median of N rounds
(default 200), alternating the reads so the machine's swings fall on all of them alike.
Prints microseconds per run of: the snapshot (SCHEMA_HELD) with no relation locked and after
ALTER TABLE on ``--table`` (default documenso's "Document"); the same after the ALTER with the
horizon of the snapshot before; the lean read (SCHEMA_HELD_LEAN with that horizon, what the
replay reads after most files) both ways; the lock query, the clock, and the settings pinned
before the snapshot, both ways.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from sqlsafe.discover import discover
from sqlsafe.dryrun import replay
from sqlsafe.dryrun import sandbox as sandbox_module
from sqlsafe.dryrun.sandbox import open_sandbox

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "corpus" / "documenso" / "packages" / "prisma" / "migrations"
_REPEAT = 10


def _drain(cur: Any) -> None:
    while cur.nextset():
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", nargs="?", default=str(DEFAULT))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--table", default='"Document"')
    args = parser.parse_args()
    target = Path(args.target)
    if not target.exists():
        print(f"skipped: {target} not found")
        return 0
    files = [m.abspath for m in discover([str(target)]).migrations if m.abspath]
    psql = sandbox_module._embedded_bindir(None).bindir / "psql"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        for f in files:
            script.write(f"BEGIN;\n\\i '{f}'\nCOMMIT;\n")
    try:
        with open_sandbox("embedded") as sb:
            subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", sb.dsn,
                            "-f", script.name], capture_output=True, check=False)
            figures = _measure(sb.dsn, args.table, args.rounds)
    finally:
        Path(script.name).unlink()
    print(f"{len(files)} files, applied with psql up to the first error; "
          f"median of {args.rounds} rounds, us per run")
    for name, value in figures.items():
        print(f"  {name}: {value:.0f}")
    return 0


def _measure(dsn: str, table: str, rounds: int) -> dict[str, float]:
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        cur = conn.cursor()
        for name, params, sql in replay._Session._PREPARE:
            cur.execute(f"PREPARE {name}{params} AS {sql}")
        version = conn.info.server_version
        # The part fingerprints of the schema as it is: SCHEMA_HELD's last two rows, read
        # (and planned) the way the replay reads it.
        rows = replay._read_text(conn, "EXECUTE sqlsafe_schema_held(NULL, NULL, NULL, NULL)",
                                 keyed=True)
        typefp, globalfp, horizon = replay._fps_of(rows)
        held = replay._schema_held(typefp, globalfp)
        # As the replay reads after most files: the lean read, with the horizon of the
        # snapshot before (only the rows written since are deparsed).
        lean = replay._schema_held(typefp, globalfp, horizon, lean=True)
        gated = replay._schema_held(typefp, globalfp, horizon)
        pin = ";".join(replay._keyed_until_end(version))
        touch = f"ALTER TABLE {table} ADD COLUMN sqlsafe_bench int"
        # (name, the statement before, the read)
        reads = [
            ("snapshot, no relation locked", "SELECT 1", f"{pin};{held}"),
            (f"snapshot after ALTER TABLE {table}", touch, f"{pin};{held}"),
            (f"snapshot with the horizon after ALTER TABLE {table}", touch, f"{pin};{gated}"),
            ("lean snapshot, no relation locked", "SELECT 1", f"{pin};{lean}"),
            (f"lean snapshot after ALTER TABLE {table}", touch, f"{pin};{lean}"),
            ("lock query", touch, "EXECUTE sqlsafe_locks"),
            ("clock", "SELECT 1", replay._clock_sql(version)),
            ("pin, saved and guarded (_PIN_KEYED)", "SELECT 1", replay._PIN_KEYED),
            ("pin, SET LOCAL (_keyed_until_end)", "SELECT 1", pin),
        ]
        # The snapshot's reads repeat the pin; take it off their figure.
        times: dict[str, tuple[list[float], list[float]]] = {r[0]: ([], []) for r in reads}
        for _ in range(rounds):
            for name, before, read in reads:
                for count, bucket in ((1, times[name][0]), (_REPEAT + 1, times[name][1])):
                    message = f"BEGIN;{before};" + ";".join([read] * count) + ";ROLLBACK"
                    start = time.perf_counter()
                    cur.execute(message)
                    _drain(cur)
                    bucket.append(time.perf_counter() - start)
    figures = {name: (statistics.median(many) - statistics.median(once)) / _REPEAT * 1e6
               for name, (once, many) in times.items()}
    pin_cost = figures["pin, SET LOCAL (_keyed_until_end)"]
    for name in list(figures):
        if "snapshot" in name:
            figures[name] -= pin_cost
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
