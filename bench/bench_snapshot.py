"""How the per-migration catalog snapshot scales with the size of the schema.

    python bench/bench_snapshot.py [--tables 50,400,1600]

After every observed migration the dry run reads the catalog rows of the relations the
migration locked (``SCHEMA_LOCKED``, run as the replay runs it: planned once per session on the
first run's nearly empty catalog). That read should cost the same whatever else the schema
holds: a part that walks every user constraint or trigger makes a long migration set
quadratic. This builds schemas of N tables (each with a primary key, a CHECK, a UNIQUE, a
foreign key to one shared table and a trigger) on the embedded server and prints the median
time of the snapshot of one table with four constraints, for each N.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from sqlsafe.dryrun import catalog as q
from sqlsafe.dryrun.replay import _read_text
from sqlsafe.dryrun.sandbox import open_sandbox


def _median_ms(conn: psycopg.Connection, sql: str, runs: int = 30) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        _read_text(conn, sql, keyed=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", default="50,400,1600")
    args = parser.parse_args()
    sizes = [int(x) for x in args.tables.split(",")]
    with open_sandbox("embedded") as sb, psycopg.connect(sb.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE target (id int PRIMARY KEY, a int, b int CHECK (b > 0), "
                     "c text UNIQUE)")
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY, a int CHECK (a > 0), b int UNIQUE, "
                     "c int REFERENCES target (id))")
        oid = conn.execute("SELECT 'probe'::regclass::oid").fetchone()[0]  # type: ignore[index]
        conn.execute(f"PREPARE snap(oid[], text, text) AS {q.SCHEMA_LOCKED}")
        # Run as the replay runs it (``_read_text``): planned once, generically, on the
        # first run's nearly empty catalog.
        rows = _read_text(conn, f"EXECUTE snap('{{{oid}}}', NULL, NULL)", keyed=True)
        typefp, globalfp = rows[-2][2], rows[-1][2]
        made = 0
        for n in sizes:
            for start in range(made, n, 200):  # 200 a transaction: its locks must fit
                with conn.transaction():
                    for i in range(start, min(start + 200, n)):
                        conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, a int CHECK "
                                     f"(a > 0), b int UNIQUE, c int REFERENCES target (id))")
                        conn.execute(f"CREATE TRIGGER g{i} BEFORE UPDATE ON t{i} FOR EACH ROW "
                                     "EXECUTE FUNCTION suppress_redundant_updates_trigger()")
            made = n
            ms = _median_ms(conn, f"EXECUTE snap('{{{oid}}}', '{typefp}', '{globalfp}')")
            print(f"{n:5d} other tables ({4 * n} constraints): snapshot of one table "
                  f"{ms:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
