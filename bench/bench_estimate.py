"""How good is the runtime estimate? A table rewrite measured small, extrapolated, then run big.

ALTER COLUMN qty TYPE bigint (int -> bigint rewrites the table and rebuilds its indexes) is
measured at 10k and 100k rows, the fit is extrapolated to 1M rows, and the same statement is
then run on 1M rows. Prints the estimate, the measurement and their ratio (target: within 2x).

Run: python bench/bench_estimate.py [--engine embedded|local] [--sizes 10000,100000]
         [--target 1000000] [--repeat 2]
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

from sqlsafe.dryrun.estimate import TableStats, estimate, measure
from sqlsafe.dryrun.sandbox import open_sandbox
from sqlsafe.model import Migration, Section

SETUP = """
CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    qty         integer NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
"""
MIGRATION = "ALTER TABLE orders ALTER COLUMN qty TYPE bigint;\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="embedded")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--target", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per size")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    migration = Migration("001_qty_bigint.sql", None, "plain", None, "001",
                          Section("001_qty_bigint.sql", MIGRATION), in_transaction=True)
    with open_sandbox(args.engine) as sandbox:
        with sandbox.connect() as conn:
            conn.execute(SETUP)
        started = time.perf_counter()
        small = measure(sandbox, [migration], sizes=sizes, repeat=args.repeat)
        spent = time.perf_counter() - started
        (items,) = estimate(small, {"public.orders": TableStats(args.target)}).values()
        big = measure(sandbox, [migration], sizes=(args.target,), repeat=args.repeat)
    item = items[0]
    actual = big.migrations[0][0].ms[args.target]
    predicted = item["estimated_ms"]
    print(f"PostgreSQL {sandbox.server_version} ({args.engine}): {MIGRATION.strip()}")
    for m in item["measured"]:
        print(f"  measured {m['rows']:>9,} rows: {m['ms']:9.1f} ms")
    print(f"  fit: {item['fit']['model']}, a = {item['fit']['a_ms']:.2f} ms, "
          f"b = {item['fit']['b_ms']:.3g} ms/unit  ({spent:.1f} s to measure)")
    print(f"  estimate {args.target:>9,} rows: {predicted:9.1f} ms")
    print(f"  measured {args.target:>9,} rows: {actual:9.1f} ms")
    print(f"  ratio estimate/measured: {predicted / actual:.2f}")


if __name__ == "__main__":
    main()
